"""Each vendor's webhook rules on their own: which records an event names, and what a
delivery that is not one is refused for (the end-to-end suite drives them through the route)."""

from __future__ import annotations

import hmac

import pytest

from facade.core.vendor import RefreshHint, WebhookMalformed
from facade.upstream.carecloud.webhooks import WEBHOOKS as CARECLOUD
from facade.upstream.drchrono.webhooks import WEBHOOKS as DRCHRONO

SECRET = "0123456789abcdef0123"


def drchrono_headers(event: str) -> dict[str, str]:
    return {"x-drchrono-event": event, "x-drchrono-delivery": "77"}


@pytest.mark.parametrize(
    ("event", "record", "hints"),
    [
        ("PATIENT_CREATE", {"id": 5}, [("patients", "5", "5")]),
        ("PATIENT_PROBLEM_MODIFY", {"id": 9, "patient": 5}, [("problems", "9", "5")]),
        ("PATIENT_ALLERGY_CREATE", {"id": 9, "patient": 5}, [("allergies", "9", "5")]),
        ("PATIENT_MEDICATION_MODIFY", {"id": 9, "patient": 5}, [("medications", "9", "5")]),
        ("APPOINTMENT_MODIFY", {"id": 3, "patient": 5}, [("appointments", "3", "5")]),
        # The lock lives on the note's appointment too: both are refreshed.
        (
            "CLINICAL_NOTE_LOCK",
            {"id": 8, "appointment": 3, "patient": 5},
            [("clinical_notes", "8", "5"), ("appointments", "3", "5")],
        ),
        ("TASK_CREATE", {"id": 1}, []),  # tasks: nothing the mirror keeps
    ],
)
def test_drchrono_events_name_the_records_they_announce(
    event: str, record: dict[str, object], hints: list[tuple[str, str, str]]
) -> None:
    delivery = DRCHRONO.read(drchrono_headers(event), {"receiver": {}, "object": record})
    assert (delivery.delivery_id, delivery.event) == ("77", event)
    assert list(delivery.hints) == [RefreshHint(*hint, event) for hint in hints]


@pytest.mark.parametrize(
    ("headers", "payload"),
    [
        ({"x-drchrono-event": "PATIENT_CREATE"}, {"object": {"id": 1}}),  # no delivery id
        (drchrono_headers("PATIENT_CREATE"), [1]),
        (drchrono_headers("PATIENT_CREATE"), {"receiver": {}}),
        (drchrono_headers("PATIENT_CREATE"), {"object": {"id": {"nested": 1}}}),
        (drchrono_headers("CLINICAL_NOTE_UNLOCK"), {"object": {"patient": 5}}),
    ],
)
def test_drchrono_non_deliveries_are_malformed(headers: dict[str, str], payload: object) -> None:
    with pytest.raises(WebhookMalformed):
        DRCHRONO.read(headers, payload)


def test_drchrono_handshake_and_signature() -> None:
    assert DRCHRONO.handshake is not None
    answer = DRCHRONO.handshake({"msg": "abc"}, SECRET)
    assert answer == {"secret_token": hmac.digest(SECRET.encode(), b"abc", "sha256").hex()}
    assert DRCHRONO.handshake({}, SECRET) is None
    assert DRCHRONO.signed({"x-drchrono-signature": SECRET}, b"", SECRET)
    assert not DRCHRONO.signed({"x-drchrono-signature": SECRET[:-1]}, b"", SECRET)
    assert not DRCHRONO.signed({}, b"", SECRET)


def test_carecloud_events_name_the_records_they_announce() -> None:
    appointment = {
        "id": "ev-1",
        "event": "appointment.changed",
        "data": {"appointment_id": "a-1", "patient_id": "p-1"},
    }
    encounter = {
        "id": "ev-2",
        "event": "encounter.signed",
        "data": {"encounter_id": "e-1", "patient_id": "p-1"},
    }
    other = {"id": "ev-3", "event": "claim.paid", "data": {}}
    assert CARECLOUD.read({}, appointment).hints == (
        RefreshHint("appointments", "a-1", "p-1", "appointment.changed"),
    )
    assert CARECLOUD.read({}, encounter).hints == (
        RefreshHint("encounters", "e-1", "p-1", "encounter.signed"),
    )
    assert CARECLOUD.read({}, other).hints == ()
    # The delivery id is the signed body's, whatever the unsigned header says.
    assert CARECLOUD.read({"x-carecloud-delivery": "other"}, appointment).delivery_id == "ev-1"
    with pytest.raises(WebhookMalformed):
        CARECLOUD.read({}, {"id": "ev-4", "event": "encounter.signed", "data": {}})
    assert CARECLOUD.handshake is None
