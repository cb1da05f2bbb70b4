"""DrChrono's API webhooks, as the sandbox sends them: configuration, verification, deliveries.

Per the vendor's webhook reference (shared/seeds/drchrono-v4-api-reference.txt, "API Webhooks"):
each API app has one webhook (callback URL, secret token, events); it is verified by
`GET <callback>?msg=<random>` answered with `{"secret_token": hex(HMAC-SHA256(secret, msg))}`
when created and whenever its URL changes, and only a verified webhook is sent anything.
A delivery is a `POST` whose `X-drchrono-signature` is the secret token itself (not an HMAC of
the body); only a 2xx counts, and a failed one is sent again 1, 3 and 7 hours after the event,
then only by hand. It reads time only from the sandbox clock and reaches callbacks only through
the transport it was given (tests hand it an in-process `httpx.ASGITransport`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from facade.sandbox.clock import Clock

#: The events a webhook can subscribe to (the reference's table, plus the task events).
EVENTS: tuple[str, ...] = (
    "APPOINTMENT_CREATE",
    "APPOINTMENT_MODIFY",
    "PATIENT_CREATE",
    "PATIENT_MODIFY",
    "PATIENT_PROBLEM_CREATE",
    "PATIENT_PROBLEM_MODIFY",
    "PATIENT_ALLERGY_CREATE",
    "PATIENT_ALLERGY_MODIFY",
    "PATIENT_MEDICATION_CREATE",
    "PATIENT_MEDICATION_MODIFY",
    "CLINICAL_NOTE_LOCK",
    "CLINICAL_NOTE_UNLOCK",
    "TASK_CREATE",
    "TASK_MODIFY",
    "TASK_DELETE",
)
#: What the "Ping webhook" button sends; no webhook subscribes to it, every verified one gets it.
PING = "PING"
#: "first redeliver happens at 1 hour after the initial event, second 3 hours after [...], and
#: the third 7 hours after"; after that only `redeliver` (the "redeliver" button) sends it.
REDELIVERY_AFTER: tuple[timedelta, ...] = (
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=7),
)
#: Seconds the sandbox waits for a callback before it counts the attempt as failed.
CALLBACK_TIMEOUT_SECONDS = 10.0


def verification_answer(secret_token: str, msg: str) -> str:
    """What the callback must answer a verification with: hex HMAC-SHA256 of msg, keyed by it."""
    return hmac.new(secret_token.encode(), msg.encode(), hashlib.sha256).hexdigest()


class WebhookError(ValueError):
    """A webhook setting the vendor's setup page would refuse (every field is required)."""


@dataclass
class Webhook:
    """One API app's webhook. `verified` is false until its callback passed verification."""

    id: int
    client_id: str
    callback_url: str
    secret_token: str
    events: frozenset[str]
    verified: bool = False

    def as_json(self) -> dict[str, Any]:
        """The `receiver` of a delivery body; the secret travels only in its header."""
        return {
            "id": self.id,
            "callback_url": self.callback_url,
            "events": sorted(self.events),
            "active": self.verified,
        }


@dataclass(frozen=True)
class DeliveryAttempt:
    at: datetime
    #: The callback's status code, or None when it did not answer (refused, timed out).
    status: int | None
    #: Why it failed without a status, e.g. `ConnectError`; never the response body.
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Delivery:
    """One hook: the event, the body as sent, and every attempt to send it."""

    id: str
    webhook_id: int
    event: str
    event_at: datetime
    body: dict[str, Any]
    attempts: list[DeliveryAttempt] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return any(attempt.succeeded for attempt in self.attempts)

    @property
    def next_attempt_at(self) -> datetime | None:
        """When the schedule sends it next: at once, then 1, 3, 7 h after the event; else None."""
        if self.delivered:
            return None
        tried = len(self.attempts)
        if tried == 0:
            return self.event_at
        if tried <= len(REDELIVERY_AFTER):
            return self.event_at + REDELIVERY_AFTER[tried - 1]
        return None


