"""An app that registered itself (POST /auth/register) is marked unverified on the login and
consent pages, so a patient knows the practice has not vetted it; an operator's app is not."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from facade.auth.server import Authority
from facade.runtime import Runtime
from tests.auth.conftest import PASSWORD, App, authorize_params, csrf_of, pkce
from tests.auth.logins import operator_public_app, self_registered_app

SCOPE = "launch/patient openid fhirUser patient/Patient.rs"
NOTICE = 'id="unverified-notice"'


async def _pages(http: httpx.AsyncClient, app: App, username: str) -> tuple[str, str, str]:
    """The login page, the login page after a wrong password, and the consent page."""
    params = authorize_params(app, SCOPE, code_challenge=pkce()[1])
    started = await http.get(f"/auth/authorize?{urlencode(params)}")
    assert started.headers["location"] == "/auth/login"
    login = await http.get("/auth/login")
    form = {"csrf_token": csrf_of(login.text), "username": username}
    wrong = await http.post("/auth/login", data={**form, "password": "not the password"})
    right = await http.post("/auth/login", data={**form, "password": PASSWORD})
    assert right.headers["location"] == "/auth/consent"
    consent = await http.get("/auth/consent")
    assert consent.status_code == 200
    return login.text, wrong.text, consent.text


@pytest.mark.parametrize("registered_by", ["itself", "operator"])
async def test_self_registered_apps_are_marked_unverified(
    http: httpx.AsyncClient,
    auth_runtime: Runtime,
    authority: Authority,
    patient_user: str,
    registered_by: str,
) -> None:
    app = (
        await self_registered_app(http, authority)
        if registered_by == "itself"
        else operator_public_app(auth_runtime)
    )
    for page in await _pages(http, app, patient_user):
        if registered_by == "itself":
            assert NOTICE in page and "(unverified app)" in page
        else:
            assert NOTICE not in page and "unverified" not in page
