"""FHIR REST routes under /fhir: thin. They parse HTTP, call the service, serialize.

Routes never build an OperationOutcome; they raise facade errors and app.py answers them.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from capability import capability_statement
from facade.auth.audit import AuditEntry, audit_event
from facade.auth.grant import Grant
from facade.auth.scopes import SEARCH
from facade.core.service import FhirService
from facade.errors import (
    Forbidden,
    InvalidParameterValue,
    InvalidRequest,
    MethodNotAllowed,
    NotAcceptable,
    UnknownParameter,
    UnsupportedMediaType,
)
from facade.fhir.dates import parse_date_range
from facade.fhir.parameters import read_parameters
from facade.fhir.query import FHIR_ID, SearchQuery, parse_query
from facade.mirror.serve import mirror_request
from facade.rest.access import authenticate
from facade.rest.freshness import freshness_headers, mirror_policy
from facade.rest.responses import FhirResponse

router = APIRouter()

_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_JSON_FORMATS = {"json", "application/json", "application/fhir+json"}


def _service(request: Request) -> FhirService:
    service: FhirService = request.app.state.runtime.service
    return service


def _check_accept(request: Request, query: SearchQuery | None = None) -> None:
    fmt = query.format if query else request.query_params.get("_format")
    if fmt is not None:
        if fmt.split(";")[0].strip() not in _JSON_FORMATS:
            raise NotAcceptable(f"_format={fmt} is not supported; facade produces JSON only.")
        return
    accept = request.headers.get("accept", "")
    if not accept:
        return
    media_types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    acceptable = {"*/*", "application/*", "application/json", "application/fhir+json"}
    if not any(m in acceptable for m in media_types):
        raise NotAcceptable()


def _lenient(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(part.strip() == "handling=lenient" for part in prefer.split(";"))


def _check_type(resource_type: str) -> None:
    if not _TYPE.match(resource_type):
        raise InvalidRequest(f"{resource_type!r} is not a FHIR resource type.")


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    _check_accept(request)
    service = _service(request)
    statement = capability_statement(
        service.registry,
        service.client.wire,
        service.base_url,
        request.app.state.started_at,
        mirror=service.mirror is not None,
    )
    return FhirResponse(statement)


@router.get("/AuditEvent")
async def audit_events(request: Request) -> Response:
    """The audit log as FHIR AuditEvent, for backend clients with system/AuditEvent scope."""
    grant = authenticate(request, "audit", "AuditEvent")
    if not grant.backend or grant.access("AuditEvent", SEARCH) is None:
        raise Forbidden("Reading the audit log needs a system/AuditEvent.rs scope.")
    query = dict(request.query_params)
    unknown = set(query) - {"patient", "agent", "date", "_count", "_offset"}
    if unknown:
        raise UnknownParameter(
            f"AuditEvent supports patient, agent, date (ge), _count; not {sorted(unknown)}."
        )
    try:
        count = min(int(query.get("_count", "100")), 1000)
        offset = int(query.get("_offset", "0"))
        # A FHIR date's start, clamped to what datetime holds (0001-01-01T00:00+14:00).
        since = parse_date_range(query["date"].removeprefix("ge")).low if "date" in query else None
    except ValueError:
        raise InvalidParameterValue(
            "_count, _offset and date must be numbers and a date."
        ) from None
    runtime = request.app.state.runtime
    records = runtime.audit.query(
        patient_id=(query.get("patient") or "").removeprefix("Patient/") or None,
        client_id=query.get("agent"),
        since=since,
        limit=count + 1,
        offset=offset,
    )
    base = runtime.settings.base_url
    rest = {k: v for k, v in query.items() if k != "_offset"}
    links = [{"relation": "self", "url": f"{base}/AuditEvent?{urlencode(query)}"}]
    if len(records) > count:
        after = urlencode({**rest, "_offset": str(offset + count)})
        links.append({"relation": "next", "url": f"{base}/AuditEvent?{after}"})
    events = [audit_event(r) for r in records[:count]]
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}/AuditEvent/{e['id']}",
                    "resource": e,
                    "search": {"mode": "match"},
                }
                for e in events
            ],
        }
    )


@router.get("/Binary/{binary_id}")
async def binary(binary_id: str, request: Request) -> Response:
    """A file behind an attachment: raw bytes, or a FHIR Binary when JSON is asked for."""
    grant = authenticate(request, "read", "Binary")
    if not FHIR_ID.fullmatch(binary_id):
        raise InvalidRequest(f"{binary_id!r} is not a valid FHIR id.")
    request.state.audit.resource_id = binary_id
    content = await _service(request).binary(binary_id, grant=grant)
    request.state.audit.patient_ids = [content.patient_id]
    request.state.audit.result_count = 1
    accept = request.headers.get("accept", "")
    if "fhir+json" in accept or request.query_params.get("_format") in _JSON_FORMATS:
        return FhirResponse(
            {
                "resourceType": "Binary",
                "id": binary_id,
                "contentType": content.content_type,
                "data": base64.b64encode(content.data).decode(),
            }
        )
    return Response(content=content.data, media_type=content.content_type)


@router.api_route("/{resource_type}/${operation}", methods=["GET", "POST"])
async def type_operation(resource_type: str, operation: str, request: Request) -> Response:
    grant = authenticate(request, "operation", resource_type)
    _check_type(resource_type)
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        pairs += await _form_pairs(request)
    query = parse_query(pairs)
    _check_accept(request, query)
    bundle = await _service(request).operation(resource_type, operation, query, grant=grant)
    _audit_results(request, bundle.get("entry", []))
    return FhirResponse(bundle)


def _audit_results(request: Request, entries: list[dict[str, Any]]) -> None:
    audit: AuditEntry = request.state.audit
    matches = [
        e["resource"] for e in entries if e.get("search", {}).get("mode", "match") == "match"
    ]
    audit.result_count = len(matches)
    patients = {p for p in (_patient_reference(r) for r in matches) if p}
    if patients and not audit.patient_ids:
        audit.patient_ids = sorted(patients)


def _patient_reference(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return str(resource["id"])
    for key in ("subject", "patient", "beneficiary"):
        value = resource.get(key)
        reference = value.get("reference", "") if isinstance(value, dict) else ""
        if reference.startswith("Patient/"):
            return reference.split("/", 1)[1]
    return None


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    """A POST body as parameters: a form, or a FHIR Parameters resource (validated; a
    Reference, Coding or Identifier value reads as its search token)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type == "application/x-www-form-urlencoded":
        try:
            return parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)
            )
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest("The form body could not be parsed.") from None
    if content_type in ("application/fhir+json", "application/json"):
        try:
            parameters = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The body is not valid JSON.") from None
        pairs: list[tuple[str, str]] = []
        # Off the event loop, like a $export kick-off's (fhir.resources takes ~75 µs a parameter).
        for parameter in await run_in_threadpool(read_parameters, parameters):
            if parameter.value is None:
                raise InvalidParameterValue(
                    f"{parameter.path} ({parameter.name}) has no value[x].",
                    expression=[parameter.path],
                )
            pairs.append((parameter.name, parameter.value))
        return pairs
    raise UnsupportedMediaType("Send a form or a FHIR Parameters resource.")


