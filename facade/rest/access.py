"""Who is asking: the bearer token of a FHIR request becomes a Grant, or a 401.

Also counts the request against the client's rate limit and opens the request's audit
entry (the access log writes it once the answer is known).
"""

from __future__ import annotations

from fastapi import Request

from facade.auth.audit import AuditEntry
from facade.auth.grant import Grant
from facade.auth.tokens import TokenRejected
from facade.errors import Unauthorized


def authenticate(request: Request, interaction: str, resource_type: str = "") -> Grant:
    runtime = request.app.state.runtime
    # Fail closed before anything is read: an access that cannot be recorded must not happen
    # (the refusal itself is in the access log; it touched no patient data).
    runtime.audit.refuse_if_failing()
    audit = AuditEntry(interaction=interaction, resource_type=resource_type)
    request.state.audit = audit
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    try:
        grant: Grant = runtime.tokens.grant_of(token.strip())
    except TokenRejected as rejected:
        raise Unauthorized(
            "The access token is not valid.", error="invalid_token", description=str(rejected)
        ) from None
    audit.client_id = grant.client_id
    audit.username = grant.username or ""
    if grant.patient_id:
        audit.patient_ids = [grant.patient_id]
    runtime.rate_limits.check(grant.client_id)
    return grant
