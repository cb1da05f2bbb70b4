"""CareCloud session keeping: log in with username, password and a TOTP code; refresh before
the session expires; log in again with a fresh code when the refresh token is dead.

One renewal at a time (an asyncio.Lock), however many calls find the session stale. A refused
login (wrong password, wrong code, locked account) is remembered and not tried again, because
every failed attempt brings CareCloud's lockout nearer. Never logs a secret, token or code.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx

from facade.clock import Clock
from facade.errors import (
    UpstreamAuthFailed,
    UpstreamThrottled,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from facade.upstream.carecloud.credentials import (
    CareCloudCredentials,
    CareCloudKeeper,
    InvalidTotpSecret,
    SessionTokens,
    checked_totp_secret,
)
from facade.upstream.carecloud.totp import STEP_SECONDS, hotp, time_step
from facade.upstream.retry import retry_after

log = logging.getLogger("facade.upstream.carecloud")

#: Renew the session this long before CareCloud would end it.
REFRESH_MARGIN = timedelta(seconds=60)
#: How long CareCloud keeps an account locked after repeated failed logins (the contract).
LOCKOUT = timedelta(minutes=15)
#: A 429 on /authenticate that names no wait is waited out this long.
UNSTATED_THROTTLE_SECONDS = 60.0
#: The 401 errors that mean "this session is over", as opposed to "you may not".
SESSION_ENDED = frozenset({"session_expired", "invalid_session"})


class LoginRefused(UpstreamAuthFailed):
    """CareCloud refused the username or password."""

    default_message = (
        "CareCloud refused facade's username or password; an operator must reconnect it "
        "(facade connect carecloud)."
    )


class MfaRefused(UpstreamAuthFailed):
    """CareCloud refused the TOTP code: a wrong secret, or a clock far off."""

    default_message = (
        "CareCloud refused facade's one-time (TOTP) code: the stored TOTP secret is wrong or "
        "this machine's clock is off; an operator must reconnect it (facade connect carecloud)."
    )


class AccountLocked(UpstreamAuthFailed):
    """CareCloud locked the account after repeated failed logins."""

    default_message = (
        "CareCloud has locked facade's account after repeated failed logins; facade tries "
        "no login until the lock ends (about 15 minutes), then an operator should reconnect."
    )


class CareCloudSession:
    """The current CareCloud session, renewed when it is about to end or the vendor ends it."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        keeper: CareCloudKeeper,
        clock: Clock,
        *,
        timeout_seconds: float = 20.0,
    ):
        self._http = http
        self._keeper = keeper
        self._clock = clock
        self._timeout = timeout_seconds
        self._credentials = keeper.load()
        self._lock = asyncio.Lock()
        #: The login secrets CareCloud refused, and how: not sent again.
        self._refused: tuple[tuple[str, str, str, str], UpstreamAuthFailed] | None = None
        self._locked_until: datetime | None = None
        #: The last TOTP time step sent: CareCloud may refuse a code replayed.
        self._last_step: int | None = None
        self.logins = 0
        self.refreshes = 0

    @property
    def base_url(self) -> str:
        return self._credentials.base_url.rstrip("/")

    @property
    def business_entity_id(self) -> str:
        return self._credentials.business_entity_id

    async def token(self) -> str:
        """A session token that is good for a while yet (renewed first when it is not)."""
        if self._ending():
            await self._renew(self._credentials.session_token, force=False)
        return self._credentials.session_token

    async def renew(self, stale_token: str) -> None:
        """CareCloud ended `stale_token` (401 session_expired or invalid_session): get a new
        session, unless another task already has."""
        await self._renew(stale_token, force=True)

    async def login(self) -> None:
        """Log in now with username, password and a fresh code (connect proves credentials so)."""
        async with self._lock:
            self._adopt(await self._login())

    def _ending(self) -> bool:
        return self._credentials.expires_at - REFRESH_MARGIN <= self._clock.now()

    async def _renew(self, stale_token: str, *, force: bool) -> None:
        async with self._lock:
            # Another task (or another facade process sharing the store) may have renewed
            # while this one waited.
            if self._credentials.session_token != stale_token:
                return
            stored = self._keeper.load()
            if stored.session_token and stored.session_token != stale_token:
                self._credentials = stored
                self._refused = None  # a reconnect stored new credentials: try them
                if not self._ending():
                    return
            if not force and not self._ending():
                return
            tokens = await self._refresh() if self._credentials.refresh_token else None
            if tokens is None:
                tokens = await self._login()
            else:
                self.refreshes += 1
            self._adopt(tokens)

    def _adopt(self, tokens: SessionTokens) -> None:
        self._credentials = self._credentials.with_session(tokens, self._clock.now())
        self._keeper.save(self._credentials)

    # -- the two calls -----------------------------------------------------------------------

    async def _refresh(self) -> SessionTokens | None:
        """A new session (and refresh token) for the refresh token; None when it is dead."""
        response = await self._post(
            {"grant_type": "refresh_token", "refresh_token": self._credentials.refresh_token}
        )
        if response.status_code == 401:
            log.info("carecloud refresh token no longer valid; logging in again")
            # Dead either way (CareCloud retires a refresh token once used): not sent again.
            self._credentials = replace(self._credentials, refresh_token="")
            return None
        if response.status_code == 403:  # account_locked: a login now would fail too
            raise self._refusal(response, self._credentials)
        tokens = self._tokens(response)
        log.info("carecloud session refreshed")
        return tokens

    async def _login(self) -> SessionTokens:
        now = self._clock.now()
        if self._locked_until is not None and now < self._locked_until:
            raise AccountLocked()
        credentials = self._credentials
        if self._refused is not None and self._refused[0] == credentials.login_secrets():
            refused = self._refused[1]
            raise type(refused)(refused.message)
        response = await self._post_login(credentials)
        if _error_of(response) == "invalid_mfa_code" and self._last_step == self._step_now():
            # The current code may have been spent by another login (`facade connect`, or
            # another process sharing the store) and CareCloud takes a code once: the next
            # step's code, which it accepts too, is the one retry a refused code gets.
            response = await self._post_login(credentials)
        if response.status_code in (401, 403):
            raise self._refusal(response, credentials)
        tokens = self._tokens(response)
        self._locked_until = None
        self.logins += 1
        log.info("carecloud login succeeded")
        return tokens

    async def _post_login(self, credentials: CareCloudCredentials) -> httpx.Response:
        code = await self._fresh_code(credentials.totp_secret)
        return await self._post(
            {"username": credentials.username, "password": credentials.password, "mfa_code": code}
        )

    def _step_now(self) -> int:
        return time_step(self._clock.now())

    def _refusal(
        self, response: httpx.Response, credentials: CareCloudCredentials
    ) -> UpstreamAuthFailed:
        error = _error_of(response)
        refusal: UpstreamAuthFailed
        if response.status_code == 403 and error == "account_locked":
            self._locked_until = self._clock.now() + LOCKOUT
            refusal = AccountLocked()
        elif error in ("invalid_mfa_code", "mfa_required"):
            refusal = MfaRefused()
        elif error == "invalid_credentials":
            refusal = LoginRefused()
        else:
            refusal = UpstreamAuthFailed(
                f"CareCloud refused facade's login (HTTP {response.status_code})."
            )
        if not isinstance(refusal, AccountLocked):
            self._refused = (credentials.login_secrets(), refusal)
        log.warning("carecloud login refused: %s", refusal.code)
        return refusal

    async def _fresh_code(self, secret: str) -> str:
        """The TOTP code of a step not sent before: CareCloud accepts the next step's code
        too, so a second login within one step uses that one instead of waiting."""
        step = self._step_now()
        if self._last_step is not None and step <= self._last_step:
            step = self._last_step + 1
            ahead = step - self._step_now()
            if ahead > 1:  # both spent: wait until the next step is at most one ahead
                elapsed = self._clock.now().timestamp() % STEP_SECONDS
                await self._clock.sleep((ahead - 1) * STEP_SECONDS - elapsed)
        self._last_step = step
        try:
            return hotp(checked_totp_secret(secret), step)
        except InvalidTotpSecret as exc:
            refusal = MfaRefused(f"facade's stored TOTP secret cannot be used: {exc}.")
            self._refused = (self._credentials.login_secrets(), refusal)
            raise refusal from None

    async def _post(self, body: dict[str, str]) -> httpx.Response:
        try:
            with anyio.fail_after(self._timeout):
                response = await self._http.post(
                    f"{self.base_url}/authenticate",
                    json=body,
                    headers={"Accept": "application/json"},
                    follow_redirects=False,
                )
        except (TimeoutError, httpx.TimeoutException):
            raise UpstreamTimeout("CareCloud's login did not answer in time.") from None
        except httpx.TransportError:
            raise UpstreamUnavailable("CareCloud's login cannot be reached.") from None
        if response.status_code == 429:
            raise UpstreamThrottled(retry_after_seconds(response, self._clock.now()))
        if response.status_code >= 500:
            raise UpstreamUnavailable("CareCloud's login failed; try again later.")
        return response

    @staticmethod
    def _tokens(response: httpx.Response) -> SessionTokens:
        body = _json_object(response)
        if response.status_code != 200:
            raise UpstreamAuthFailed(
                f"CareCloud refused facade's session renewal (HTTP {response.status_code})."
            )
        try:
            return SessionTokens(
                session_token=str(body["session_token"]),
                refresh_token=str(body["refresh_token"]),
                expires_in=int(body.get("expires_in", 900)),
                business_entity_id=str(body.get("business_entity_id") or ""),
            )
        except (KeyError, TypeError, ValueError):
            raise UpstreamUnavailable("CareCloud's login answer was malformed.") from None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_of(response: httpx.Response) -> str:
    """CareCloud's `{"error": "..."}` text ("" when the body has none)."""
    return str(_json_object(response).get("error") or "")


def retry_after_seconds(response: httpx.Response, now: datetime) -> float:
    """Retry-After as delta seconds (what the CareCloud sandbox sends) or an HTTP date; a
    minute when the answer names no wait."""
    wait = retry_after(response.headers.get("retry-after", ""), now)
    return UNSTATED_THROTTLE_SECONDS if wait is None else wait


def session_ended(response: httpx.Response) -> bool:
    """A 401 that ends the session (renew and retry), not one that refuses the caller."""
    return response.status_code == 401 and _error_of(response) in SESSION_ENDED
