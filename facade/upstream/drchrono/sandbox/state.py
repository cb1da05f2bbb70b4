"""Everything the DrChrono sandbox remembers: data, OAuth apps and tokens, quota, faults, log,
webhooks.

A real, stateful fake: tests drive it through HTTP and read it back to assert what was pushed
down. It must never read the wall clock directly (use `clock`) nor touch the network (webhooks
reach their callbacks only through the transport `webhooks` is given).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from facade.sandbox.clock import Clock, utc_now
from facade.sandbox.clock import ManualClock as ManualClock
from facade.sandbox.faults import Fault as Fault
from facade.sandbox.faults import FaultPlan
from facade.upstream.drchrono import DECLARED_BURST_PER_SECOND
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.limits import ApiThrottle
from facade.upstream.drchrono.sandbox.webhooks import SandboxWebhooks

#: The client id `SandboxState.with_default_app` registers (what `facade serve` uses).
DEFAULT_CLIENT_ID = "facade-sandbox"
#: DrChrono's access tokens always live 48 hours (`expires_in: 172800`).
ACCESS_TOKEN_SECONDS = 172_800
#: "Note that the code parameter expires after 1 minute."
AUTHORIZATION_CODE_SECONDS = 60
#: The 22 DrChrono OAuth scopes; an authorize request without `scope` is granted all of them.
ALL_SCOPES = " ".join(
    f"{area}:{mode}"
    for area in (
        "user",
        "calendar",
        "patients",
        "patients:summary",
        "clinical",
        "labs",
        "messages",
        "settings",
        "tasks",
        "billing",
        "billing:patient-payment",
    )
    for mode in ("read", "write")
)

_TOKEN_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class SandboxLimits:
    """The vendor's quota and page-size rules; `burst_per_second=None` disables the burst limit."""

    hourly_limit: int = 500
    burst_per_second: int | None = DECLARED_BURST_PER_SECOND
    page_size_max: int = 250
    verbose_page_size_max: int = 50
    clinical_notes_page_size_default: int = 5
    clinical_notes_page_size_max: int = 20
    #: Each /api call reaches the vendor after a random 0 to this many seconds, as over a
    #: real network, before it is counted; 0 (in-process, instantly) unless a test asks.
    network_jitter_seconds: float = 0.0


