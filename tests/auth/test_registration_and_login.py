"""Dynamic registration (held for the operator's approval by default), TOTP, lockout, and
EHR launch with a practitioner (launch context → patient and encounter, patient picker
otherwise). The registration policy's other cases: tests/auth/test_registration_policy.py."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest

from facade.auth.server import Authority
from facade.clock import FakeClock
from tests.auth.conftest import (
    PASSWORD,
    REDIRECT_URI,
    App,
    authorize_params,
    basic,
    csrf_of,
    exchange,
    launch,
    log_in,
    pkce,
)
from tests.conftest import FHIR_BASE


async def test_dynamic_registration_of_a_symmetric_client(
    http: httpx.AsyncClient, authority: Authority, patient_user: str
) -> None:
    response = await http.post(
        "/auth/register",
        json={
            "client_name": "Registered app",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "launch/patient openid fhirUser offline_access patient/*.rs",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client_secret"] and body["registration_access_token"]
    assert body["facade_status"] == "pending"  # FACADE_REGISTRATION=approval, the default
    assert authority.clients.set_status(body["client_id"], "active")  # the operator approves
    app = App(body["client_id"], body["client_secret"])
    done = await launch(http, app, patient_user, "launch/patient patient/Patient.rs")
    assert (await exchange(http, app, done)).status_code == 200


async def test_registration_refuses_bad_metadata(http: httpx.AsyncClient) -> None:
    cases: list[dict[str, object]] = [
        {"redirect_uris": "https://x"},
        {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "magic"},
        {"token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"]},
        {"redirect_uris": ["not a url"]},
    ]
    for metadata in cases:
        metadata["client_name"] = "Bad app"
        response = await http.post("/auth/register", json=metadata)
        assert response.status_code == 400, metadata
        assert response.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")


async def test_approval_hold_keeps_new_clients_pending(
    http: httpx.AsyncClient, authority: Authority, patient_user: str
) -> None:
    approving_http = http  # FACADE_REGISTRATION=approval is the default
    response = await approving_http.post(
        "/auth/register",
        json={
            "client_name": "Held app",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
        },
    )
    body = response.json()
    assert response.status_code == 201 and body["facade_status"] == "pending"
    params = authorize_params(App(body["client_id"]), code_challenge=pkce()[1])
    held = await approving_http.get(f"/auth/authorize?{urlencode(params)}")
    assert held.status_code == 400 and "location" not in held.headers
    token = await approving_http.post(
        "/auth/token",
        data={"grant_type": "authorization_code", "code": "x", "client_id": body["client_id"]},
    )
    assert token.status_code in (400, 401) and token.json()["error"] == "invalid_client"
    assert authority.clients.set_status(body["client_id"], "active")
    done = await launch(approving_http, App(body["client_id"]), patient_user)
    assert (await exchange(approving_http, App(body["client_id"]), done)).status_code == 200


async def test_totp_is_asked_after_the_password(
    http: httpx.AsyncClient, authority: Authority, confidential_app: App, patient_id: str,
    clock: FakeClock,
) -> None:  # fmt: skip
    secret = authority.users.create("mfa", PASSWORD, f"Patient/{patient_id}", totp=True)
    params = authorize_params(confidential_app, code_challenge=pkce()[1])
    await http.get(f"/auth/authorize?{urlencode(params)}")
    logged = await log_in(http, "mfa")
    assert logged.headers["location"] == "/auth/login/totp"
    page = await http.get("/auth/login/totp")
    wrong = await http.post(
        "/auth/login/totp", data={"csrf_token": csrf_of(page.text), "code": "000000"}
    )
    assert wrong.status_code == 401
    code = pyotp.TOTP(secret).at(clock.now())
    right = await http.post(
        "/auth/login/totp", data={"csrf_token": csrf_of(page.text), "code": code}
    )
    assert right.status_code == 303 and right.headers["location"] == "/auth/consent"


async def test_five_failed_logins_lock_the_account_for_15_minutes(
    http: httpx.AsyncClient, confidential_app: App, patient_user: str, clock: FakeClock
) -> None:
    params = authorize_params(confidential_app, code_challenge=pkce()[1])
    await http.get(f"/auth/authorize?{urlencode(params)}")
    statuses = [(await log_in(http, patient_user, "wrong")).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 403]
    assert (await log_in(http, patient_user)).status_code == 403
    clock.advance(15 * 60 + 1)
    assert (await log_in(http, patient_user)).status_code == 303


@pytest.fixture
def practitioner(authority: Authority) -> str:
    authority.users.create("doc", PASSWORD, "Practitioner/1")
    return "doc"


async def test_ehr_launch_carries_patient_and_encounter(
    http: httpx.AsyncClient, confidential_app: App, practitioner: str, patient_id: str
) -> None:
    await log_in(http, practitioner)
    page = await http.get("/auth/launch")
    made = await http.post(
        "/auth/launch",
        data={"csrf_token": csrf_of(page.text), "patient": patient_id, "encounter": "enc-1",
              "launch_uri": "https://app.example/launch"},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    url = made.json()["launch_url"]
    query = parse_qs(urlsplit(url).query)
    assert query["iss"] == [FHIR_BASE]
    done = await launch(
        http, confidential_app, practitioner,
        "launch openid fhirUser offline_access patient/Patient.rs", launch=query["launch"][0],
    )  # fmt: skip
    body = (await exchange(http, confidential_app, done)).json()
    assert body["patient"] == patient_id and body["encounter"] == "enc-1"
    assert body["need_patient_banner"] is False


async def test_unknown_launch_is_refused_without_a_code(
    http: httpx.AsyncClient, confidential_app: App
) -> None:
    params = authorize_params(confidential_app, code_challenge=pkce()[1], launch="forged")
    response = await http.get(f"/auth/authorize?{urlencode(params)}")
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert "code" not in query and query["error"] == ["invalid_request"]


async def test_practitioner_standalone_launch_picks_a_patient(
    http: httpx.AsyncClient, confidential_app: App, practitioner: str, patient_id: str
) -> None:
    verifier, challenge = pkce()
    params = authorize_params(
        confidential_app, "launch/patient openid fhirUser user/Patient.rs patient/Patient.rs",
        code_challenge=challenge,
    )  # fmt: skip
    await http.get(f"/auth/authorize?{urlencode(params)}")
    await log_in(http, practitioner)
    consent = await http.get("/auth/consent")
    decided = await http.post(
        "/auth/consent",
        data={"csrf_token": csrf_of(consent.text), "decision": "allow",
              "scope": params["scope"].split()},
    )  # fmt: skip
    assert decided.headers["location"] == "/auth/patient"
    picker = await http.get("/auth/patient")
    missing = await http.post(
        "/auth/patient", data={"csrf_token": csrf_of(picker.text), "patient": "nope"}
    )
    assert missing.status_code == 400
    chosen = await http.post(
        "/auth/patient", data={"csrf_token": csrf_of(picker.text), "patient": patient_id}
    )
    assert chosen.status_code == 302
    code = parse_qs(urlsplit(chosen.headers["location"]).query)["code"][0]
    token = await http.post(
        "/auth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
              "code_verifier": verifier},
        headers=basic(confidential_app),
    )  # fmt: skip
    assert token.status_code == 200 and token.json()["patient"] == patient_id
