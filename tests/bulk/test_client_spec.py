"""`facade export` against a minimal Bulk Data server that is not facade: a small stateful
ASGI app with its own token endpoint path, tokens it revokes, Retry-After as seconds and as
an HTTP date, 429 on a kick-off, gzip, files on another host and a transfer that breaks off.
The client must get everything right from the specifications alone."""

from __future__ import annotations

import gzip
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from facade.bulk.client import ExportError, ExportOptions, load_credentials, run_export

BASE = "http://bulk.example/r4"
TOKEN_URL = "http://auth.example/oauth2/token"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
FILES = {
    "patients.ndjson": b"".join(
        json.dumps({"resourceType": "Patient", "id": str(i)}).encode() + b"\n" for i in range(40)
    ),
    "obs.ndjson": b"".join(
        json.dumps({"resourceType": "Observation", "id": f"o{i}"}).encode() + b"\n"
        for i in range(7)
    ),
    "errors.ndjson": json.dumps({"resourceType": "OperationOutcome", "issue": []}).encode() + b"\n",
}


class Clock:
    def __init__(self) -> None:
        self.at = NOW.timestamp()
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.at += seconds


@dataclass
class FakeBulkServer:
    public_key: dict[str, Any]
    client_id: str
    clock: Clock
    #: The count the manifest claims for obs.ndjson (tests make it lie).
    obs_count: int = 7
    tokens: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    jtis: set[str] = field(default_factory=set)
    kickoffs: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    polls: int = 0
    file_requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    deleted: bool = False

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/r4/.well-known/smart-configuration", self.discovery),
                Route("/oauth2/token", self.token, methods=["POST"]),
                Route("/r4/$export", self.kickoff, methods=["GET"]),
                Route("/r4/Patient/$export", self.kickoff, methods=["POST"]),
                Route("/status/{job}", self.status, methods=["GET", "DELETE"]),
                Route("/files/{name}", self.file),
            ]
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({"token_endpoint": TOKEN_URL, "capabilities": []})

    async def token(self, request: Request) -> Response:
        form = await request.form()
        assertion = str(form["client_assertion"])
        key = ECKey.import_key(self.public_key)
        token = jwt.decode(assertion, key, algorithms=["ES384"])
        claims, header = token.claims, token.header
        now = self.clock.now()
        assert header["typ"] == "JWT" and header["kid"] == self.public_key["kid"]
        assert claims["iss"] == claims["sub"] == self.client_id
        assert claims["aud"] == TOKEN_URL
        assert now < claims["exp"] <= now + 300
        assert claims["jti"] not in self.jtis
        self.jtis.add(claims["jti"])
        assert form["grant_type"] == "client_credentials"
        assert form["client_assertion_type"].endswith(":jwt-bearer")
        assert form["scope"] == "system/Patient.rs system/Observation.rs"
        issued = secrets.token_hex(8)
        self.tokens.append(issued)
        return JSONResponse(
            {"access_token": issued, "token_type": "bearer", "expires_in": 300, "scope": "x"}
        )

    def authorized(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme == "Bearer" and value in self.tokens and value not in self.revoked

    async def kickoff(self, request: Request) -> Response:
        if not self.authorized(request):
            return Response(status_code=401)
        assert request.headers["accept"] == "application/fhir+json"
        assert request.headers["prefer"] == "respond-async"
        body = json.loads(await request.body()) if request.method == "POST" else None
        self.kickoffs.append((request.method, str(request.url), body))
        if len(self.kickoffs) == 1:
            return JSONResponse({"resourceType": "OperationOutcome"}, 429, {"Retry-After": "11"})
        # The first token stops working: the client must fetch another one.
        self.revoked.add(self.tokens[0])
        return Response(status_code=202, headers={"Content-Location": "/status/job-1"})

    async def status(self, request: Request) -> Response:
        if not self.authorized(request):
            return Response(status_code=401)
        if request.method == "DELETE":
            self.deleted = True
            return Response(status_code=202)
        self.polls += 1
        if self.polls == 1:
            return Response(
                status_code=202, headers={"X-Progress": "Exporting: 40%", "Retry-After": "7"}
            )
        if self.polls == 2:
            later = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
            return Response(
                status_code=202, headers={"X-Progress": "nearly done", "Retry-After": later}
            )
        if self.polls == 3:
            return Response(status_code=202)  # no Retry-After, no X-Progress
        return JSONResponse(
            {
                "transactionTime": "2030-01-01T00:00:00Z",
                "request": f"{BASE}/$export",
                "requiresAccessToken": True,
                "output": [
                    {"type": "Patient", "url": "http://files.example/files/patients.ndjson",
                     "count": 40},
                    {"type": "Observation", "url": "http://files.example/files/obs.ndjson",
                     "count": self.obs_count},
                ],
                "error": [
                    {"type": "OperationOutcome", "url": "http://files.example/files/errors.ndjson"}
                ],
            }
        )  # fmt: skip

    async def file(self, request: Request) -> Response:
        if not self.authorized(request):
            return Response(status_code=401)
        name = request.path_params["name"]
        self.file_requests.append((name, dict(request.headers)))
        content = FILES[name]
        ranged = request.headers.get("range", "")
        if ranged:
            start = int(ranged.removeprefix("bytes=").rstrip("-"))
            return Response(
                content[start:],
                status_code=206,
                headers={
                    "Content-Range": f"bytes {start}-{len(content) - 1}/{len(content)}",
                    "Content-Type": "application/fhir+ndjson",
                },
            )
        if name == "patients.ndjson":
            # The transfer breaks off: the whole length announced, a third of it sent.
            return BrokenResponse(content, len(content) // 3)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                gzip.compress(content),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/fhir+ndjson"},
            )
        return Response(content, headers={"Content-Type": "application/fhir+ndjson"})


class BrokenResponse(Response):
    def __init__(self, content: bytes, sent: int):
        super().__init__(content, headers={"Content-Type": "application/fhir+ndjson"})
        self.sent = sent

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: self.sent]})


