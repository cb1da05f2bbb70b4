"""The webhook receiver end to end: each vendor's sandbox sends its real webhooks (DrChrono's
configured, verified and delivered by its webhook sender, with its change generator making
the changes; CareCloud's subscription and publish) into facade's app over ASGITransport.

A signed delivery becomes refresh hints; a forged or unsigned one is refused 401, audited,
and leaves nothing; a redelivery is a no-op; without a secret the route is not there; a
body too large or not JSON is a 4xx OperationOutcome; no log line holds the secret or PHI.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from itertools import groupby
from typing import Any

import httpx
import pytest

from facade.app import create_app
from facade.clock import FakeClock
from facade.mirror import Hint, MirrorStore
from facade.mirror.webhooks import MAX_BODY_BYTES
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.upstream.carecloud.sandbox.webhooks import signature
from facade.upstream.drchrono.sandbox.changes import ChangeGenerator
from facade.upstream.drchrono.sandbox.state import DEFAULT_CLIENT_ID
from facade.upstream.drchrono.sandbox.webhooks import EVENTS
from facade.upstream.drchrono.sandbox.webhooks import PING as DRCHRONO_PING
from tests.conftest import FACADE_BASE

SECRET = "9f4c1e7a2b6d8035c1e9a7f2b4d6c8e0"
DRCHRONO_HOOKS = f"{FACADE_BASE}/webhooks/drchrono"
CARECLOUD_HOOKS = f"{FACADE_BASE}/webhooks/carecloud"
NOTE_ENDPOINTS = ("clinical_notes",)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(webhook_secret=SECRET)


@pytest.fixture
def app_transport(runtime: Runtime) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_app(runtime.settings, runtime))


@pytest.fixture
async def facade(app_transport: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=app_transport, base_url=FACADE_BASE) as client:
        yield client


def hints(runtime: Runtime) -> list[Hint]:
    store: MirrorStore = runtime.webhooks.store  # type: ignore[union-attr]
    return store.take_hints(runtime.settings.vendor, limit=10_000)


def keys(found: list[Hint]) -> set[tuple[str, str, str | None]]:
    return {(h.endpoint, h.vendor_id, h.patient_id) for h in found}


def webhook_audit(runtime: Runtime) -> list[tuple[str, str]]:
    return [
        (row.outcome, row.patient_id)
        for row in runtime.audit.query()
        if row.interaction == "webhook"
    ]


def assert_outcome(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == code


# -- DrChrono --------------------------------------------------------------------------------


@pytest.fixture
async def drchrono(sandbox: Any, app_transport: httpx.ASGITransport) -> Any:
    """The sandbox with its app's webhook pointing at facade, configured and verified."""
    sandbox.webhooks.use_transport(app_transport)
    webhook = await sandbox.webhooks.configure(
        DEFAULT_CLIENT_ID, DRCHRONO_HOOKS, SECRET, frozenset(EVENTS)
    )
    assert webhook.verified  # facade answered the handshake with the right HMAC
    return sandbox


async def test_drchrono_verification_fails_for_a_webhook_registered_with_another_secret(
    sandbox: Any, app_transport: httpx.ASGITransport
) -> None:
    sandbox.webhooks.use_transport(app_transport)
    webhook = await sandbox.webhooks.configure(
        DEFAULT_CLIENT_ID, DRCHRONO_HOOKS, "another-secret-of-16-chars", frozenset(EVENTS)
    )
    assert webhook.verified is False


async def test_drchrono_handshake_without_a_message_is_refused(
    facade: httpx.AsyncClient,
) -> None:
    assert_outcome(await facade.get("/webhooks/drchrono"), 400, "invalid-request")


