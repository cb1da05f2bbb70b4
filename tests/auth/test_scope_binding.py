"""Scopes are bound to who logged in (issue 10, item 1): a patient's login holds patient/
scopes for their own record only, user/ scopes are a practitioner's, system/ scopes never
come through a login. Reproduces the attack (an app asks user/*.rs, a patient logs in, the
token reads every patient) through the real pages, token endpoint and FHIR API."""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt

from facade.auth.keys import ALGORITHM
from facade.auth.server import Authority
from facade.auth.tokens import RefreshGrant
from facade.runtime import Runtime
from facade.store.models import IssuedToken
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from tests.auth.conftest import (
    PASSWORD,
    REDIRECT_URI,
    App,
    authorize_params,
    basic,
    csrf_of,
    log_in,
    pkce,
)
from tests.auth.logins import login_token, operator_public_app, self_registered_app
from tests.tokens import TEST_CLIENT, ensure_client, token

ATTACK = "launch/patient openid fhirUser user/*.rs"


@pytest.fixture
def other_patient(dataset: SandboxDataset) -> str:
    return str(dataset.endpoint("patients")[1]["id"])


@pytest.fixture
def doctor(authority: Authority) -> str:
    authority.users.create("doc", PASSWORD, "Practitioner/1")
    return "doc"


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def _start(http: httpx.AsyncClient, app: App, scope: str) -> httpx.Response:
    params = authorize_params(app, scope, code_challenge=pkce()[1])
    return await http.get(f"/auth/authorize?{urlencode(params)}")