@pytest.fixture
def key_file(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    key = ECKey.generate_key("P-384", parameters={"kid": "spec-key"}, private=True)
    path = tmp_path / "key.jwk"
    path.write_text(json.dumps(key.as_dict(private=True)))
    return path, key.as_dict(private=False)


def options(tmp_path: Path, key: Path, **extra: Any) -> ExportOptions:
    return ExportOptions(
        base_url=BASE,
        out=tmp_path / "out",
        types=("Patient", "Observation"),
        credentials=load_credentials("spec-client", key),
        **extra,
    )


async def test_a_minimal_bulk_server_is_exported_from_the_specs_alone(tmp_path, key_file):
    path, public = key_file
    clock = Clock()
    server = FakeBulkServer(public, "spec-client", clock)
    progress: list[tuple[str, float | None]] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app())) as http:
        result = await run_export(
            options(tmp_path, path),
            http,
            progress=lambda text, pct: progress.append((text, pct)),
            sleep=clock.sleep,
            now=clock.now,
        )
    # 429 on the first kick-off (Retry-After 11), then polls: 7 s, an HTTP date 30 s after
    # the start of the export (11 + 7 s already passed), then the client's own back-off.
    assert clock.sleeps == [11.0, 7.0, 12.0, 1.0]
    assert progress == [
        ("Exporting: 40%", 40.0),
        ("nearly done", None),
        ("in progress", None),
        ("complete", 100.0),
    ]
    assert [k[0] for k in server.kickoffs] == ["GET", "GET"]
    assert "_type=Patient%2CObservation" in server.kickoffs[0][1]
    assert len(server.tokens) == 2  # the first was revoked; the client asked again
    out = tmp_path / "out"
    assert (out / "Patient.1.ndjson").read_bytes() == FILES["patients.ndjson"]
    assert (out / "Observation.1.ndjson").read_bytes() == FILES["obs.ndjson"]
    assert (out / "error.OperationOutcome.1.ndjson").read_bytes() == FILES["errors.ndjson"]
    assert result.counts() == {"Patient": 40, "Observation": 7}
    assert [f.resumed for f in result.files] == [1, 0, 0]
    patient_requests = [h for n, h in server.file_requests if n == "patients.ndjson"]
    assert "range" not in patient_requests[0] and "gzip" in patient_requests[0]["accept-encoding"]
    third = len(FILES["patients.ndjson"]) // 3
    assert patient_requests[1]["range"] == f"bytes={third}-"
    assert all(h["authorization"].startswith("Bearer ") for _, h in server.file_requests)
    assert result.errors[0].expected is None and result.errors[0].count == 1


async def test_patients_are_sent_as_a_parameters_body(tmp_path, key_file):
    path, public = key_file
    clock = Clock()
    server = FakeBulkServer(public, "spec-client", clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app())) as http:
        await run_export(
            options(tmp_path, path, patients=("p1", "Patient/p2"), since="2029-01-01T00:00:00Z"),
            http,
            sleep=clock.sleep,
            now=clock.now,
        )
    method, url, body = server.kickoffs[-1]
    assert method == "POST" and url == f"{BASE}/Patient/$export"
    assert body == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Patient,Observation"},
            {"name": "_since", "valueInstant": "2029-01-01T00:00:00Z"},
            {"name": "patient", "valueReference": {"reference": "Patient/p1"}},
            {"name": "patient", "valueReference": {"reference": "Patient/p2"}},
        ],
    }


async def test_a_count_that_does_not_match_the_manifest_fails_the_export(tmp_path, key_file):
    path, public = key_file
    clock = Clock()
    server = FakeBulkServer(public, "spec-client", clock, obs_count=8)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app())) as http:
        with pytest.raises(ExportError, match=r"Observation.1.ndjson has 7 lines, expected 8"):
            await run_export(options(tmp_path, path), http, sleep=clock.sleep, now=clock.now)
