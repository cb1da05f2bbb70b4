"""CORS (facade/rest/cors.py): browser apps on another origin may call the FHIR, discovery,
token and export-file routes; preflights are answered; the headers a client must read are
exposed; configured origins are the only ones allowed; cookie-bearing pages get no CORS.
The same policy in a real browser: tests/rest/test_cors_browser.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from facade.app import create_app
from facade.runtime import Runtime
from facade.settings import Settings
from tests.conftest import FACADE_BASE
from tests.tokens import FreshToken

APP_ORIGIN = "https://app.example"
OTHER_ORIGIN = "https://evil.example"

#: One route of each kind a browser app calls.
BROWSER_ROUTES = [
    ("GET", "/fhir/Patient"),
    ("GET", "/fhir/Patient/123"),
    ("POST", "/fhir/Patient/_search"),
    ("GET", "/fhir/metadata"),
    ("GET", "/fhir/.well-known/smart-configuration"),
    ("GET", "/fhir/$export"),
    ("GET", "/fhir/$export-status/job1"),
    ("DELETE", "/fhir/$export-status/job1"),
    ("GET", "/fhir/$export-file/job1/Patient.ndjson"),
    ("POST", "/auth/token"),
    ("POST", "/auth/revoke"),
    ("GET", "/auth/jwks"),
]


def preflight(method: str, origin: str = APP_ORIGIN, headers: str = "authorization") -> dict:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest.fixture
async def restricted(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """facade with FACADE_CORS_ORIGINS naming one app's origin."""
    app = create_app(runtime.settings.with_overrides(cors_origins=APP_ORIGIN), runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE, auth=FreshToken(runtime)
    ) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), BROWSER_ROUTES)
async def test_a_preflight_is_answered_for_every_browser_route(
    fhir: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await fhir.options(path, headers=preflight(method, headers="authorization, prefer"))
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert method in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "prefer" in allowed
    assert "access-control-allow-credentials" not in response.headers
    assert int(response.headers["access-control-max-age"]) > 0


async def test_a_fhir_answer_lets_the_page_read_it_and_its_headers(
    fhir: httpx.AsyncClient,
) -> None:
    response = await fhir.get("/fhir/Patient", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"location", "content-location", "x-progress", "retry-after", "etag"} <= exposed
    assert {"www-authenticate", "last-modified", "expires"} <= exposed


async def test_a_refusal_is_readable_too(fhir: httpx.AsyncClient) -> None:
    """A browser app must see why its token was refused, not an opaque network error."""
    response = await fhir.get(
        "/fhir/Patient", headers={"Origin": APP_ORIGIN, "Authorization": "Bearer not-a-token"}
    )
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "*"
    assert "www-authenticate" in response.headers["access-control-expose-headers"].lower()


async def test_an_export_kickoff_exposes_its_status_url(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get(
        "/fhir/Patient/$export",
        headers={
            "Origin": APP_ORIGIN,
            "Accept": "application/fhir+json",
            "Prefer": "respond-async",
        },
    )
    assert response.status_code == 202, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert "content-location" in response.headers["access-control-expose-headers"].lower()


async def test_export_status_and_files_are_readable_cross_origin(
    fhir: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert runtime.exports is not None
    await runtime.exports.worker.start()
    try:
        kickoff = await fhir.get(
            "/fhir/Patient/$export",
            headers={
                "Origin": APP_ORIGIN,
                "Accept": "application/fhir+json",
                "Prefer": "respond-async",
            },
        )
        job_id = kickoff.headers["content-location"].rsplit("/", 1)[1]
        await runtime.exports.worker.wait(job_id)
        status = await fhir.get(f"/fhir/$export-status/{job_id}", headers={"Origin": APP_ORIGIN})
        assert status.status_code == 200
        assert status.headers["access-control-allow-origin"] == "*"
        first = status.json()["output"][0]["url"]
        file = await fhir.get(first, headers={"Origin": APP_ORIGIN})
        assert file.status_code == 200 and file.content
        assert file.headers["access-control-allow-origin"] == "*"
        assert file.headers["vary"].lower() == "accept-encoding, origin"
    finally:
        await runtime.exports.worker.stop()


@pytest.mark.parametrize(
    "path", ["/auth/login", "/auth/consent", "/auth/authorize", "/auth/patient"]
)
async def test_pages_with_a_session_cookie_get_no_cors(fhir: httpx.AsyncClient, path: str) -> None:
    answer = await fhir.get(path, headers={"Origin": APP_ORIGIN})
    assert "access-control-allow-origin" not in answer.headers
    refused = await fhir.options(path, headers=preflight("POST"))
    assert "access-control-allow-origin" not in refused.headers


async def test_a_configured_origin_is_named_back(restricted: httpx.AsyncClient) -> None:
    response = await restricted.get("/fhir/Patient", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "origin" in response.headers["vary"].lower()
    allowed = await restricted.options("/fhir/Patient", headers=preflight("GET"))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_another_origin_is_refused_when_origins_are_configured(
    restricted: httpx.AsyncClient,
) -> None:
    refused = await restricted.options("/fhir/Patient", headers=preflight("GET", OTHER_ORIGIN))
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    answer = await restricted.get("/fhir/metadata", headers={"Origin": OTHER_ORIGIN})
    assert "access-control-allow-origin" not in answer.headers


async def test_an_unlisted_request_header_is_refused_in_preflight(fhir: httpx.AsyncClient) -> None:
    refused = await fhir.options(
        "/fhir/Patient", headers=preflight("GET", headers="x-secret-thing")
    )
    assert refused.status_code == 400


@pytest.mark.parametrize(
    "value", ["https://app.example/path", "app.example", "ftp://app.example", "https://a b"]
)
def test_a_malformed_origin_setting_stops_start_up(value: str) -> None:
    with pytest.raises(ValueError, match="CORS_ORIGINS"):
        Settings(cors_origins=value)


def test_the_origin_setting_reads_a_list() -> None:
    setting = Settings.from_env(
        {"FACADE_CORS_ORIGINS": "https://App.example/, http://localhost:3000"}
    )
    assert setting.cors_origin_list == ("https://app.example", "http://localhost:3000")
    assert Settings().cors_origin_list == ("*",)