async def test_drchrono_changes_become_refresh_hints(
    drchrono: Any, runtime: Runtime, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    generator = ChangeGenerator(drchrono, changes_per_hour=30, seed=3)
    clock.advance(4 * 3600)
    await generator.run_until(clock.now())
    sent = await drchrono.webhooks.deliver_due()
    assert sent and all(d.delivered for d in sent)

    expected = set()
    for _, step in groupby(generator.log, key=lambda change: change.step):
        changes = list(step)
        if not changes[0].events:
            continue  # deletes, lab results: DrChrono announces none
        announced = changes if changes[0].endpoint in NOTE_ENDPOINTS else changes[:1]
        expected |= {(c.endpoint, c.record_id, c.patient_id) for c in announced}
    assert expected
    assert keys(hints(runtime)) == expected
    audited = webhook_audit(runtime)
    assert {outcome for outcome, _ in audited} == {"success"}
    assert {patient for _, patient in audited} >= {p for _, _, p in expected if p}

    assert SECRET not in caplog.text
    assert SECRET not in repr(runtime.settings) + repr(runtime.webhooks)
    names = {
        str(d.body["object"][field])
        for d in sent
        for field in ("first_name", "last_name")
        if d.body["object"].get(field)
    }
    assert names  # patients were announced, with their names, and no log line has one
    assert not [name for name in names if name in caplog.text]


async def test_a_drchrono_redelivery_is_taken_once(drchrono: Any, runtime: Runtime) -> None:
    patient = drchrono.dataset.endpoint("patients")[0]
    [delivery] = drchrono.webhooks.announce("PATIENT_MODIFY", patient)
    await drchrono.webhooks.deliver_due()
    assert keys(hints(runtime)) == {("patients", str(patient["id"]), str(patient["id"]))}
    again = await drchrono.webhooks.redeliver(delivery.id)  # the "redeliver" button
    assert again.attempts[-1].status == 200
    assert hints(runtime) == []


async def test_a_drchrono_ping_is_answered_and_keeps_nothing(
    drchrono: Any, runtime: Runtime
) -> None:
    delivery = await drchrono.webhooks.ping(DEFAULT_CLIENT_ID)
    assert delivery.event == DRCHRONO_PING and delivery.delivered
    assert hints(runtime) == []


def drchrono_headers(signature: str | None, delivery_id: str = "d-1") -> dict[str, str]:
    headers = {"X-drchrono-event": "PATIENT_MODIFY", "X-drchrono-delivery": delivery_id}
    if signature is not None:
        headers["X-drchrono-signature"] = signature
    return headers


@pytest.mark.parametrize("signature", ["forged-token-0123456789", "", None])
async def test_a_forged_or_unsigned_drchrono_delivery_is_refused_audited_and_not_kept(
    facade: httpx.AsyncClient, runtime: Runtime, signature: str | None
) -> None:
    body = {"receiver": {}, "object": {"id": 123, "first_name": "Forged"}}
    response = await facade.post(
        "/webhooks/drchrono", json=body, headers=drchrono_headers(signature)
    )
    assert_outcome(response, 401, "signature-rejected")
    assert "WWW-Authenticate" not in response.headers
    assert hints(runtime) == []
    assert webhook_audit(runtime) == [("signature-rejected", "")]
    # The refused delivery's id was not taken: the genuine one still counts.
    response = await facade.post("/webhooks/drchrono", json=body, headers=drchrono_headers(SECRET))
    assert response.status_code == 200
    assert keys(hints(runtime)) == {("patients", "123", "123")}


async def test_bodies_too_large_or_not_a_delivery_are_refused_with_an_outcome(
    facade: httpx.AsyncClient, runtime: Runtime
) -> None:
    signed = drchrono_headers(SECRET)
    oversize = b"{" + b" " * MAX_BODY_BYTES + b"}"
    assert_outcome(
        await facade.post("/webhooks/drchrono", content=oversize, headers=signed),
        413,
        "request-too-large",
    )
    assert_outcome(
        await facade.post("/webhooks/drchrono", content=b'{"object": ', headers=signed),
        400,
        "invalid-request",
    )
    assert_outcome(
        await facade.post("/webhooks/drchrono", json={"receiver": {}}, headers=signed),
        400,
        "invalid-request",
    )
    no_id = {k: v for k, v in signed.items() if k != "X-drchrono-delivery"}
    assert_outcome(
        await facade.post("/webhooks/drchrono", json={"object": {"id": 1}}, headers=no_id),
        400,
        "invalid-request",
    )
    assert hints(runtime) == []
    # A malformed delivery's id is not taken either.
    assert runtime.webhooks is not None
    assert runtime.webhooks.store.seen_delivery("drchrono", "d-1") is False


async def test_only_the_served_vendor_has_a_webhook_route(facade: httpx.AsyncClient) -> None:
    for path in ("/webhooks/carecloud", "/webhooks/nosuch"):
        assert_outcome(await facade.post(path, json={}), 404, "not-found")
        assert_outcome(await facade.get(path, params={"msg": "x"}), 404, "not-found")


async def test_without_a_secret_webhooks_are_off(
    settings: Settings, sandbox: Any, clock: FakeClock
) -> None:
    runtime = await build_runtime(
        settings.with_overrides(webhook_secret=""), sandbox=sandbox, clock=clock
    )
    try:
        assert runtime.webhooks is None
        transport = httpx.ASGITransport(app=create_app(runtime.settings, runtime))
        async with httpx.AsyncClient(transport=transport, base_url=FACADE_BASE) as client:
            assert_outcome(
                await client.get("/webhooks/drchrono", params={"msg": "x"}), 404, "not-found"
            )
            response = await client.post(
                "/webhooks/drchrono", json={}, headers=drchrono_headers(SECRET)
            )
            assert_outcome(response, 404, "not-found")
    finally:
        await runtime.aclose()


def test_a_short_webhook_secret_is_refused_without_being_repeated() -> None:
    from facade.settings import SettingsError

    with pytest.raises(SettingsError) as refused:
        Settings(webhook_secret="short-secret")
    assert "FACADE_WEBHOOK_SECRET" in str(refused.value)
    assert "short-secret" not in str(refused.value)


# -- CareCloud -------------------------------------------------------------------------------


@pytest.fixture
def carecloud(vendor_name: str, sandbox: Any, app_transport: httpx.ASGITransport) -> Any:
    sandbox.webhook_transport = app_transport
    sandbox.subscribe(CARECLOUD_HOOKS, SECRET, ["appointment.changed", "encounter.signed"])
    return sandbox


@pytest.mark.parametrize("vendor_name", ["carecloud"], indirect=True)
async def test_carecloud_events_become_refresh_hints(
    carecloud: Any, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    appointment = carecloud.dataset.appointments[0]
    encounter = next(e for e in carecloud.dataset.encounters if e["status"] not in ("signed",))
    await carecloud.change_appointment_status(appointment["id"], "checked_in")
    await carecloud.sign_encounter(encounter["id"])
    assert [d.status for d in carecloud.deliveries] == [200, 200]
    assert keys(hints(runtime)) == {
        ("appointments", appointment["id"], appointment["patient_id"]),
        ("encounters", encounter["id"], encounter["patient_id"]),
    }
    assert [outcome for outcome, _ in webhook_audit(runtime)] == ["success", "success"]
    assert SECRET not in caplog.text
    patient = carecloud.dataset.patient(appointment["patient_id"])
    assert patient["last_name"] not in caplog.text


@pytest.mark.parametrize("vendor_name", ["carecloud"], indirect=True)
async def test_a_carecloud_replay_is_taken_once_and_a_forgery_not_at_all(
    carecloud: Any, runtime: Runtime, facade: httpx.AsyncClient
) -> None:
    appointment = carecloud.dataset.appointments[0]
    await carecloud.change_appointment_status(appointment["id"], "checked_in")
    assert len(hints(runtime)) == 1
    [delivery] = carecloud.deliveries
    headers = {
        "Content-Type": "application/json",
        # A replayed body under a fresh delivery header is still the same (signed) delivery.
        "X-CareCloud-Delivery": "fresh-header-id",
        "X-CareCloud-Signature": signature(SECRET, delivery.body),
    }
    replay = await facade.post("/webhooks/carecloud", content=delivery.body, headers=headers)
    assert replay.status_code == 200
    assert hints(runtime) == []

    forged = delivery.body.replace(b"appointment.changed", b"encounter.signed")
    for bad in (headers["X-CareCloud-Signature"], signature("guessed-secret-0000", forged), ""):
        response = await facade.post(
            "/webhooks/carecloud",
            content=forged,
            headers={**headers, "X-CareCloud-Signature": bad},
        )
        assert_outcome(response, 401, "signature-rejected")
    assert hints(runtime) == []
    assert [outcome for outcome, _ in webhook_audit(runtime)] == [
        "success",
        "success",
        *["signature-rejected"] * 3,
    ]


@pytest.mark.parametrize("vendor_name", ["carecloud"], indirect=True)
async def test_carecloud_has_no_handshake_and_a_signed_non_delivery_is_refused(
    runtime: Runtime, facade: httpx.AsyncClient
) -> None:
    assert_outcome(
        await facade.get("/webhooks/carecloud", params={"msg": "x"}),
        405,
        "interaction-not-supported",
    )
    body = b"[1, 2]"
    response = await facade.post(
        "/webhooks/carecloud",
        content=body,
        headers={"X-CareCloud-Signature": signature(SECRET, body)},
    )
    assert_outcome(response, 400, "invalid-request")
    assert hints(runtime) == []