def _error_of(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return parse_qs(urlsplit(location).query)


# -- the attack, through an operator's public app and a self-registered one --------------------


@pytest.mark.parametrize("registered_by", ["operator", "itself"])
async def test_patient_login_asking_user_scopes_reads_only_their_own_record(
    http: httpx.AsyncClient,
    auth_runtime: Runtime,
    authority: Authority,
    patient_user: str,
    patient_id: str,
    other_patient: str,
    registered_by: str,
) -> None:
    app = (
        operator_public_app(auth_runtime)
        if registered_by == "operator"
        else await self_registered_app(http, authority)
    )
    body = await login_token(http, app, patient_user, f"{ATTACK} patient/Patient.rs")
    granted = body["scope"].split()
    assert "user/*.rs" not in granted
    assert [s for s in granted if "/" in s and not s.startswith("launch")] == ["patient/Patient.rs"]
    assert body["patient"] == patient_id
    headers = bearer(body["access_token"])
    assert (await http.get(f"/fhir/Patient/{patient_id}", headers=headers)).status_code == 200
    assert (await http.get(f"/fhir/Patient/{other_patient}", headers=headers)).status_code == 404
    listed = await http.get("/fhir/Patient?_count=50", headers=headers)
    assert [e["resource"]["id"] for e in listed.json().get("entry", [])] == [patient_id]
    # Condition was asked for only as user/*.rs: the patient's token holds nothing of it.
    problems = await http.get(f"/fhir/Condition?patient={other_patient}", headers=headers)
    assert problems.status_code == 403


async def test_patient_login_asking_only_user_scopes_gets_invalid_scope_and_no_code(
    http: httpx.AsyncClient, auth_runtime: Runtime, patient_user: str
) -> None:
    app = operator_public_app(auth_runtime)
    started = await _start(http, app, ATTACK)
    # A practitioner could hold user/*.rs, so the request is fine until a patient logs in.
    assert started.status_code == 303 and started.headers["location"] == "/auth/login"
    assert (await log_in(http, patient_user)).headers["location"] == "/auth/consent"
    consent = await http.get("/auth/consent")
    query = _error_of(consent)
    assert query["error"] == ["invalid_scope"] and "code" not in query
    # The authorization is over: no consent page to post to any more.
    assert (await http.get("/auth/consent")).status_code == 400


async def test_consent_never_offers_a_patient_what_they_cannot_hold(
    http: httpx.AsyncClient, auth_runtime: Runtime, patient_user: str
) -> None:
    app = operator_public_app(auth_runtime)
    await _start(http, app, f"{ATTACK} system/*.rs patient/Observation.rs")
    await log_in(http, patient_user)
    page = await http.get("/auth/consent")
    assert page.status_code == 200
    assert "user/*.rs" not in page.text and "system/" not in page.text
    assert 'value="patient/Observation.rs"' in page.text
    # Ticking a scope that was not offered (a forged form) does not grant it either.
    decided = await http.post(
        "/auth/consent",
        data={
            "csrf_token": csrf_of(page.text),
            "decision": "allow",
            "scope": ["patient/Observation.rs", "user/*.rs", "system/*.rs"],
        },
    )
    code = parse_qs(urlsplit(decided.headers["location"]).query)["code"]
    assert code


async def test_practitioner_login_keeps_user_scopes(
    http: httpx.AsyncClient, auth_runtime: Runtime, doctor: str, other_patient: str
) -> None:
    app = operator_public_app(auth_runtime)
    body = await login_token(http, app, doctor, "openid fhirUser user/Patient.rs")
    assert "user/Patient.rs" in body["scope"].split()
    assert "patient" not in body
    read = await http.get(f"/fhir/Patient/{other_patient}", headers=bearer(body["access_token"]))
    assert read.status_code == 200


async def test_practitioner_patient_scopes_need_a_patient(
    http: httpx.AsyncClient, auth_runtime: Runtime, doctor: str
) -> None:
    """Without launch/patient (or an EHR launch) a practitioner's patient/ scopes would name no
    patient: they are dropped, and a request of nothing else is invalid_scope."""
    app = operator_public_app(auth_runtime)
    body = await login_token(http, app, doctor, "openid fhirUser user/Patient.rs patient/*.rs")
    assert body["scope"].split() == ["openid", "fhirUser", "user/Patient.rs"]
    await _start(http, app, "openid fhirUser patient/*.rs")
    query = _error_of(await http.get("/auth/consent"))
    assert query["error"] == ["invalid_scope"]


async def test_system_scopes_never_come_through_a_login(
    http: httpx.AsyncClient, authority: Authority, doctor: str
) -> None:
    made = authority.clients.register(
        name="Registered for everything",
        auth_method="client_secret_basic",
        redirect_uris=[REDIRECT_URI],
        scope="openid fhirUser launch/patient system/*.rs user/*.rs patient/*.rs",
    )
    app = App(made.client.client_id, made.client_secret)
    body = await login_token(http, app, doctor, "openid fhirUser system/*.rs user/Patient.rs")
    assert body["scope"].split() == ["openid", "fhirUser", "user/Patient.rs"]
    # system/ alone: refused at /auth/authorize, before anyone logs in.
    query = _error_of(await _start(http, app, "openid system/*.rs"))
    assert query["error"] == ["invalid_scope"] and "code" not in query


@pytest.mark.parametrize(
    "scope",
    [
        "openid fhirUser",
        "launch/patient openid fhirUser offline_access",
        "launch launch/patient launch/encounter online_access",
        "profile email",
    ],
)
async def test_context_scopes_alone_grant_no_data_and_are_refused(
    http: httpx.AsyncClient, auth_runtime: Runtime, scope: str
) -> None:
    query = _error_of(await _start(http, operator_public_app(auth_runtime), scope))
    assert query["error"] == ["invalid_scope"] and "code" not in query


async def test_unticking_every_data_scope_is_access_denied_not_an_empty_token(
    http: httpx.AsyncClient, auth_runtime: Runtime, patient_user: str
) -> None:
    await _start(http, operator_public_app(auth_runtime), "openid fhirUser patient/Patient.rs")
    await log_in(http, patient_user)
    page = await http.get("/auth/consent")
    decided = await http.post(
        "/auth/consent",
        data={"csrf_token": csrf_of(page.text), "decision": "allow", "scope": ["openid"]},
    )
    query = _error_of(decided)
    assert query["error"] == ["access_denied"] and "code" not in query


# -- the consent page says who is logged in ---------------------------------------------------


async def test_consent_page_shows_a_patient_who_is_logged_in_and_says_your(
    http: httpx.AsyncClient, auth_runtime: Runtime, patient_user: str
) -> None:
    await _start(http, operator_public_app(auth_runtime), f"{ATTACK} patient/Observation.rs")
    await log_in(http, patient_user)
    page = (await http.get("/auth/consent")).text
    assert f"logged in as <strong>{patient_user}</strong>, a patient" in page
    assert "only ever see your own record" in page
    assert "Read and search your Observation records" in page
    assert "patients&#39;" not in page


async def test_consent_page_shows_a_practitioner_and_words_scopes_for_them(
    http: httpx.AsyncClient, auth_runtime: Runtime, doctor: str
) -> None:
    await _start(
        http, operator_public_app(auth_runtime), "launch/patient user/*.rs patient/Observation.rs"
    )
    await log_in(http, doctor)
    page = (await http.get("/auth/consent")).text
    assert f"logged in as <strong>{doctor}</strong>, a practitioner" in page
    assert "Read and search the chosen patient&#39;s Observation records" in page
    assert "Read and search patients&#39; health records you can access" in page
    assert " your " not in page.split("<form", 1)[-1]
    assert "your own record" not in page


# -- refresh never widens ---------------------------------------------------------------------


async def test_refresh_of_an_old_patient_grant_with_user_scopes_is_rebound(
    http: httpx.AsyncClient,
    authority: Authority,
    patient_user: str,
    patient_id: str,
    other_patient: str,
) -> None:
    """A refresh token stored before the binding (a patient holding user/*.rs) refreshes
    into patient/ scopes only; one holding nothing else is invalid_scope."""
    made = authority.clients.register(
        name="Old app", auth_method="client_secret_basic", redirect_uris=[REDIRECT_URI], scope=""
    )
    app = App(made.client.client_id, made.client_secret)

    def old_refresh_token(scope: str) -> str:
        return authority.tokens.issue_refresh_token(
            RefreshGrant(
                client_id=app.client_id,
                username=patient_user,
                scope=scope,
                patient_id=patient_id,
                encounter_id="",
                family=secrets.token_hex(8),
                kind="offline",
            )
        )

    async def refresh(refresh_token: str) -> httpx.Response:
        return await http.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers=basic(app),
        )

    mixed = await refresh(old_refresh_token("offline_access user/*.rs patient/Patient.rs"))
    assert mixed.status_code == 200, mixed.text
    body = mixed.json()
    assert body["scope"].split() == ["offline_access", "patient/Patient.rs"]
    headers = bearer(body["access_token"])
    assert (await http.get(f"/fhir/Patient/{other_patient}", headers=headers)).status_code == 404
    again = await refresh(body["refresh_token"])
    assert again.json()["scope"].split() == ["offline_access", "patient/Patient.rs"]

    only_user = old_refresh_token("offline_access user/*.rs")
    refused = await refresh(only_user)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    assert "access_token" not in refused.json()


