"""The pages around the API (facade/rest/site.py): the landing page, the bare FHIR base,
the OpenAPI document and Swagger UI served by facade itself, none of them needing a token or
showing anything an anonymous caller should not see."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from capability.openapi import openapi_document
from facade.runtime import Runtime
from mappings.drchrono import REGISTRY
from tests.browser import Browser, FacadeServer
from tests.conftest import FACADE_BASE, FHIR_BASE

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
async def anonymous(fhir: httpx.AsyncClient) -> httpx.AsyncClient:
    """The app without a token: everything here must work so."""
    fhir.auth = None  # type: ignore[assignment]
    return fhir


async def test_the_landing_page_says_what_facade_is_and_links_everything(
    anonymous: httpx.AsyncClient, runtime: Runtime
) -> None:
    page = await anonymous.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "US Core 6.1.0" in html and "SMART" in html
    assert f'<code id="fhir-base">{FHIR_BASE}</code>' in html
    links = set(re.findall(r'href="([^"]+)"', html))
    assert {
        f"{FHIR_BASE}/metadata",
        f"{FHIR_BASE}/.well-known/smart-configuration",
        "docs",
        "openapi.json",
        "health",
    } <= links
    for link in links:  # every link answers, without a token
        url = link if link.startswith("http") else f"{FACADE_BASE}/{link}"
        assert (await anonymous.get(url)).status_code == 200, link
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    secret_key_file = runtime.settings.data_dir / "secret.key"
    for secret in (runtime.settings.resolved_database_url, str(runtime.settings.data_dir)):
        assert secret not in html
    assert not secret_key_file.exists() or secret_key_file.read_text() not in html


async def test_a_browser_at_the_fhir_base_is_sent_to_the_landing_page(
    anonymous: httpx.AsyncClient,
) -> None:
    for path in ("/fhir", "/fhir/"):
        answer = await anonymous.get(path, headers={"Accept": BROWSER_ACCEPT})
        assert answer.status_code == 303
        assert answer.headers["location"] == f"{FACADE_BASE}/"


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/fhir", "application/fhir+json"),
        ("/fhir", None),
        ("/fhir/", "application/json"),
        ("/fhir?_type=Patient", BROWSER_ACCEPT),  # a search, even from a browser
    ],
)
async def test_a_fhir_client_at_the_base_gets_an_operation_outcome(
    anonymous: httpx.AsyncClient, path: str, accept: str | None
) -> None:
    answer = await anonymous.get(path, headers={"Accept": accept} if accept else {})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/fhir+json")
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "metadata" in outcome["issue"][0]["details"]["text"]


async def test_the_openapi_document_is_capabilitys_for_this_server(
    anonymous: httpx.AsyncClient,
) -> None:
    answer = await anonymous.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == openapi_document(REGISTRY, server_url=FACADE_BASE)
    again = await anonymous.get("/openapi.json")
    assert again.content == answer.content


async def test_the_docs_page_loads_nothing_from_another_origin(
    anonymous: httpx.AsyncClient,
) -> None:
    page = await anonymous.get("/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert f"connect-src 'self' {FACADE_BASE};" in policy
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references and all("//" not in ref for ref in references), references
    for ref in references:
        asset = await anonymous.get(f"/{ref}")
        assert asset.status_code == 200, ref
        assert asset.headers["x-content-type-options"] == "nosniff"
    bundle = await anonymous.get("/docs/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text


@pytest.mark.parametrize(
    "asset", ["swagger-editor.js", "..%2Fsite.py", "index.html", "LICENSE", "oauth2-redirect.html"]
)
async def test_docs_serves_only_its_own_assets(anonymous: httpx.AsyncClient, asset: str) -> None:
    answer = await anonymous.get(f"/docs/{asset}")
    assert answer.status_code == 404
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_swagger_ui_renders_every_route_in_chromium(browser: Browser, tmp_path: Path) -> None:
    """Under its own Content-Security-Policy, with facade as the only origin it touches."""
    with FacadeServer(tmp_path / "facade", lambda runtime: None) as facade:
        browser.open(f"{facade.base}/docs")
        browser.wait_for(
            "document.querySelectorAll('.opblock').length > 50", "Swagger UI's operations"
        )
        title = browser.evaluate("document.querySelector('.title').textContent")
        origins = browser.evaluate(
            "[...new Set(performance.getEntriesByType('resource')"
            ".map(e => new URL(e.name).origin))]"
        )
    assert "facade" in title
    assert origins == [facade.base]