@dataclass(frozen=True)
class OAuthApp:
    """An API application registered on DrChrono's API management page."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()
    #: Accept any `http://127.0.0.1:<port>/...` or `http://localhost:<port>/...` (`facade connect`).
    allow_loopback_redirects: bool = False

    def accepts_redirect(self, redirect_uri: str) -> bool:
        if redirect_uri in self.redirect_uris:
            return True
        if not self.allow_loopback_redirects:
            return False
        for host in ("http://127.0.0.1:", "http://localhost:"):
            if redirect_uri.startswith(host):
                port = redirect_uri[len(host) :].split("/", 1)[0]
                return port.isdigit()
        return False


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: datetime


@dataclass
class AccessToken:
    token: str
    client_id: str
    scope: str
    expires_at: datetime
    refresh_token: str


@dataclass
class RefreshToken:
    token: str
    client_id: str
    scope: str
    access_token: str


@dataclass(frozen=True)
class IssuedTokens:
    """What /o/token/ answers with, and what `SandboxState.issue_tokens` hands to tests."""

    access_token: str
    refresh_token: str
    scope: str
    expires_in: int = ACCESS_TOKEN_SECONDS

    def as_json(self) -> dict[str, str | int]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }


@dataclass
class RequestLogEntry:
    """One request the sandbox answered; `query` keeps the last value of each parameter."""

    method: str
    path: str
    #: `patients`, `patients.ccda`, `users.current`, `oauth.token`, `files`, ... or None if unknown.
    endpoint: str | None
    query: dict[str, str]
    status: int
    verbose: bool
    #: Whether the app's hourly quota was spent (only authenticated, unthrottled /api calls).
    counted: bool
    client_id: str | None = None
    fault: Fault | None = None
    at: datetime | None = None


@dataclass
class SandboxState(FaultPlan):
    """The sandbox's whole memory; `with_default_app` builds the usual one.

    Its fault plan counts the /api requests (not OAuth, not /files).
    """

    dataset: SandboxDataset
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    clock: Clock = utc_now
    #: Keys the HMAC of pre-signed /files URLs.
    file_signing_key: bytes = b"facade-sandbox-file-signing-key"
    seed: int | None = None
    apps: dict[str, OAuthApp] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    request_log: list[RequestLogEntry] = field(default_factory=list)
    throttle: ApiThrottle = field(init=False)
    #: Each app's webhook and every hook sent (configure them here: `state.webhooks.configure`).
    webhooks: SandboxWebhooks = field(init=False)
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.throttle = ApiThrottle(self.limits.hourly_limit, self.limits.burst_per_second)
        self._random = random.Random(self.seed) if self.seed is not None else random.SystemRandom()
        self.webhooks = SandboxWebhooks(self.clock, seed=self.seed)

    @classmethod
    def with_default_app(
        cls,
        dataset: SandboxDataset,
        *,
        client_secret: str | None = None,
        redirect_uris: tuple[str, ...] = (),
        seed: int = 0,
        limits: SandboxLimits | None = None,
        clock: Clock = utc_now,
    ) -> SandboxState:
        """A sandbox with the `facade-sandbox` app, which accepts any loopback redirect URI.

        Without `client_secret` the secret is derived from `seed`, so it is stable across runs.
        """
        state = cls(dataset=dataset, limits=limits or SandboxLimits(), clock=clock, seed=seed)
        secret = client_secret if client_secret is not None else state.random_token(40)
        state.register_app(
            OAuthApp(
                client_id=DEFAULT_CLIENT_ID,
                client_secret=secret,
                redirect_uris=redirect_uris,
                allow_loopback_redirects=True,
            )
        )
        return state

    @property
    def default_app(self) -> OAuthApp:
        return self.apps[DEFAULT_CLIENT_ID]

    def register_app(self, app: OAuthApp) -> OAuthApp:
        self.apps[app.client_id] = app
        return app

    def network_delay(self) -> float:
        """Seconds the next /api call spends on its way in (see SandboxLimits)."""
        jitter = self.limits.network_jitter_seconds
        return self._random.uniform(0.0, jitter) if jitter > 0 else 0.0

    def random_token(self, length: int = 30) -> str:
        return "".join(self._random.choice(_TOKEN_ALPHABET) for _ in range(length))

    # -- OAuth -----------------------------------------------------------------------------

    def authenticate_client(self, client_id: str, client_secret: str) -> OAuthApp | None:
        app = self.apps.get(client_id)
        if app is None or app.client_secret != client_secret:
            return None
        return app

    def create_code(self, client_id: str, redirect_uri: str, scope: str) -> AuthorizationCode:
        code = AuthorizationCode(
            code=self.random_token(30),
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            expires_at=self.clock() + timedelta(seconds=AUTHORIZATION_CODE_SECONDS),
        )
        self.codes[code.code] = code
        return code

    def redeem_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """Single use: the code is gone after this call, whether or not it was still valid."""
        found = self.codes.pop(code, None)
        if found is None or found.client_id != client_id or self.clock() >= found.expires_at:
            return None
        return found

    def issue_tokens(
        self, client_id: str = DEFAULT_CLIENT_ID, scope: str = ALL_SCOPES
    ) -> IssuedTokens:
        """Mint an access/refresh pair as /o/token/ would (tests may skip the OAuth dance)."""
        access = AccessToken(
            token=self.random_token(30),
            client_id=client_id,
            scope=scope,
            expires_at=self.clock() + timedelta(seconds=ACCESS_TOKEN_SECONDS),
            refresh_token=self.random_token(30),
        )
        self.access_tokens[access.token] = access
        self.refresh_tokens[access.refresh_token] = RefreshToken(
            token=access.refresh_token, client_id=client_id, scope=scope, access_token=access.token
        )
        return IssuedTokens(access.token, access.refresh_token, scope)

    def rotate_refresh_token(self, refresh_token: str, client_id: str) -> IssuedTokens | None:
        """Refresh tokens rotate: the old one and its access token stop working."""
        found = self.refresh_tokens.get(refresh_token)
        if found is None or found.client_id != client_id:
            return None
        del self.refresh_tokens[refresh_token]
        self.access_tokens.pop(found.access_token, None)
        return self.issue_tokens(client_id, found.scope)

    def revoke(self, token: str, client_id: str) -> None:
        access = self.access_tokens.get(token)
        if access is not None and access.client_id == client_id:
            del self.access_tokens[token]
        refresh = self.refresh_tokens.get(token)
        if refresh is not None and refresh.client_id == client_id:
            del self.refresh_tokens[token]
            self.access_tokens.pop(refresh.access_token, None)

    def valid_access_token(self, token: str) -> AccessToken | None:
        found = self.access_tokens.get(token)
        if found is None or self.clock() >= found.expires_at:
            return None
        return found

    def expire_all_access_tokens(self) -> None:
        self.access_tokens.clear()

    # -- Request log -----------------------------------------------------------------------

    def api_requests(self, endpoint: str | None = None) -> list[RequestLogEntry]:
        """Logged /api requests, optionally only those to one endpoint (e.g. `patients`)."""
        return [
            entry
            for entry in self.request_log
            if entry.path.startswith("/api/") and (endpoint is None or entry.endpoint == endpoint)
        ]
