"""facade's one error tree, and the one place where an error becomes an OperationOutcome.

    FacadeError                       500 exception      anything unexpected (message never shown)
    ├── RequestError                  4xx                the client asked for something we refuse
    │   ├── InvalidRequest            400 invalid        malformed body, bad header, bad id
    │   │   ├── UnknownParameter      400 not-supported  a search parameter we do not serve
    │   │   ├── InvalidParameterValue 400 value          a value of the wrong type or form
    │   │   └── InvalidCursor         400 invalid        a paging cursor we did not issue
    │   ├── Unauthorized              401 login          no token, or one facade does not accept
    │   ├── SignatureRejected         401 security       a webhook delivery not signed as expected
    │   ├── Forbidden                 403 forbidden      the token does not grant this
    │   ├── ResourceNotFound          404 not-found      unknown type or id (or outside the grant)
    │   ├── MethodNotAllowed          405 not-supported  an interaction facade does not offer
    │   ├── NotAcceptable             406 not-supported  a format facade does not produce
    │   ├── PayloadTooLarge           413 too-long       a body over the size limit, left unread
    │   ├── UriTooLong                414 too-long       a path or query string over the size limit
    │   ├── UnsupportedMediaType      415 not-supported  a body format facade does not read
    │   └── RateLimited               429 throttled      this client sent too many requests
    ├── AuditUnavailable              503 transient      audit log not writable: fail closed
    └── UpstreamError                 5xx                the vendor failed (vendor clients raise)
        ├── UpstreamUnavailable       502 transient      5xx or bad answers, after retries
        ├── UpstreamTimeout           504 timeout        no answer in time, after retries
        ├── UpstreamThrottled         503 throttled      vendor call budget spent (Retry-After)
        └── UpstreamAuthFailed        503 security       stored vendor authorization stopped working

Every error has a stable `code` that appears in OperationOutcome.issue.details and in the
log line. Messages are written for the client and never carry PHI or internal detail.
"""

from __future__ import annotations

from typing import Any

ERROR_CODE_SYSTEM = "https://facade.dev/fhir/CodeSystem/error"


class FacadeError(Exception):
    status = 500
    issue_type = "exception"
    code = "internal-error"
    default_message = "The server failed to handle the request."

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        expression: list[str] | None = None,
    ):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.headers = dict(headers or {})
        #: FHIRPath of the request elements at fault (OperationOutcome.issue.expression).
        self.expression = list(expression or [])


class RequestError(FacadeError):
    status = 400
    issue_type = "invalid"
    code = "invalid-request"
    default_message = "The request is not valid."


class InvalidRequest(RequestError):
    pass


class UnknownParameter(InvalidRequest):
    issue_type = "not-supported"
    code = "unknown-parameter"


class InvalidParameterValue(InvalidRequest):
    issue_type = "value"
    code = "invalid-parameter-value"


class InvalidCursor(InvalidRequest):
    code = "invalid-cursor"
    default_message = "The paging cursor is not valid; start the search again."


class Unauthorized(RequestError):
    status = 401
    issue_type = "login"
    code = "unauthorized"
    default_message = "A valid access token is required."

    def __init__(
        self, message: str | None = None, *, error: str | None = None, description: str = ""
    ):
        """`error` and `description` go in the challenge (RFC 6750 §3): what was wrong with
        the token, so a client (or a person with curl) can tell an expired token from one
        made for another server."""
        challenge = 'Bearer realm="facade"'
        if error:
            challenge += f', error="{error}"'
        if description:
            challenge += f', error_description="{_challenge_text(description)}"'
        super().__init__(
            f"{message or self.default_message} {description}".strip(),
            headers={"WWW-Authenticate": challenge},
        )


