"""Signed webhook deliveries: the JSON body, its HMAC-SHA256 signature and the POST itself.

A receiver verifies `X-CareCloud-Signature: sha256=<hex>` over the raw body with the secret it
registered. Deliveries are awaited by whoever raised the event and recorded, failed or not;
a delivery never raises into the API call that caused it, and never logs the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import httpx

#: The only events CareCloud sends: an appointment created, rescheduled or moved to another
#: status, and an encounter's note signed (or amended and signed again). Nothing else it does,
#: deletions included, is announced.
APPOINTMENT_CHANGED = "appointment.changed"
ENCOUNTER_SIGNED = "encounter.signed"
EVENTS = (APPOINTMENT_CHANGED, ENCOUNTER_SIGNED)


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    secret: str
    events: tuple[str, ...]
    created_at: str

    def as_json(self) -> dict[str, Any]:
        """What the API shows: never the secret."""
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Delivery:
    subscription_id: str
    event: str
    event_id: str
    url: str
    body: bytes
    status: int | None
    error: str | None = None


def event_body(event_id: str, event: str, occurred_at: str, data: dict[str, Any]) -> bytes:
    payload = {"id": event_id, "event": event, "occurred_at": occurred_at, "data": data}
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """The header value a receiver recomputes: `sha256=` + hex HMAC-SHA256(secret, raw body)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


async def deliver(
    client: httpx.AsyncClient, subscription: Subscription, event: str, event_id: str, body: bytes
) -> Delivery:
    headers = {
        "Content-Type": "application/json",
        "X-CareCloud-Event": event,
        "X-CareCloud-Delivery": event_id,
        "X-CareCloud-Signature": signature(subscription.secret, body),
    }
    try:
        response = await client.post(subscription.url, content=body, headers=headers)
    except httpx.HTTPError as error:
        return Delivery(
            subscription.id, event, event_id, subscription.url, body, None, type(error).__name__
        )
    return Delivery(subscription.id, event, event_id, subscription.url, body, response.status_code)
