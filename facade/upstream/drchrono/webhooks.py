"""DrChrono's webhooks, as facade receives them: the verification handshake, the signature,
and which records an event says changed.

DrChrono verifies a callback with `GET ?msg=<random>`, answered with
`{"secret_token": hex(HMAC-SHA256(key=secret, msg))}`. Its deliveries are `POST`s whose
`X-drchrono-signature` is the secret token itself (not an HMAC of the body: the handshake's
HMAC oracle therefore signs nothing), `X-drchrono-delivery` their id (the same on every
redelivery) and `X-drchrono-event` the event; the body is `{"receiver": ..., "object": ...}`
with the object as the API serialises it. Nothing a body or header holds is put in an error.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from facade.core.vendor import RefreshHint, WebhookDelivery, WebhookMalformed, WebhookRules

#: Event name prefixes and the endpoint whose record they announce; the longest prefix first
#: (a problem's event also starts with the patient's prefix).
ENDPOINT_OF_EVENT: tuple[tuple[str, str], ...] = (
    ("PATIENT_PROBLEM_", "problems"),
    ("PATIENT_ALLERGY_", "allergies"),
    ("PATIENT_MEDICATION_", "medications"),
    ("PATIENT_", "patients"),
    ("APPOINTMENT_", "appointments"),
)
#: A note's lock lives on its appointment too, so a lock or unlock refreshes both.
NOTE_EVENTS = frozenset({"CLINICAL_NOTE_LOCK", "CLINICAL_NOTE_UNLOCK"})
#: The "Ping webhook" button's event: a delivery about nothing.
PING = "PING"


def handshake(query: Mapping[str, str], secret: str) -> dict[str, Any] | None:
    msg = query.get("msg")
    if not msg:
        return None
    digest = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()
    return {"secret_token": digest}


def signed(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    given = headers.get("x-drchrono-signature", "")
    return hmac.compare_digest(given.encode(), secret.encode())


def read(headers: Mapping[str, str], payload: Any) -> WebhookDelivery:
    delivery_id = headers.get("x-drchrono-delivery", "")
    event = headers.get("x-drchrono-event", "")
    if not delivery_id or not event:
        raise WebhookMalformed("the delivery id or event header is missing")
    if not isinstance(payload, dict):
        raise WebhookMalformed("the body is not a JSON object")
    if event == PING:
        return WebhookDelivery(delivery_id, event)
    record = payload.get("object")
    if not isinstance(record, dict):
        raise WebhookMalformed("the body has no object")
    return WebhookDelivery(delivery_id, event, _hints(event, record))


def _hints(event: str, record: dict[str, Any]) -> tuple[RefreshHint, ...]:
    if event in NOTE_EVENTS:
        patient = _key(record.get("patient"))
        note = _key(record.get("id"))
        appointment = _key(record.get("appointment"))
        found = []
        if note is not None:
            found.append(RefreshHint("clinical_notes", note, patient, event))
        if appointment is not None:
            found.append(RefreshHint("appointments", appointment, patient, event))
        if not found:
            raise WebhookMalformed("the note names neither itself nor its appointment")
        return tuple(found)
    endpoint = next((e for prefix, e in ENDPOINT_OF_EVENT if event.startswith(prefix)), None)
    if endpoint is None:  # tasks, and events newer than these rules: nothing the mirror keeps
        return ()
    record_id = _key(record.get("id"))
    if record_id is None:
        raise WebhookMalformed("the object has no id")
    patient = record_id if endpoint == "patients" else _key(record.get("patient"))
    return (RefreshHint(endpoint, record_id, patient, event),)


def _key(value: Any) -> str | None:
    """A vendor id as text (DrChrono's are integers), or None."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, int | str):
        return str(value)
    return None


WEBHOOKS = WebhookRules(signed=signed, read=read, handshake=handshake)