def _challenge_text(text: str) -> str:
    """RFC 6750's error_description alphabet: printable ASCII without `"` and `\\`."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


class SignatureRejected(RequestError):
    """A webhook delivery that is not signed with the secret registered with the vendor: it
    is refused unread (no bearer challenge: the vendor signs, it does not log in)."""

    status = 401
    issue_type = "security"
    code = "signature-rejected"
    default_message = "The delivery does not carry a valid signature."


class Forbidden(RequestError):
    status = 403
    issue_type = "forbidden"
    code = "forbidden"
    default_message = "The access token does not grant this."


class RateLimited(RequestError):
    status = 429
    issue_type = "throttled"
    code = "rate-limited"
    default_message = "Too many requests from this client."

    def __init__(self, retry_after: float):
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(
            f"{self.default_message} Retry after {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )


class ResourceNotFound(RequestError):
    status = 404
    issue_type = "not-found"
    code = "not-found"
    default_message = "Resource not found."


class MethodNotAllowed(RequestError):
    status = 405
    issue_type = "not-supported"
    code = "interaction-not-supported"
    default_message = "This interaction is not supported."


class NotAcceptable(RequestError):
    status = 406
    issue_type = "not-supported"
    code = "format-not-supported"
    default_message = "facade only produces application/fhir+json."


class PayloadTooLarge(RequestError):
    status = 413
    issue_type = "too-long"
    code = "request-too-large"
    default_message = "The request body is larger than this server accepts."

    def __init__(self, limit: int):
        # No `Connection: close`: the server then discards the unread rest of the body itself
        # and the client, still uploading, can read this answer instead of a reset connection.
        super().__init__(
            f"The request body is larger than {limit} bytes, the most this server accepts."
        )


class UriTooLong(RequestError):
    status = 414
    issue_type = "too-long"
    code = "uri-too-long"
    default_message = "The request URL is longer than this server accepts."

    def __init__(self, part: str, limit: int):
        super().__init__(
            f"The request's {part} is longer than {limit} bytes, the most this server accepts."
        )


class UnsupportedMediaType(RequestError):
    status = 415
    issue_type = "not-supported"
    code = "media-type-not-supported"
    default_message = "Unsupported request body format."


class AuditUnavailable(FacadeError):
    """facade fails closed: while the audit log cannot be written, no patient data is served
    (an access that could not be recorded must not happen)."""

    status = 503
    issue_type = "transient"
    code = "audit-unavailable"
    default_message = (
        "facade cannot record accesses in its audit log right now, so it serves no patient "
        "data; try again later."
    )

    def __init__(self, retry_after: float):
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(
            f"{self.default_message} Retry after {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )


class UpstreamError(FacadeError):
    status = 502
    issue_type = "transient"
    code = "upstream-error"
    default_message = "The EHR did not answer correctly."


class UpstreamNotFound(UpstreamError):
    """The EHR answered 404 to what facade expected to exist (a listing of a patient it no
    longer has): answered to clients as any refusal, told apart by the mirror's sync."""


class UpstreamUnavailable(UpstreamError):
    code = "upstream-unavailable"
    default_message = "The EHR is unavailable; try again later."


class UpstreamTimeout(UpstreamError):
    status = 504
    issue_type = "timeout"
    code = "upstream-timeout"
    default_message = "The EHR did not answer in time; try again later."


class UpstreamThrottled(UpstreamError):
    status = 503
    issue_type = "throttled"
    code = "upstream-throttled"
    default_message = "The EHR's call budget is spent for now; try again later."

    def __init__(self, retry_after: float, message: str | None = None):
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(
            message or f"{self.default_message} Retry after {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )
        self.retry_after = float(seconds)


class UpstreamAuthFailed(UpstreamError):
    status = 503
    issue_type = "security"
    code = "upstream-authorization-failed"
    default_message = (
        "facade's authorization at the EHR no longer works; an operator must reconnect it."
    )


def operation_outcome(
    error: FacadeError, *, severity: str = "error", diagnostics: str | None = None
) -> dict[str, Any]:
    """The OperationOutcome for an error: issue code, stable error code, client-safe text."""
    issue: dict[str, Any] = {
        "severity": severity,
        "code": error.issue_type,
        "details": {
            "coding": [{"system": ERROR_CODE_SYSTEM, "code": error.code}],
            "text": error.message,
        },
    }
    if diagnostics:
        issue["diagnostics"] = diagnostics
    if error.expression:
        issue["expression"] = error.expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}
