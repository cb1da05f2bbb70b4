"""A small stateful CareCloud for the client's tests, following the wire contract
(notes/plan-12.md): TOTP logins with lockout and replay refusal, expiring sessions, rotating
refresh tokens, Link-header paging, unpaged /encounters and a fault plan.

It stands in until the CareCloud sandbox (facade/upstream/carecloud/sandbox/) is on main; it is
deliberately small, and every request it sees is logged for the tests to assert on.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from facade.clock import FakeClock
from facade.upstream.carecloud.totp import hotp, time_step

BASE_URL = "http://carecloud.sandbox"
USERNAME = "facade-bot"
PASSWORD = "correct horse battery staple"
TOTP_SECRET = base64.b32encode(b"facade-totp-test-secret!").decode()
BUSINESS_ENTITY_ID = "6f1c1d2e-8a4b-4c1e-9f00-1234567890ab"
SESSION_SECONDS = 900
REFRESH_LIFETIME = timedelta(hours=12)
LOCK_AFTER = 5
LOCKED_FOR = timedelta(minutes=15)


@dataclass
class Seen:
    method: str
    path: str
    status: int
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeCareCloud:
    clock: FakeClock
    patients: list[dict[str, Any]] = field(default_factory=list)
    encounters: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 3
    #: Nth API call (1-based, /authenticate not counted) → "500" | "429" | "timeout" | "expire".
    faults: dict[int, str] = field(default_factory=dict)
    retry_after: str = "7"
    sessions: dict[str, datetime] = field(default_factory=dict)
    refresh_tokens: dict[str, datetime] = field(default_factory=dict)
    used_steps: set[int] = field(default_factory=set)
    failures: int = 0
    locked_until: datetime | None = None
    api_calls: int = 0
    seen: list[Seen] = field(default_factory=list)

    @classmethod
    def with_patients(cls, clock: FakeClock, count: int = 7) -> FakeCareCloud:
        fake = cls(clock)
        for n in range(count):
            pid = str(uuid.UUID(int=n + 1, version=4))
            fake.patients.append({"id": pid, "first_name": f"Pat{n}", "last_name": "Doe"})
            for k in range(2):
                fake.encounters.append(
                    {"id": str(uuid.UUID(int=1000 + 10 * n + k, version=4)), "patient_id": pid}
                )
        return fake

    # -- what tests read ---------------------------------------------------------------------

    def auth_calls(self) -> list[Seen]:
        return [s for s in self.seen if s.path == "/authenticate"]

    def logins(self) -> list[Seen]:
        return [s for s in self.auth_calls() if "username" in s.body]

    def refreshes(self) -> list[Seen]:
        return [s for s in self.auth_calls() if s.body.get("grant_type") == "refresh_token"]

    def api(self) -> list[Seen]:
        return [s for s in self.seen if s.path != "/authenticate"]

    def forget_sessions(self) -> None:
        """A vendor restart: every session and refresh token is gone."""
        self.sessions.clear()
        self.refresh_tokens.clear()

    # -- the app -----------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/authenticate", self._authenticate, methods=["POST"]),
                Route("/authorization", self._api(self._authorization)),
                Route("/patients", self._api(self._patients)),
                Route("/patients/{id}", self._api(self._patient)),
                Route("/patients/{id}/ccda", self._api(self._ccda)),
                Route("/encounters", self._api(self._encounters)),
                Route("/appointments", self._api(self._appointments)),
                Route("/files/{name}", self._api(self._file)),
            ]
        )

    async def _authenticate(self, request: Request) -> Response:
        body = await request.json()
        shown = {k: v for k, v in body.items()}
        response = self._answer_authenticate(body)
        self.seen.append(Seen("POST", "/authenticate", response.status_code, shown))
        return response

    def _answer_authenticate(self, body: dict[str, Any]) -> Response:
        now = self.clock.now()
        if body.get("grant_type") == "refresh_token":
            expires = self.refresh_tokens.pop(str(body.get("refresh_token")), None)
            if expires is None or expires <= now:
                return _error(401, "invalid_refresh_token")
            return self._new_session()
        if self.locked_until is not None and now < self.locked_until:
            return _error(403, "account_locked")
        if not body.get("mfa_code"):
            return self._failed("mfa_required")
        if body.get("username") != USERNAME or body.get("password") != PASSWORD:
            return self._failed("invalid_credentials")
        current = time_step(now)
        accepted = {
            hotp(TOTP_SECRET, s): s
            for s in (current - 1, current, current + 1)
            if s not in self.used_steps
        }
        step = accepted.get(str(body["mfa_code"]))
        if step is None:
            return self._failed("invalid_mfa_code")
        self.used_steps.add(step)  # a code is good once
        self.failures = 0
        return self._new_session()

    def _failed(self, error: str) -> Response:
        self.failures += 1
        if self.failures >= LOCK_AFTER:
            self.locked_until = self.clock.now() + LOCKED_FOR
        return _error(401, error)

    def _new_session(self) -> Response:
        session, refresh = secrets.token_hex(16), secrets.token_hex(20)
        now = self.clock.now()
        self.sessions[session] = now + timedelta(seconds=SESSION_SECONDS)
        self.refresh_tokens[refresh] = now + REFRESH_LIFETIME
        return JSONResponse(
            {
                "session_token": session,
                "token_type": "Bearer",
                "expires_in": SESSION_SECONDS,
                "refresh_token": refresh,
                "business_entity_id": BUSINESS_ENTITY_ID,
            }
        )

    def _api(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            response = await self._guarded(request, handler)
            self.seen.append(Seen("GET", request.url.path, response.status_code))
            return response

        return endpoint

    async def _guarded(self, request: Request, handler: Any) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expires = self.sessions.get(token)
        if expires is None:
            return _error(401, "invalid_session")
        if expires <= self.clock.now():
            return _error(401, "session_expired")
        self.api_calls += 1
        fault = self.faults.get(self.api_calls)
        if fault == "500":
            return _error(500, "internal error")
        if fault == "429":
            return JSONResponse(
                {"error": "rate_limited"},
                status_code=429,
                headers={"Retry-After": self.retry_after},
            )
        if fault == "timeout":
            await asyncio.sleep(1.0)
        if fault == "expire":
            self.sessions[token] = self.clock.now()
            return _error(401, "session_expired")
        result: Response = handler(request)
        return result

    def _authorization(self, request: Request) -> Response:
        return JSONResponse(
            {
                "user": {"id": 7, "username": USERNAME, "first_name": "Api", "last_name": "User"},
                "business_entity": {
                    "id": BUSINESS_ENTITY_ID,
                    "name": "Riverbend Family Medicine",
                    "npi": "1234567893",
                    "time_zone": "America/New_York",
                },
            }
        )

    def _patients(self, request: Request) -> Response:
        page = int(request.query_params.get("page", "1"))
        filters = {k: v for k, v in request.query_params.items() if k != "page"}
        chosen = [
            p
            for p in self.patients
            if all(str(p.get(k, "")).lower().startswith(v.lower()) for k, v in filters.items())
        ]
        last = max(1, -(-len(chosen) // self.page_size))
        start = (page - 1) * self.page_size
        body = {"patients": chosen[start : start + self.page_size]}

        def url(n: int) -> str:
            return f"{BASE_URL}/patients?{urlencode({**filters, 'page': str(n)})}"

        links = [f'<{url(1)}>; rel="first"', f'<{url(last)}>; rel="last"']
        if page > 1:
            links.append(f'<{url(page - 1)}>; rel="prev"')
        if page < last:
            links.append(f'<{url(page + 1)}>; rel="next"')
        return JSONResponse(body, headers={"Link": ", ".join(links)})

    def _patient(self, request: Request) -> Response:
        found = [p for p in self.patients if p["id"] == request.path_params["id"]]
        if not found:
            return _error(404, "Patient not found")
        return JSONResponse({"patient": found[0]})

    def _ccda(self, request: Request) -> Response:
        if not any(p["id"] == request.path_params["id"] for p in self.patients):
            return _error(404, "Patient not found")
        return Response(b"<ClinicalDocument/>", media_type="application/xml")

    def _encounters(self, request: Request) -> Response:
        patient_id = request.query_params.get("patient_id")
        if not patient_id:
            return _error(400, "patient_id is required")
        return JSONResponse(
            {"encounters": [e for e in self.encounters if e["patient_id"] == patient_id]}
        )

    def _appointments(self, request: Request) -> Response:
        """One appointment a day from 2026-01-01, unpaged here; the 93-day rule enforced."""
        start = date.fromisoformat(request.query_params["start_date"])
        end = date.fromisoformat(request.query_params["end_date"])
        if (end - start).days + 1 > 93:
            return _error(400, "Date range may not exceed 93 days")
        first = date(2026, 1, 1)
        days = [first + timedelta(days=n) for n in range(365)]
        chosen = [d for d in days if start <= d <= end]
        return JSONResponse(
            {
                "appointments": [
                    {
                        "id": str(uuid.UUID(int=d.toordinal(), version=4)),
                        "start_time": f"{d.isoformat()}T09:00:00-05:00",
                    }
                    for d in chosen
                ]
            }
        )

    def _file(self, request: Request) -> Response:
        return Response(b"%PDF-1.4 fake", media_type="application/pdf")


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status)
