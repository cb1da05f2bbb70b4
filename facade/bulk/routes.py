"""Bulk Data routes under /fhir: kick-off ($export at system, Patient and Group level, GET
and POST), status polling, cancel, file download, and Group read/search/create. Thin: they
check headers, authenticate and call BulkExports; errors become OperationOutcome in app.py.
Status and file requests are not counted against the client's request rate (never a 429).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse

from facade.auth.audit import AuditEntry
from facade.auth.grant import Grant
from facade.auth.scopes import READ, SEARCH
from facade.auth.tokens import TokenRejected
from facade.bulk.exports import BulkExports
from facade.bulk.groups import group_resource, may_see_groups
from facade.errors import Forbidden, InvalidRequest, Unauthorized
from facade.rest.access import authenticate
from facade.rest.responses import FhirResponse

router = APIRouter()

NDJSON = "application/fhir+ndjson"
CHUNK = 1 << 16


def _exports(request: Request) -> BulkExports:
    exports: BulkExports | None = getattr(request.app.state.runtime, "exports", None)
    if exports is None:
        raise InvalidRequest("Bulk export is not enabled on this server.")
    return exports


def _check_kickoff_headers(request: Request) -> None:
    accept = request.headers.get("accept", "")
    if "application/fhir+json" not in accept:
        raise InvalidRequest("A $export kick-off needs the header Accept: application/fhir+json.")
    prefer = [p.strip() for p in request.headers.get("prefer", "").split(",")]
    if "respond-async" not in prefer:
        raise InvalidRequest("A $export kick-off needs the header Prefer: respond-async.")


def _grant_unmetered(request: Request, interaction: str) -> Grant:
    """Like `authenticate`, without counting the request against the client's rate limit."""
    request.app.state.runtime.audit.refuse_if_failing()
    audit = AuditEntry(interaction=interaction)
    request.state.audit = audit
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    try:
        grant: Grant = request.app.state.runtime.tokens.grant_of(token.strip())
    except TokenRejected as rejected:
        raise Unauthorized(
            "The access token is not valid.", error="invalid_token", description=str(rejected)
        ) from None
    audit.client_id = grant.client_id
    return grant


async def _kick_off(request: Request, level: str, group_id: str = "") -> Response:
    _check_kickoff_headers(request)
    grant = authenticate(request, "export", "Group" if level == "group" else "")
    if level == "group":
        _group_access(grant, READ)
    exports = _exports(request)
    body = None
    if request.method == "POST":
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw else {"resourceType": "Parameters"}
        except orjson.JSONDecodeError:
            raise InvalidRequest("The POST body is not JSON.") from None
    from facade.bulk.request import parse_parameters

    # Off the event loop: fhir.resources validates ~75 µs per parameter, and a body may name
    # 20,000 patients (1.5 s of work that would otherwise stall every other request).
    parameters = await run_in_threadpool(
        parse_parameters, parse_qsl(request.url.query, keep_blank_values=True), body
    )
    job = await exports.kick_off(
        level,
        parameters,
        grant,
        str(request.url),
        group_id=group_id,
        from_post=request.method == "POST",
    )
    base = exports.service.base_url
    return Response(
        status_code=202, headers={"Content-Location": f"{base}/$export-status/{job.id}"}
    )


@router.api_route("/$export", methods=["GET", "POST"])
async def system_export(request: Request) -> Response:
    return await _kick_off(request, "system")


@router.api_route("/Patient/$export", methods=["GET", "POST"])
async def patient_export(request: Request) -> Response:
    return await _kick_off(request, "patient")


@router.api_route("/Group/{group_id}/$export", methods=["GET", "POST"])
async def group_export(request: Request, group_id: str) -> Response:
    return await _kick_off(request, "group", group_id)


@router.get("/$export-status/{job_id}")
async def export_status(request: Request, job_id: str) -> Response:
    grant = _grant_unmetered(request, "export")
    exports = _exports(request)
    status = exports.status(job_id, grant, exports.service.base_url)
    if status.state in ("queued", "running", "paused"):
        return Response(
            status_code=202,
            headers={"X-Progress": status.progress, "Retry-After": str(status.retry_after)},
        )
    if status.state == "failed":
        raise _failed(status.manifest.get("failure", ""))
    job = exports.store.job(job_id)
    headers = {}
    if job is not None and job.expires_at is not None:
        headers["Expires"] = format_datetime(job.expires_at, usegmt=True)
    return JSONResponse(status.manifest, headers=headers)


