"""Webhooks: a registered receiver gets signed deliveries for appointment changes and
encounter signing, and can verify each signature over the raw body with its secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from facade.upstream.carecloud.sandbox.state import SandboxState

SECRET = "receiver-shared-secret"


class Receiver:
    """A webhook endpoint as an integrator writes one: verify, then keep the event."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.rejected = 0
        self.app = Starlette(routes=[Route("/hooks/carecloud", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> JSONResponse:
        raw = await request.body()
        expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-carecloud-signature", "")):
            self.rejected += 1
            return JSONResponse({"error": "bad signature"}, status_code=401)
        self.accepted.append(json.loads(raw))
        self.headers.append(dict(request.headers))
        return JSONResponse({"ok": True})


class RefusingTransport(httpx.AsyncBaseTransport):
    """A receiver that is down: every connection is refused."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


async def subscribe(
    api: httpx.AsyncClient, state: SandboxState, receiver: Receiver, secret: str = SECRET
) -> dict[str, Any]:
    state.webhook_transport = httpx.ASGITransport(app=receiver.app)
    response = await api.post(
        "/webhooks",
        json={
            "url": "http://receiver.test/hooks/carecloud",
            "secret": secret,
            "events": ["appointment.changed", "encounter.signed"],
        },
    )
    assert response.status_code == 201
    webhook: dict[str, Any] = response.json()["webhook"]
    return webhook


async def test_registration_echoes_everything_but_the_secret(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    webhook = await subscribe(api, state, Receiver())

    assert webhook["url"] == "http://receiver.test/hooks/carecloud"
    assert webhook["events"] == ["appointment.changed", "encounter.signed"]
    assert SECRET not in json.dumps(webhook)
    listed = (await api.get("/webhooks")).json()["webhooks"]
    assert [w["id"] for w in listed] == [webhook["id"]]


async def test_bad_registrations_are_422s(api: httpx.AsyncClient) -> None:
    bad_event = await api.post(
        "/webhooks", json={"url": "http://r.test/h", "secret": "s", "events": ["patient.created"]}
    )
    bad_url = await api.post(
        "/webhooks", json={"url": "ftp://r.test", "secret": "s", "events": ["encounter.signed"]}
    )

    assert bad_event.status_code == bad_url.status_code == 422


async def test_creating_an_appointment_delivers_a_signed_appointment_changed(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    receiver = Receiver()
    await subscribe(api, state, receiver)
    adult = state.dataset.patients[0]

    created = await api.post(
        "/create_appointment",
        json={
            "appointment": {
                "start_time": "2026-06-12T11:00:00-04:00",
                "end_time": "2026-06-12T11:20:00-04:00",
                "provider_id": adult["primary_provider_id"],
                "location_id": adult["primary_location_id"],
                "visit_reason_name": "Follow-up",
                "patient": {"id": adult["id"]},
            }
        },
    )

    assert receiver.rejected == 0
    [event] = receiver.accepted
    assert event["event"] == "appointment.changed"
    assert event["data"] == {
        "appointment_id": created.json()["appointment"],
        "patient_id": adult["id"],
    }
    assert event["occurred_at"] == "2026-06-01T10:00:00-04:00"
    headers = receiver.headers[0]
    assert headers["x-carecloud-event"] == "appointment.changed"
    assert headers["x-carecloud-delivery"] == event["id"]
    [delivery] = state.deliveries
    assert (delivery.status, delivery.event_id) == (200, event["id"])


async def test_changing_an_appointment_status_delivers_an_event(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    receiver = Receiver()
    await subscribe(api, state, receiver)
    appointment = next(a for a in state.dataset.appointments if a["status"] == "scheduled")

    await state.change_appointment_status(
        appointment["id"], "cancelled", cancellation_reason="Weather"
    )

    read = (await api.get(f"/appointments/{appointment['id']}")).json()["appointment"]
    assert (read["status"], read["cancellation_reason"]) == ("cancelled", "Weather")
    assert [e["data"]["appointment_id"] for e in receiver.accepted] == [appointment["id"]]


async def test_signing_an_encounter_delivers_encounter_signed_and_the_note_appears(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    receiver = Receiver()
    await subscribe(api, state, receiver)
    adult = state.dataset.patients[0]
    [open_encounter] = [
        e for e in state.dataset.encounters_of(adult["id"]) if e["status"] == "open"
    ]
    assert open_encounter["note"] is None

    await state.sign_encounter(open_encounter["id"])

    read = (await api.get(f"/encounters/{open_encounter['id']}")).json()["encounter"]
    assert read["status"] == "signed"
    assert read["note"]["signed_by"] == read["provider_id"]
    assert read["signed_at"] == "2026-06-01T10:00:00-04:00"
    assert all(lab["status"] == "final" for lab in read["lab_results"])
    [event] = receiver.accepted
    assert event["event"] == "encounter.signed"
    assert event["data"] == {"encounter_id": open_encounter["id"], "patient_id": adult["id"]}


async def test_a_receiver_with_another_secret_rejects_the_delivery(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    receiver = Receiver()
    await subscribe(api, state, receiver, secret="someone-else")
    appointment = state.dataset.appointments[0]

    await state.change_appointment_status(appointment["id"], "confirmed")

    assert receiver.accepted == []
    assert receiver.rejected == 1
    assert state.deliveries[-1].status == 401


async def test_an_unreachable_receiver_is_recorded_not_raised(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    await subscribe(api, state, Receiver())

    state.webhook_transport = RefusingTransport()
    await state.change_appointment_status(state.dataset.appointments[0]["id"], "confirmed")

    assert state.deliveries[-1].status is None
    assert state.deliveries[-1].error == "ConnectError"
