"""The authorization server driven over real HTTP (httpx.ASGITransport) against create_app,
with a small in-process app that serves client JWK Sets for jwks_uri. No mocks."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from facade.app import create_app
from facade.auth.server import Authority
from facade.clock import FakeClock
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import FACADE_BASE, FHIR_BASE

TOKEN_URL = f"{FACADE_BASE}/auth/token"
REDIRECT_URI = "https://app.example/callback"
PASSWORD = "correct horse battery staple"
PATIENT_SCOPES = (
    "launch/patient openid fhirUser offline_access patient/Patient.rs "
    "patient/Observation.rs patient/Condition.rs"
)


#: What the test resolver answers for keys.example: a public address, so the jwks_uri
#: guard lets it through. Nothing ever connects to it: the transport is in-process.
KEYS_EXAMPLE_ADDRESS = "93.184.215.14"


class StaticResolver:
    """A DNS that answers from a table and records every question; an unknown name does
    not resolve (OSError), so a test never reaches the real DNS."""

    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers: dict[str, list[str]] = {"keys.example": [KEYS_EXAMPLE_ADDRESS]}
        self.answers.update(answers or {})
        self.questions: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.questions.append(host)
        if host not in self.answers:
            raise OSError(f"{host} does not resolve")
        return list(self.answers[host])


class JwksHost:
    """A client's key server: serves whatever JWK Set it holds, with a chosen max-age."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[str, Any]] = {}
        self.max_age = 300
        self.requests = 0
        #: (Host header, address the request was sent to) of every request.
        self.seen: list[tuple[str, str]] = []

        async def serve(request: Request) -> JSONResponse:
            self.requests += 1
            server = request.scope.get("server") or ("", 0)
            self.seen.append((request.headers.get("host", ""), str(server[0])))
            name = request.path_params["name"]
            if name not in self.sets:
                return JSONResponse({"error": "not found"}, status_code=404)
            return JSONResponse(
                self.sets[name], headers={"Cache-Control": f"max-age={self.max_age}"}
            )

        self.app = Starlette(routes=[Route("/{name}/jwks.json", serve)])

    def url(self, name: str) -> str:
        return f"http://keys.example/{name}/jwks.json"


@pytest.fixture
def jwks_host() -> JwksHost:
    return JwksHost()


@pytest.fixture
def jwks_resolver() -> StaticResolver:
    return StaticResolver()


@pytest.fixture
async def auth_runtime(
    settings: Settings,
    sandbox: SandboxState,
    clock: FakeClock,
    jwks_host: JwksHost,
    jwks_resolver: StaticResolver,
) -> AsyncIterator[Runtime]:
    built = await build_runtime(
        settings,
        sandbox=sandbox,
        clock=clock,
        jwks_transport=httpx.ASGITransport(app=jwks_host.app),
        jwks_resolver=jwks_resolver,
    )
    yield built
    await built.aclose()


@pytest.fixture
def authority(auth_runtime: Runtime) -> Authority:
    assert auth_runtime.authorization is not None
    return auth_runtime.authorization


@pytest.fixture
async def http(auth_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(auth_runtime.settings, auth_runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE
    ) as client:
        yield client


@pytest.fixture
def patient_id(dataset: SandboxDataset) -> str:
    return str(dataset.endpoint("patients")[0]["id"])


@pytest.fixture
def patient_user(authority: Authority, patient_id: str) -> str:
    authority.users.create("pat", PASSWORD, f"Patient/{patient_id}")
    return "pat"


@dataclass
class App:
    client_id: str
    secret: str = ""
    redirect_uri: str = REDIRECT_URI


@pytest.fixture
def confidential_app(authority: Authority) -> App:
    made = authority.clients.register(
        name="Confidential app",
        auth_method="client_secret_basic",
        redirect_uris=[REDIRECT_URI],
        scope="",
    )
    return App(made.client.client_id, made.client_secret)


@pytest.fixture
def public_app(authority: Authority) -> App:
    made = authority.clients.register(
        name="Public app", auth_method="none", redirect_uris=[REDIRECT_URI], scope=""
    )
    return App(made.client.client_id)


def pkce() -> tuple[str, str]:
    verifier = f"{secrets.token_hex(18)}-{secrets.token_hex(18)}"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def basic(app: App) -> dict[str, str]:
    raw = base64.b64encode(f"{app.client_id}:{app.secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def authorize_params(app: App, scope: str = PATIENT_SCOPES, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": scope,
        "state": secrets.token_hex(8),
        "aud": FHIR_BASE,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return params


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CHECKED = re.compile(r'<input type="checkbox" id="[^"]+" name="scope" value="([^"]+)" checked>')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@dataclass
class Launch:
    verifier: str
    challenge: str
    state: str
    location: str
    query: dict[str, list[str]] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.query["code"][0]


async def log_in(
    http: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    page = await http.get("/auth/login")
    return await http.post(
        "/auth/login",
        data={"csrf_token": csrf_of(page.text), "username": username, "password": password},
    )


async def launch(
    http: httpx.AsyncClient,
    app: App,
    username: str,
    scope: str = PATIENT_SCOPES,
    *,
    untick: tuple[str, ...] = (),
    tick: tuple[str, ...] = (),
    **extra: str,
) -> Launch:
    """A standalone launch through the real pages: authorize, log in, consent, redirect."""
    verifier, challenge = pkce()
    params = authorize_params(app, scope, code_challenge=challenge, **extra)
    started = await http.get(f"/auth/authorize?{urlencode(params)}")
    assert started.status_code == 303, started.text
    if started.headers["location"] == "/auth/login":
        logged = await log_in(http, username)
        assert logged.status_code == 303, logged.text
        assert logged.headers["location"] == "/auth/consent"
    consent = await http.get("/auth/consent")
    assert consent.status_code == 200
    ticked = [s for s in _CHECKED.findall(consent.text.replace("&amp;", "&")) if s not in untick]
    decided = await http.post(
        "/auth/consent",
        data={"csrf_token": csrf_of(consent.text), "decision": "allow", "scope": [*ticked, *tick]},
    )
    assert decided.status_code == 302, decided.text
    location = decided.headers["location"]
    return Launch(
        verifier, challenge, params["state"], location, parse_qs(urlsplit(location).query)
    )


async def exchange(
    http: httpx.AsyncClient, app: App, done: Launch, **overrides: str | None
) -> httpx.Response:
    data: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": done.code,
        "redirect_uri": app.redirect_uri,
        "code_verifier": done.verifier,
    }
    headers: dict[str, str] = {}
    if app.secret:
        headers = basic(app)
    else:
        data["client_id"] = app.client_id
    data.update(overrides)
    form = {k: v for k, v in data.items() if v is not None}
    return await http.post("/auth/token", data=form, headers=headers)