class SandboxWebhooks:
    """The webhooks of every app in one sandbox, their pending deliveries and the delivery log.

    `announce` queues a hook for each verified webhook subscribed to the event; `deliver_due`
    sends what the schedule says is due on the sandbox clock (the standalone sandbox calls it
    every second, tests call it after moving a `ManualClock`).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        seed: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.clock = clock
        self.webhooks: dict[str, Webhook] = {}
        #: Every hook ever queued, oldest first: the "deliveries" page, and what tests read.
        self.deliveries: list[Delivery] = []
        #: The verifications sent: (webhook id, callback URL, whether it passed).
        self.verifications: list[tuple[int, str, bool]] = []
        self._random = random.Random(seed) if seed is not None else random.SystemRandom()
        self._transport = transport
        self._owns_transport = transport is None
        self._next_id = 1

    # -- Setup -------------------------------------------------------------------------------

    async def configure(
        self,
        client_id: str,
        callback_url: str,
        secret_token: str,
        events: frozenset[str] | set[str] | tuple[str, ...],
    ) -> Webhook:
        """Create or change `client_id`'s webhook; a new one or a new URL is verified at once."""
        wanted = frozenset(events)
        unknown = sorted(wanted - set(EVENTS))
        if unknown:
            raise WebhookError(f"unknown webhook events: {', '.join(unknown)}")
        if not wanted or not secret_token or urlsplit(callback_url).scheme not in ("http", "https"):
            raise WebhookError("a webhook needs a callback URL, a secret token and events")
        found = self.webhooks.get(client_id)
        if found is None:
            found = Webhook(self._next_id, client_id, callback_url, secret_token, wanted)
            self._next_id += 1
            self.webhooks[client_id] = found
        else:
            moved = found.callback_url != callback_url
            found.callback_url, found.secret_token, found.events = (
                callback_url,
                secret_token,
                wanted,
            )
            if not moved:
                return found
            found.verified = False
        await self.verify(client_id)
        return found

    async def verify(self, client_id: str) -> bool:
        """The "Verify webhook" button: the webhook is active only if its callback answers right."""
        webhook = self.webhooks[client_id]
        msg = "".join(self._random.choice("0123456789abcdef") for _ in range(32))
        separator = "&" if urlsplit(webhook.callback_url).query else "?"
        url = f"{webhook.callback_url}{separator}{urlencode({'msg': msg})}"
        passed = False
        try:
            response = await self._send(httpx.Request("GET", url))
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code == 200:
            answer = _json_object(response.content).get("secret_token")
            expected = verification_answer(webhook.secret_token, msg)
            passed = isinstance(answer, str) and hmac.compare_digest(answer, expected)
        webhook.verified = passed
        self.verifications.append((webhook.id, webhook.callback_url, passed))
        return passed

    # -- Deliveries --------------------------------------------------------------------------

    def announce(self, event: str, obj: dict[str, Any]) -> list[Delivery]:
        """Queue `event` about `obj` (already as the API serialises it) for its subscribers."""
        if event not in EVENTS:
            raise WebhookError(f"unknown webhook event: {event}")
        return [
            self._queue(webhook, event, obj)
            for webhook in self.webhooks.values()
            if webhook.verified and event in webhook.events
        ]

    async def ping(self, client_id: str) -> Delivery:
        """The "Ping webhook" button: a PING hook, sent at once (and rescheduled if it fails)."""
        delivery = self._queue(self.webhooks[client_id], PING, {})
        await self._attempt(delivery)
        return delivery

    async def deliver_due(self) -> list[Delivery]:
        """Send every hook the schedule says is due now; returns those it tried."""
        now = self.clock()
        due = [
            delivery
            for delivery in self.deliveries
            if (moment := delivery.next_attempt_at) is not None and moment <= now
        ]
        for delivery in due:
            await self._attempt(delivery)
        return due

    async def redeliver(self, delivery_id: str) -> Delivery:
        """The "redeliver" button: one more attempt, whatever the schedule says."""
        delivery = next(d for d in self.deliveries if d.id == delivery_id)
        await self._attempt(delivery)
        return delivery

    def pending(self) -> list[Delivery]:
        """Hooks the schedule will still send (not delivered, redeliveries left)."""
        return [d for d in self.deliveries if d.next_attempt_at is not None]

    def use_transport(self, transport: httpx.AsyncBaseTransport) -> None:
        """Reach callbacks through `transport` from now on (tests: an in-process receiver)."""
        self._transport = transport
        self._owns_transport = False

    async def aclose(self) -> None:
        if self._owns_transport and self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    def _queue(self, webhook: Webhook, event: str, obj: dict[str, Any]) -> Delivery:
        delivery = Delivery(
            id=str(self._random.randint(10**8, 10**9 - 1)),
            webhook_id=webhook.id,
            event=event,
            event_at=self.clock(),
            body={"receiver": webhook.as_json(), "object": obj},
        )
        self.deliveries.append(delivery)
        return delivery

    async def _attempt(self, delivery: Delivery) -> None:
        webhook = next(w for w in self.webhooks.values() if w.id == delivery.webhook_id)
        at = self.clock()
        if not webhook.verified:
            delivery.attempts.append(DeliveryAttempt(at, None, "webhook not verified"))
            return
        request = httpx.Request(
            "POST",
            webhook.callback_url,
            content=json.dumps(delivery.body).encode(),
            headers={
                "Content-Type": "application/json",
                "X-drchrono-event": delivery.event,
                "X-drchrono-signature": webhook.secret_token,
                "X-drchrono-delivery": delivery.id,
            },
        )
        try:
            response = await self._send(request)
        except httpx.HTTPError as error:
            delivery.attempts.append(DeliveryAttempt(at, None, type(error).__name__))
            return
        delivery.attempts.append(DeliveryAttempt(at, response.status_code))

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """One request straight through the transport: no redirects followed (a 302 fails)."""
        if self._transport is None:
            self._transport = httpx.AsyncHTTPTransport()
        request.extensions["timeout"] = httpx.Timeout(CALLBACK_TIMEOUT_SECONDS).as_dict()
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(content)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
