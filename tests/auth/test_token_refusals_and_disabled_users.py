"""A refused token is told why (RFC 6750 error_description: another server's audience,
expired, not verifiable, revoked), never with a secret; a disabled login cannot log in and
loses every token it had; the consent page words scopes for who logged in."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import httpx

from facade.auth.tokens import TokenService
from facade.cli import main
from facade.clock import FakeClock
from facade.runtime import Runtime
from tests.auth.conftest import PASSWORD, App, authorize_params, exchange, launch, log_in, pkce
from tests.auth.logins import operator_public_app
from tests.conftest import FHIR_BASE
from tests.tokens import TEST_CLIENT, ensure_client, token

OFFLINE = "launch/patient openid fhirUser offline_access patient/Patient.rs"


async def _refused(http: httpx.AsyncClient, bearer: str) -> tuple[str, str]:
    """The challenge and the OperationOutcome text of a refused FHIR request."""
    response = await http.get("/fhir/Patient", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 401, response.text
    text = response.json()["issue"][0]["details"]["text"]
    return response.headers["www-authenticate"], text


async def test_a_token_for_another_base_is_refused_naming_both(
    http: httpx.AsyncClient, auth_runtime: Runtime, clock: FakeClock
) -> None:
    ensure_client(auth_runtime)
    other = TokenService(
        auth_runtime.database, auth_runtime.keys, clock, "http://127.0.0.1:8080/fhir"
    )
    minted = other.issue_access_token(
        client_id=TEST_CLIENT, scope="system/*.rs", subject=TEST_CLIENT, backend=True
    ).access_token

    challenge, text = await _refused(http, minted)

    expected = f"The token's audience is http://127.0.0.1:8080/fhir; this server is {FHIR_BASE}."
    assert challenge == (
        f'Bearer realm="facade", error="invalid_token", error_description="{expected}"'
    )
    assert expected in text


async def test_an_expired_token_is_refused_saying_when_it_expired(
    http: httpx.AsyncClient, auth_runtime: Runtime, clock: FakeClock
) -> None:
    minted = token(auth_runtime, "system/*.rs")
    expires = clock.now() + timedelta(minutes=5)
    clock.advance(6 * 60)

    challenge, text = await _refused(http, minted)

    when = expires.replace(microsecond=0).isoformat()
    assert f'error_description="The token expired at {when}."' in challenge
    assert "expired" in text


async def test_an_altered_token_and_a_non_jwt_are_told_apart(
    http: httpx.AsyncClient, auth_runtime: Runtime
) -> None:
    minted = token(auth_runtime, "system/*.rs")
    header, payload, signature = minted.split(".")
    altered = f"{header}.{payload}.{signature[::-1]}"

    altered_challenge, _ = await _refused(http, altered)
    garbage_challenge, _ = await _refused(http, "not-a-token")

    assert "signature does not verify" in altered_challenge
    assert "not a JWT" in garbage_challenge
    assert signature not in altered_challenge and signature[::-1] not in altered_challenge


async def test_a_request_without_a_token_gets_a_plain_challenge(http: httpx.AsyncClient) -> None:
    response = await http.get("/fhir/Patient")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="facade"'


# -- facade user disable -------------------------------------------------------------------------


def _disable(runtime: Runtime, username: str) -> int:
    settings = runtime.settings
    return main(
        ["user", "disable", username, "--data-dir", str(settings.data_dir),
         "--database-url", settings.resolved_database_url]
    )  # fmt: skip


async def test_a_disabled_user_cannot_log_in_and_loses_every_token(
    http: httpx.AsyncClient, auth_runtime: Runtime, confidential_app: App, patient_user: str
) -> None:
    done = await launch(http, confidential_app, patient_user, OFFLINE)
    issued = (await exchange(http, confidential_app, done)).json()
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert (await http.get("/fhir/Patient", headers=bearer)).status_code == 200

    assert _disable(auth_runtime, patient_user) == 0

    refused = await http.get("/fhir/Patient", headers=bearer)
    assert refused.status_code == 401
    assert "revoked" in refused.headers["www-authenticate"]
    refreshed = await http.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        auth=(confidential_app.client_id, confidential_app.secret),
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    http.cookies.clear()
    login = await log_in(http, patient_user, PASSWORD)
    assert login.status_code != 303  # the login page again, as for a wrong password
    assert auth_runtime.authorization is not None
    assert auth_runtime.authorization.users.find(patient_user) is None


# -- consent wording ----------------------------------------------------------------------------


async def test_consent_says_your_health_records_to_a_patient(
    http: httpx.AsyncClient, auth_runtime: Runtime, patient_user: str
) -> None:
    app = operator_public_app(auth_runtime)
    _, challenge = pkce()
    params = authorize_params(app, "launch/patient patient/*.rs", code_challenge=challenge)
    await http.get(f"/auth/authorize?{urlencode(params)}")
    await log_in(http, patient_user)

    page = (await http.get("/auth/consent")).text

    assert "Read and search your health records" in page
    assert "all data" not in page and "your all" not in page