def _failed(message: str) -> Exception:
    from facade.errors import FacadeError

    error = FacadeError(message or "The export failed.")
    error.code = "export-failed"
    return error


@router.delete("/$export-status/{job_id}")
async def export_cancel(request: Request, job_id: str) -> Response:
    grant = _grant_unmetered(request, "export")
    _exports(request).cancel(job_id, grant)
    return Response(status_code=202)


@router.get("/$export-file/{job_id}/{name}")
async def export_file(request: Request, job_id: str, name: str) -> Response:
    grant = _grant_unmetered(request, "export")
    source = _exports(request).file(job_id, name, grant)
    encodings = [
        e.split(";")[0].strip() for e in request.headers.get("accept-encoding", "").split(",")
    ]
    vary = {"Vary": "Accept-Encoding"}
    if "gzip" in encodings and (not isinstance(source, Path) or "range" not in request.headers):
        return StreamingResponse(
            _gzipped(_chunks(source)),
            media_type=NDJSON,
            headers={"Content-Encoding": "gzip", **vary},
        )
    if isinstance(source, Path):
        return FileResponse(source, media_type=NDJSON, headers=vary)
    # From the object store: streamed (a sync iterator, read off the event loop).
    return StreamingResponse(source, media_type=NDJSON, headers=vary)


def _chunks(source: Path | Iterator[bytes]) -> Iterator[bytes]:
    if not isinstance(source, Path):
        yield from source
        return
    with source.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _gzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """gzip on the way out, a chunk at a time (a sync iterator: Starlette reads it in a
    thread, so neither compressing nor reading blocks the event loop)."""
    import zlib

    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


# -- Group ---------------------------------------------------------------------------------


def _group_access(grant: Grant, permission: str) -> None:
    """Decided before any vendor call: a patient's token never learns a Group exists."""
    if not may_see_groups(grant, permission):
        verb = "read" if permission == READ else "search"
        raise Forbidden(
            f"The access token does not grant {verb} access to Group resources: groups are"
            " practice data, for backend services (system/Group scopes) and practitioners"
            " (user/Group scopes)."
        )


@router.get("/Group")
async def group_search(request: Request) -> Response:
    grant = authenticate(request, "search", "Group")
    _group_access(grant, SEARCH)
    exports = _exports(request)
    groups = await exports.groups.all()
    base = exports.service.base_url
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(groups),
        "link": [{"relation": "self", "url": f"{base}/Group"}],
        "entry": [
            {
                "fullUrl": f"{base}/Group/{g.id}",
                "resource": group_resource(g),
                "search": {"mode": "match"},
            }
            for g in groups
        ],
    }
    return FhirResponse(bundle)


@router.get("/Group/{group_id}")
async def group_read(request: Request, group_id: str) -> Response:
    grant = authenticate(request, "read", "Group")
    _group_access(grant, READ)
    info = await _exports(request).groups.get(group_id)
    return FhirResponse(group_resource(info))


@router.post("/Group")
async def group_create(request: Request) -> Response:
    grant = authenticate(request, "create", "Group")
    if not grant.backend or not grant.scopes.granting("system", "Group", "c"):
        raise Forbidden("Creating a Group needs a backend token with system/Group.c (or .write).")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body is not JSON.") from None
    if not isinstance(body, dict) or body.get("resourceType") != "Group":
        raise InvalidRequest("POST /Group takes a Group resource.")
    group_id = str(body.get("id") or body.get("name") or "").strip().replace(" ", "-")
    members = body.get("member") or []
    if not isinstance(members, list) or not all(
        isinstance(m, dict) and isinstance(m.get("entity"), dict) for m in members
    ):
        raise InvalidRequest("Group.member takes a list of members, each with an entity Reference.")
    references = [str(m["entity"].get("reference", "")) for m in members]
    exports = _exports(request)
    info = await exports.groups.define(
        group_id,
        str(body.get("name") or group_id),
        references,
        grant.client_id,
        exports.clock.now(),
    )
    base = exports.service.base_url
    return FhirResponse(
        group_resource(info), status_code=201, headers={"Location": f"{base}/Group/{info.id}"}
    )


__all__ = ["router", "gzip"]
