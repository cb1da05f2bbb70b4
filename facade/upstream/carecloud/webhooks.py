"""CareCloud's webhooks, as facade receives them: the signature and the records an event
says changed.

A delivery is a `POST` whose `X-CareCloud-Signature` is `sha256=` + hex HMAC-SHA256 of the
raw body, keyed by the subscription's secret. The body is `{"id", "event", "occurred_at",
"data"}`; the delivery id and the event are read from it, the signed part, rather than from
the unsigned `X-CareCloud-Delivery`/`-Event` headers, so a replayed body cannot pass as a new
delivery. There is no verification handshake. CareCloud announces only appointment changes
and encounter signing (deletions never): the rest is the sync's bounded re-reads.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from facade.core.vendor import RefreshHint, WebhookDelivery, WebhookMalformed, WebhookRules

#: Each event, the endpoint of the record it announces and the data key of that record's id.
RECORD_OF_EVENT: dict[str, tuple[str, str]] = {
    "appointment.changed": ("appointments", "appointment_id"),
    "encounter.signed": ("encounters", "encounter_id"),
}


def signed(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("x-carecloud-signature", "").encode(), expected.encode())


def read(headers: Mapping[str, str], payload: Any) -> WebhookDelivery:
    if not isinstance(payload, dict):
        raise WebhookMalformed("the body is not a JSON object")
    delivery_id, event, data = payload.get("id"), payload.get("event"), payload.get("data")
    if not isinstance(delivery_id, str) or not isinstance(event, str):
        raise WebhookMalformed("the body has no id or event")
    announced = RECORD_OF_EVENT.get(event)
    if announced is None:  # an event newer than these rules: nothing the mirror keeps
        return WebhookDelivery(delivery_id, event)
    endpoint, id_key = announced
    if not isinstance(data, dict) or not isinstance(data.get(id_key), str | int):
        raise WebhookMalformed("the event names no record")
    patient = data.get("patient_id")
    patient_id = str(patient) if isinstance(patient, str | int) and patient != "" else None
    return WebhookDelivery(
        delivery_id, event, (RefreshHint(endpoint, str(data[id_key]), patient_id, event),)
    )


WEBHOOKS = WebhookRules(signed=signed, read=read)
