"""The fuzzed server: facade on its embedded sandbox, in-process through httpx.ASGITransport,
driven synchronously from Hypothesis tests on a private event loop. It times every request
and turns an exception that escapes the app (a 500) into a report of its type and place.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from facade.app import create_app
from facade.clock import FakeClock
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.generator import generate
from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState
from tests.conftest import FACADE_BASE, FHIR_BASE
from tests.tokens import token
from tests.vendors import SANDBOX_PATIENTS, SANDBOX_SEED

#: The kinds of caller every operation is fuzzed as.
TOKEN_KINDS = ("system", "patient", "user", "none")
#: Frames of these packages locate a bug; library frames around them do not.
OWN_CODE = ("/facade/", "/mappings/", "/capability/")


@dataclass(frozen=True)
class Answer:
    """What one request got: the response (None when the app raised), its time, and the
    escaped exception as `Type at file:line in function` (None when there was none)."""

    response: httpx.Response | None
    seconds: float
    exception: str | None = None

    @property
    def status(self) -> int:
        return 500 if self.response is None else self.response.status_code


def _jwks_app() -> Starlette:
    """Every jwks_uri a fuzzed registration names resolves here (404), never to the network."""

    async def missing(request: Any) -> JSONResponse:
        return JSONResponse({"error": "not found"}, status_code=404)

    return Starlette(routes=[Route("/{path:path}", missing)])


class NoDns:
    """The resolver for jwks_uri hosts: nothing resolves, so a fuzzed registration or token
    request never sends a DNS question (or anything else) off this machine."""

    def __init__(self) -> None:
        self.questions: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.questions.append(host)
        raise OSError(f"{host} does not resolve here")


def where(exc: BaseException) -> str:
    """`Type at file:line in function` for the innermost frame of facade's own code, and
    the frame that raised when that is a library's."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if any(part in f.filename for part in OWN_CODE)]
    frame = (own or frames)[-1]
    found = f"{type(exc).__name__} at {_short(frame.filename)}:{frame.lineno} in {frame.name}"
    if frames and frames[-1] is not frame:
        inner = frames[-1]
        found += f" (raised in {_short(inner.filename)}:{inner.lineno} in {inner.name})"
    return found


def _short(filename: str) -> str:
    for marker in ("site-packages/", *(part.lstrip("/") for part in OWN_CODE)):
        if marker in filename:
            head = "" if marker == "site-packages/" else marker
            return head + filename.split(marker, 1)[1]
    return filename


class FuzzTarget:
    """facade on a fresh data directory and sandbox, with a token of each kind."""

    def __init__(self, data_dir: Path) -> None:
        self._loop = asyncio.Runner()
        dataset = generate(patients=SANDBOX_PATIENTS, seed=SANDBOX_SEED)
        patients = [str(p["id"]) for p in dataset.endpoint("patients")]
        doctors = [str(d["id"]) for d in dataset.endpoint("doctors")]
        #: The patient a patient token is bound to, and one it must never see.
        self.own_patient, self.other_patient = patients[0], patients[1]
        self.practitioner = doctors[0]
        clock = FakeClock()
        self.dns = NoDns()
        # The vendor's hourly quota is lifted: a fuzz run spends far more calls than an hour
        # allows, and the quota's 503 has its own tests (tests/rest/test_vendor_quota.py).
        limits = SandboxLimits(hourly_limit=10_000_000, burst_per_second=None)
        sandbox = SandboxState.with_default_app(
            dataset, seed=SANDBOX_SEED, limits=limits, clock=clock.now
        )
        settings = Settings(
            data_dir=data_dir,
            public_base_url=FHIR_BASE,
            upstream_hourly_limit=10_000_000,
            upstream_burst_per_second=0,
            upstream_timeout_seconds=0.5,
            upstream_max_wait_seconds=5.0,
            # The fuzzer sends far more requests a minute than a client may; the limit has
            # its own test (tests/auth/test_fhir_access.py).
            client_requests_per_minute=0,
        )
        self.runtime: Runtime = self._loop.run(
            build_runtime(
                settings,
                sandbox=sandbox,
                clock=clock,
                jwks_transport=httpx.ASGITransport(app=_jwks_app()),
                jwks_resolver=self.dns,
            )
        )
        app = create_app(settings, self.runtime)
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE
        )
        self._tokens = {
            "system": token(self.runtime, "system/*.rs system/Group.cruds"),
            "patient": token(
                self.runtime,
                "launch/patient patient/*.rs",
                patient_id=self.own_patient,
                fhir_user=f"Patient/{self.own_patient}",
            ),
            "user": token(
                self.runtime,
                "openid fhirUser user/*.rs",
                fhir_user=f"Practitioner/{self.practitioner}",
            ),
        }

    def authorization(self, kind: str) -> dict[str, str]:
        """The Authorization header of a token kind ({} for an unauthenticated caller)."""
        if kind == "none":
            return {}
        return {"Authorization": f"Bearer {self._tokens[kind]}"}

    def send(
        self,
        method: str,
        url: str,
        *,
        params: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> Answer:
        started = time.perf_counter()
        try:
            response = self._loop.run(
                self._client.request(
                    method, url, params=params, headers=_latin1(headers or {}), content=content
                )
            )
        except Exception as exc:  # the app raised: its 500 never reached us as a response
            return Answer(None, time.perf_counter() - started, where(exc))
        return Answer(response, time.perf_counter() - started)

    def close(self) -> None:
        self._loop.run(self._client.aclose())
        self._loop.run(self.runtime.aclose())
        self._loop.close()


def _latin1(headers: dict[str, str]) -> dict[str, bytes]:
    """Header values as bytes: HTTP allows latin-1 octets, httpx would insist on ASCII."""
    return {k: v.encode("latin-1", "replace") for k, v in headers.items()}
