"""`/webhooks/{vendor}`: where the vendor sends its change signals (the mirror's hints).

Not a FHIR route and not behind SMART: the vendor authenticates each delivery with its
signature (facade/mirror/webhooks.py). The route answers 404 unless webhooks are on (a
secret is configured) for the vendor this deployment serves. Every delivery attempt is
audited, taken or refused; the audit row names the patients the hints concern, by id.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from facade.auth.audit import AuditEntry
from facade.core.vendor import WebhookMalformed
from facade.errors import (
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    ResourceNotFound,
    SignatureRejected,
)
from facade.mirror.webhooks import MAX_BODY_BYTES, DeliveryRejected, WebhookReceiver

router = APIRouter()


@router.get("/webhooks/{vendor}")
async def handshake(vendor: str, request: Request) -> Response:
    """The vendor's verification request: proves to it that this callback knows the secret."""
    receiver = _receiver(request, vendor)
    if receiver.rules.handshake is None:
        raise MethodNotAllowed("This vendor's webhooks have no verification request.")
    answer = receiver.handshake(request.query_params)
    if answer is None:
        raise InvalidRequest("This is not the vendor's verification request.")
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


@router.post("/webhooks/{vendor}")
async def delivery(vendor: str, request: Request) -> Response:
    receiver = _receiver(request, vendor)
    audit_log = request.app.state.runtime.audit
    # Fail closed: a refusal that cannot be recorded is not made; the vendor redelivers.
    audit_log.refuse_if_failing()
    audit = AuditEntry(interaction="webhook")
    request.state.audit = audit
    body = await _body(request)
    try:
        taken = await receiver.take(request.headers, body)
    except DeliveryRejected:
        raise SignatureRejected() from None
    except WebhookMalformed as malformed:
        raise InvalidRequest(f"The delivery is malformed: {malformed}.") from None
    audit.patient_ids = sorted({h.patient_id for h in taken.delivery.hints if h.patient_id})
    audit.result_count = len(taken.delivery.hints) if taken.new else 0
    # A redelivery is answered like the first delivery: the vendor only needs to stop.
    return Response(status_code=200)


def _receiver(request: Request, vendor: str) -> WebhookReceiver:
    receiver: WebhookReceiver | None = request.app.state.runtime.webhooks
    if receiver is None or vendor != receiver.vendor:
        raise ResourceNotFound("There is nothing at this address.")
    return receiver


async def _body(request: Request) -> bytes:
    """The body, read up to MAX_BODY_BYTES: a longer one is refused as it arrives."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(MAX_BODY_BYTES)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(MAX_BODY_BYTES)
        chunks.append(chunk)
    return b"".join(chunks)
