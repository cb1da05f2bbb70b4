"""FHIR REST routes under /fhir: thin. They parse HTTP, call the service, serialize.

Routes never build an OperationOutcome; they raise facade errors and app.py answers them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from capability import capability_statement
from facade.core.service import FhirService
from facade.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotAcceptable,
    UnsupportedMediaType,
)
from facade.fhir.query import SearchQuery, parse_query
from facade.rest.responses import FhirResponse

router = APIRouter()

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
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
        service.registry, service.base_url, request.app.state.started_at
    )
    return FhirResponse(statement)


@router.api_route("/{resource_type}/${operation}", methods=["GET", "POST"])
async def type_operation(resource_type: str, operation: str, request: Request) -> Response:
    _check_type(resource_type)
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        pairs += await _form_pairs(request)
    query = parse_query(pairs)
    _check_accept(request, query)
    return FhirResponse(await _service(request).operation(resource_type, operation, query))


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    """A POST body as parameters: a form, or a FHIR Parameters resource of simple values."""
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
        if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
            raise InvalidRequest("The body must be a FHIR Parameters resource.")
        pairs: list[tuple[str, str]] = []
        for parameter in parameters.get("parameter", []):
            name = parameter.get("name") if isinstance(parameter, dict) else None
            values = [v for k, v in parameter.items() if k.startswith("value")] if name else []
            if not name or len(values) != 1 or isinstance(values[0], dict | list):
                raise InvalidRequest("Each parameter needs a name and one simple value[x].")
            pairs.append(
                (
                    str(name),
                    str(values[0]).lower() if isinstance(values[0], bool) else str(values[0]),
                )
            )
        return pairs
    raise UnsupportedMediaType("Send a form or a FHIR Parameters resource.")


@router.post("/{resource_type}/_search")
async def search_post(resource_type: str, request: Request) -> Response:
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
    return await _search(resource_type, query, request)


@router.get("/{resource_type}")
async def search_get(resource_type: str, request: Request) -> Response:
    _check_type(resource_type)
    query = parse_query(list(request.query_params.multi_items()))
    return await _search(resource_type, query, request)


async def _search(resource_type: str, query: SearchQuery, request: Request) -> Response:
    _check_accept(request, query)
    result = await _service(request).search(resource_type, query, lenient=_lenient(request))
    return FhirResponse(result.bundle)


@router.get("/{resource_type}/{resource_id}")
async def read(resource_type: str, resource_id: str, request: Request) -> Response:
    _check_type(resource_type)
    _check_accept(request)
    if not _ID.match(resource_id):
        raise InvalidRequest(f"{resource_id!r} is not a valid FHIR id.")
    resource = await _service(request).read(resource_type, resource_id)
    headers = _version_headers(resource)
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
