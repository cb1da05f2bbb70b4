"""The sandbox's webhooks as DrChrono documents them: verification, signed hooks, redelivery."""

from __future__ import annotations

import pytest

from facade.upstream.drchrono.sandbox.state import DEFAULT_CLIENT_ID, ManualClock, SandboxState
from facade.upstream.drchrono.sandbox.webhooks import WebhookError, verification_answer
from tests.upstream.sandbox.app_harness import START, make_state, sandbox_client
from tests.upstream.sandbox.webhook_receiver import CALLBACK_URL, WebhookReceiver

SECRET = "0f3c9a7d2b61e84c5a90d17e3b28f4c6a1d05e92"
EVENTS = ("PATIENT_CREATE", "PATIENT_MODIFY")


async def _configured(receiver: WebhookReceiver) -> tuple[SandboxState, ManualClock]:
    state, clock = make_state()
    state.webhooks.use_transport(receiver.transport())
    await state.webhooks.configure(DEFAULT_CLIENT_ID, CALLBACK_URL, SECRET, EVENTS)
    return state, clock


def test_verification_answer_is_hex_hmac_sha256_of_msg_keyed_by_the_secret() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert verification_answer("Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


async def test_a_callback_that_answers_with_the_right_hmac_is_verified() -> None:
    receiver = WebhookReceiver(secret=SECRET)
    state, _ = await _configured(receiver)
    webhook = state.webhooks.webhooks[DEFAULT_CLIENT_ID]
    assert webhook.verified
    assert len(receiver.verifications) == 1
    assert len(receiver.verifications[0]) == 32


async def test_a_callback_that_answers_with_the_wrong_hmac_is_not_active_and_gets_nothing() -> None:
    receiver = WebhookReceiver(secret="not-the-secret")
    state, _ = await _configured(receiver)
    assert not state.webhooks.webhooks[DEFAULT_CLIENT_ID].verified
    assert state.webhooks.announce("PATIENT_CREATE", {"id": 1}) == []
    await state.webhooks.deliver_due()
    assert receiver.hooks == []


async def test_changing_the_callback_url_verifies_again_and_the_secret_alone_does_not() -> None:
    receiver = WebhookReceiver(secret=SECRET)
    state, _ = await _configured(receiver)
    await state.webhooks.configure(DEFAULT_CLIENT_ID, CALLBACK_URL, SECRET + "x", EVENTS)
    assert len(receiver.verifications) == 1
    await state.webhooks.configure(DEFAULT_CLIENT_ID, CALLBACK_URL + "?v=2", SECRET, EVENTS)
    assert len(receiver.verifications) == 2
    assert state.webhooks.webhooks[DEFAULT_CLIENT_ID].verified


async def test_a_webhook_needs_known_events_a_secret_and_a_url() -> None:
    state, _ = make_state()
    with pytest.raises(WebhookError):
        await state.webhooks.configure(DEFAULT_CLIENT_ID, CALLBACK_URL, SECRET, ("PATIENT_DELETE",))
    with pytest.raises(WebhookError):
        await state.webhooks.configure(DEFAULT_CLIENT_ID, CALLBACK_URL, "", EVENTS)
    with pytest.raises(WebhookError):
        await state.webhooks.configure(DEFAULT_CLIENT_ID, "receiver.test/hooks", SECRET, EVENTS)


async def test_a_hook_carries_event_signature_delivery_id_receiver_and_object() -> None:
    receiver = WebhookReceiver(secret=SECRET)
    state, _ = await _configured(receiver)
    [queued] = state.webhooks.announce("PATIENT_MODIFY", {"id": 100, "first_name": "Jane"})
    await state.webhooks.deliver_due()
    [hook] = receiver.hooks
    assert hook.headers["x-drchrono-event"] == "PATIENT_MODIFY"
    assert hook.headers["x-drchrono-signature"] == SECRET
    assert hook.headers["x-drchrono-delivery"] == queued.id
    assert hook.body["object"] == {"id": 100, "first_name": "Jane"}
    assert hook.body["receiver"]["callback_url"] == CALLBACK_URL
    assert "secret_token" not in hook.body["receiver"]
    assert queued.delivered


async def test_only_subscribed_events_are_sent() -> None:
    receiver = WebhookReceiver(secret=SECRET)
    state, _ = await _configured(receiver)
    assert state.webhooks.announce("APPOINTMENT_CREATE", {"id": "1"}) == []
    await state.webhooks.deliver_due()
    assert receiver.hooks == []


async def test_a_failed_hook_is_sent_again_1_3_and_7_hours_after_the_event_then_never() -> None:
    receiver = WebhookReceiver(secret=SECRET, status=302)  # "like 302 would be considered failing"
    state, clock = await _configured(receiver)
    [delivery] = state.webhooks.announce("PATIENT_CREATE", {"id": 7})
    sent_at = []
    for _ in range(12 * 60):  # twelve hours, minute by minute
        if await state.webhooks.deliver_due():
            sent_at.append(clock() - START)
        clock.advance(60)
    assert [moment.total_seconds() / 3600 for moment in sent_at] == [0, 1, 3, 7]
    assert [attempt.status for attempt in delivery.attempts] == [302] * 4
    assert not delivery.delivered
    assert delivery.next_attempt_at is None
    assert len(receiver.hooks) == 4
    assert {hook.headers["x-drchrono-delivery"] for hook in receiver.hooks} == {delivery.id}


async def test_a_redelivery_that_succeeds_ends_the_schedule_and_manual_redelivery_still_works() -> (
    None
):
    receiver = WebhookReceiver(secret=SECRET, status=500)
    state, clock = await _configured(receiver)
    [delivery] = state.webhooks.announce("PATIENT_CREATE", {"id": 7})
    await state.webhooks.deliver_due()
    receiver.status = 204
    clock.advance(3600)
    await state.webhooks.deliver_due()
    assert [attempt.status for attempt in delivery.attempts] == [500, 204]
    assert delivery.delivered and state.webhooks.pending() == []
    clock.advance(8 * 3600)
    assert await state.webhooks.deliver_due() == []
    await state.webhooks.redeliver(delivery.id)
    assert len(receiver.hooks) == 3


async def test_ping_is_sent_at_once_to_a_verified_webhook() -> None:
    receiver = WebhookReceiver(secret=SECRET)
    state, _ = await _configured(receiver)
    delivery = await state.webhooks.ping(DEFAULT_CLIENT_ID)
    assert delivery.delivered
    assert receiver.hooks[0].headers["x-drchrono-event"] == "PING"


async def test_an_app_sets_up_and_pings_its_webhook_through_the_admin_route() -> None:
    receiver = WebhookReceiver(secret=SECRET)
    state, _ = make_state()
    state.webhooks.use_transport(receiver.transport())
    setup = {"callback_url": CALLBACK_URL, "secret_token": SECRET, "events": list(EVENTS)}
    async with sandbox_client(state, authorized=False) as client:
        wrong = await client.post("/sandbox/webhook", json=setup, auth=(DEFAULT_CLIENT_ID, "no"))
        unknown = await client.post(
            "/sandbox/webhook",
            json={**setup, "events": ["PATIENT_DELETE"]},
            auth=(DEFAULT_CLIENT_ID, "s3cret"),
        )
        made = await client.post("/sandbox/webhook", json=setup, auth=(DEFAULT_CLIENT_ID, "s3cret"))
        ping = await client.post("/sandbox/webhook/ping", auth=(DEFAULT_CLIENT_ID, "s3cret"))
    assert wrong.status_code == 401
    assert unknown.status_code == 400
    assert made.status_code == 200
    assert made.json()["active"] is True
    assert ping.json()["delivered"] is True
    assert [hook.headers["x-drchrono-event"] for hook in receiver.hooks] == ["PING"]
