"""Access tokens for tests, minted through facade's own token service (real JWTs, recorded,
revocable), so FHIR tests run with the same checks production requests meet."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from facade.auth.operator import Operator
from facade.runtime import Runtime

TEST_CLIENT = "test-suite"


def operator(runtime: Runtime) -> Operator:
    return Operator(runtime.database, runtime.box, runtime.service._clock, runtime.tokens)


def ensure_client(runtime: Runtime, client_id: str = TEST_CLIENT) -> None:
    from sqlmodel import select

    from facade.store.models import OAuthClient

    with runtime.database.session() as session:
        if session.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).first():
            return
    operator(runtime).add_client(
        name=client_id, redirect_uris=[], jwks='{"keys": []}', client_id=client_id
    )


def token(
    runtime: Runtime,
    scope: str = "system/*.rs",
    *,
    patient_id: str = "",
    fhir_user: str = "",
    client_id: str = TEST_CLIENT,
) -> str:
    ensure_client(runtime, client_id)
    return operator(runtime).mint_token(
        client_id=client_id, scope=scope, patient_id=patient_id, fhir_user=fhir_user
    )


class FreshToken(httpx.Auth):
    """Mints a new token for every request, so tests that move the clock never hold an
    expired one."""

    def __init__(self, runtime: Runtime, scope: str = "system/*.rs", **claims: str):
        self.runtime = runtime
        self.scope = scope
        self.claims = claims

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "Authorization" not in request.headers:  # a test's own token wins
            request.headers["Authorization"] = (
                f"Bearer {token(self.runtime, self.scope, **self.claims)}"
            )
        yield request