@router.post("/{resource_type}/_search")
async def search_post(resource_type: str, request: Request) -> Response:
    grant = authenticate(request, "search", resource_type)
    _check_type(resource_type)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("POST _search takes an application/x-www-form-urlencoded body.")
    body = await request.body()
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The form body could not be parsed.") from None
    query = parse_query(list(request.query_params.multi_items()) + form)
    return await _search(resource_type, query, request, grant)


@router.get("/{resource_type}")
async def search_get(resource_type: str, request: Request) -> Response:
    grant = authenticate(request, "search", resource_type)
    _check_type(resource_type)
    query = parse_query(list(request.query_params.multi_items()))
    return await _search(resource_type, query, request, grant)


async def _search(
    resource_type: str, query: SearchQuery, request: Request, grant: Grant
) -> Response:
    _check_accept(request, query)
    service = _service(request)
    with mirror_request(mirror_policy(request), service.live.cache) as served:
        result = await service.search(resource_type, query, grant=grant, lenient=_lenient(request))
    entries = result.bundle.get("entry", [])
    _audit_results(request, entries)
    headers = freshness_headers(served, service.clock.now(), entries=entries)
    if headers.get("ETag") and headers["ETag"] in _if_none_match(request):
        return Response(status_code=304, headers=headers)
    return FhirResponse(result.bundle, headers=headers)


@router.get("/{resource_type}/{resource_id}")
async def read(resource_type: str, resource_id: str, request: Request) -> Response:
    grant = authenticate(request, "read", resource_type)
    _check_type(resource_type)
    _check_accept(request)
    if not FHIR_ID.fullmatch(resource_id):
        raise InvalidRequest(f"{resource_id!r} is not a valid FHIR id.")
    request.state.audit.resource_id = resource_id
    service = _service(request)
    with mirror_request(mirror_policy(request), service.live.cache) as served:
        resource = await service.read(resource_type, resource_id, grant=grant)
    _audit_results(request, [{"resource": resource}])
    headers = {**freshness_headers(served, service.clock.now()), **_version_headers(resource)}
    etag = headers.get("ETag")
    if etag and etag in _if_none_match(request):
        return Response(status_code=304, headers=headers)
    return FhirResponse(resource, headers=headers)


def _if_none_match(request: Request) -> set[str]:
    return {v.strip() for v in request.headers.get("if-none-match", "").split(",") if v.strip()}


def _version_headers(resource: dict[str, Any]) -> dict[str, str]:
    last_updated = resource.get("meta", {}).get("lastUpdated")
    if not last_updated:
        return {}
    moment = datetime.fromisoformat(last_updated)
    version = re.sub(r"\D", "", moment.isoformat(timespec="seconds"))
    return {
        "ETag": f'W/"{version}"',
        "Last-Modified": format_datetime(moment.astimezone(UTC), usegmt=True),
    }


@router.api_route("/{resource_type}", methods=["POST", "PUT", "PATCH", "DELETE"])
@router.api_route("/{resource_type}/{resource_id}", methods=["PUT", "PATCH", "DELETE", "POST"])
async def not_offered(request: Request) -> Response:
    raise MethodNotAllowed(f"{request.method} is not supported: facade is read-only over this EHR.")