# -- defence in depth: a patient's token never reaches beyond that patient ---------------------


async def test_a_patient_token_carrying_user_scopes_stays_in_the_patients_record(
    http: httpx.AsyncClient, auth_runtime: Runtime, patient_id: str, other_patient: str
) -> None:
    """An operator-made token (`facade token --scope user/*.rs --patient P --fhir-user
    Patient/P`) is confined by the FHIR access check itself."""
    forged = token(
        auth_runtime,
        "user/*.rs system/*.rs",
        patient_id=patient_id,
        fhir_user=f"Patient/{patient_id}",
    )
    headers = bearer(forged)
    assert (await http.get(f"/fhir/Patient/{patient_id}", headers=headers)).status_code == 200
    assert (await http.get(f"/fhir/Patient/{other_patient}", headers=headers)).status_code == 404
    found = await http.get(f"/fhir/Condition?patient={other_patient}", headers=headers)
    assert found.status_code == 200 and not found.json().get("entry")
    # Not a backend service either: its system/ scope exports nothing.
    exported = await http.get(
        "/fhir/$export",
        headers={**headers, "Prefer": "respond-async", "Accept": "application/fhir+json"},
    )
    assert exported.status_code in (401, 403), exported.text


async def test_a_token_minted_before_the_user_kind_claim_is_confined_by_its_account(
    http: httpx.AsyncClient,
    auth_runtime: Runtime,
    patient_user: str,
    patient_id: str,
    other_patient: str,
) -> None:
    """A token from before this release: user/*.rs, a `patient` claim, no fhirUser and no
    record of the user's kind. Its subject's account (a patient) confines it."""
    ensure_client(auth_runtime)
    tokens = auth_runtime.tokens
    now = auth_runtime.service._clock.now()
    jti = secrets.token_hex(16)
    claims = {
        "iss": tokens.issuer, "aud": tokens.issuer, "sub": patient_user,
        "client_id": TEST_CLIENT, "scope": "launch/patient user/*.rs", "patient": patient_id,
        "iat": int(now.timestamp()), "exp": int(now.timestamp()) + 3600, "jti": jti,
    }  # fmt: skip
    key = auth_runtime.keys.current()
    legacy = jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key)
    with auth_runtime.database.session() as session:
        expires = now + timedelta(hours=1)
        session.add(IssuedToken(jti=jti, client_id=TEST_CLIENT, family="", expires_at=expires))
        session.commit()
    headers = bearer(legacy)
    assert (await http.get(f"/fhir/Patient/{patient_id}", headers=headers)).status_code == 200
    assert (await http.get(f"/fhir/Patient/{other_patient}", headers=headers)).status_code == 404
