"""The webhook receiver: a vendor's change signals, verified, taken once, kept as hints.

A delivery is trusted only after its signature checks out against the secret the operator
registered with the vendor (the vendor's rules compare in constant time); an unsigned or
forged one is refused before its body is parsed, and nothing of it is kept. A delivery is
taken once: its id and its hints are written in one transaction, so a redelivery of a
delivery taken is a no-op and one whose hints were lost is taken again. An event is only a
hint to refresh a record (the sync fetches it); the hint holds ids, never the record. The
secret is held out of repr and never logged; log lines name the vendor and counts, never ids.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from anyio import to_thread

from facade.core.vendor import WebhookDelivery, WebhookMalformed, WebhookRules
from facade.mirror.store import MirrorStore

log = logging.getLogger("facade.mirror.webhooks")

#: The largest delivery body taken: a vendor's record with its envelope is a few KiB; a body
#: beyond this is no delivery and is refused before it is read.
MAX_BODY_BYTES = 256 * 1024


class DeliveryRejected(Exception):
    """Unsigned or forged: refused, nothing kept."""


@dataclass(frozen=True)
class Taken:
    """What became of a verified delivery."""

    delivery: WebhookDelivery
    #: False for a redelivery of a delivery already taken (nothing was written).
    new: bool


@dataclass
class WebhookReceiver:
    """One connection's webhooks: its vendor's rules, the registered secret, the store."""

    #: The vendor's name (the route's `{vendor}`).
    vendor: str
    #: The connection hints are kept for.
    connection: str
    rules: WebhookRules
    store: MirrorStore
    secret: str = field(repr=False)

    def handshake(self, query: Mapping[str, str]) -> dict[str, Any] | None:
        """The answer to the vendor's verification request, or None when the vendor has no
        handshake or the query is not one."""
        if self.rules.handshake is None:
            return None
        return self.rules.handshake(query, self.secret)

    async def take(self, headers: Mapping[str, str], body: bytes) -> Taken:
        """Verify, read and keep one delivery. DeliveryRejected when the signature is wrong
        (before the body is parsed); WebhookMalformed when a signed body is not a delivery."""
        if not self.rules.signed(headers, body, self.secret):
            log.warning(
                "webhook delivery for %s refused: bad or missing signature", self.connection
            )
            raise DeliveryRejected()
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise WebhookMalformed("the body is not JSON") from None
        delivery = _within_columns(self.rules.read(headers, payload))
        new = await to_thread.run_sync(
            self.store.take_delivery, self.connection, delivery.delivery_id, delivery.hints
        )
        log.info(
            "webhook delivery for %s: %s, %d hints%s",
            self.connection,
            delivery.event,
            len(delivery.hints),
            "" if new else " (a redelivery, ignored)",
        )
        return Taken(delivery, new)


def _within_columns(delivery: WebhookDelivery) -> WebhookDelivery:
    """The delivery, if its keys fit the store's columns (a vendor's ids are short; a long
    one is no id of theirs)."""
    if not 0 < len(delivery.delivery_id) <= 200:
        raise WebhookMalformed("the delivery id is missing or too long")
    if len(delivery.event) > 100:
        raise WebhookMalformed("the event name is too long")
    for hint in delivery.hints:
        keys = (hint.endpoint, hint.vendor_id, hint.patient_id or "x")
        if not all(0 < len(key) <= 100 for key in keys):
            raise WebhookMalformed("a record id is missing or too long")
    return delivery


def build_receiver(
    vendor: str, rules: WebhookRules | None, secret: str, store: MirrorStore
) -> WebhookReceiver | None:
    """The deployment's receiver, or None when webhooks are off (no secret) or the vendor
    sends none."""
    if not secret or rules is None:
        return None
    return WebhookReceiver(
        vendor=vendor, connection=vendor, rules=rules, store=store, secret=secret
    )
