"""Everything the CareCloud sandbox remembers: records, users and sessions, lockouts, the
per-user hourly budget, planned faults, webhook subscriptions and deliveries, the request log.

A real, stateful fake: tests drive it over HTTP and read it back to assert what was asked.
It must never read the wall clock directly (use `clock`) nor log a password, code or token.
"""

from __future__ import annotations

import base64
import random
import string
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from facade.sandbox.clock import Clock, utc_now
from facade.sandbox.clock import ManualClock as ManualClock
from facade.sandbox.faults import Fault as Fault
from facade.sandbox.faults import FaultPlan
from facade.upstream.carecloud.sandbox.context import PRACTICE_ZONE, Record, iso, new_guid
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset
from facade.upstream.carecloud.sandbox.webhooks import (
    APPOINTMENT_CHANGED,
    ENCOUNTER_SIGNED,
    Delivery,
    Subscription,
    deliver,
    event_body,
)
from facade.upstream.carecloud.totp import hotp, time_step, verify_totp

SESSION_SECONDS = 900
REFRESH_SECONDS = 12 * 3600
LOCKOUT_FAILURES = 5
LOCKOUT_SECONDS = 15 * 60
#: Our invention (CareCloud publishes no limit): calls per username per rolling hour.
DEFAULT_HOURLY_BUDGET = 1000
BUDGET_WINDOW_SECONDS = 3600
APPOINTMENT_STATUSES = (
    "scheduled",
    "confirmed",
    "checked_in",
    "checked_out",
    "completed",
    "cancelled",
    "no_show",
)

_TOKEN_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class SandboxUser:
    """A CareCloud login: what the embedded runtime (and `facade connect`) authenticate with."""

    id: int
    username: str
    password: str
    totp_secret: str
    first_name: str
    last_name: str


@dataclass
class Session:
    token: str
    username: str
    expires_at: datetime


@dataclass
class RefreshGrant:
    token: str
    username: str
    expires_at: datetime


@dataclass
class RequestLogEntry:
    """One request the sandbox answered; `params` keeps the last value of each query parameter."""

    method: str
    path: str
    #: `patients`, `patients.detail`, `appointments`, `authenticate`, ... or None if unknown.
    endpoint: str | None
    params: dict[str, str]
    status: int
    fault: Fault | None = None
    username: str | None = None
    #: Whether the user's hourly budget was spent.
    counted: bool = False
    at: datetime | None = None

    @property
    def query(self) -> dict[str, str]:
        """`params` under the name other sandboxes use (vendor-parametrised tests read either)."""
        return self.params


@dataclass
class SandboxState(FaultPlan):
    """The sandbox's whole memory; `create` builds the usual one.

    Its fault plan counts every API call but /authenticate.
    """

    dataset: CareCloudDataset
    clock: Clock = utc_now
    seed: int | None = None
    hourly_budget: int = DEFAULT_HOURLY_BUDGET
    #: Refuse a TOTP code a login already used (as strict vendors do); off by default since
    #: the contract only asks for the current, previous or next step's code.
    single_use_codes: bool = False
    spent_codes: set[tuple[str, int]] = field(default_factory=set)
    #: Where webhook deliveries go; None means the real network (standalone sandbox only).
    webhook_transport: httpx.AsyncBaseTransport | None = None
    users: dict[str, SandboxUser] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    refresh_grants: dict[str, RefreshGrant] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    locked_until: dict[str, datetime] = field(default_factory=dict)
    spent: dict[str, deque[datetime]] = field(default_factory=dict)
    request_log: list[RequestLogEntry] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = (
            random.Random(f"facade-carecloud-sandbox:{self.seed}:state")
            if self.seed is not None
            else random.Random()
        )

    @classmethod
    def create(
        cls,
        dataset: CareCloudDataset,
        *,
        seed: int = 0,
        clock: Clock = utc_now,
        hourly_budget: int = DEFAULT_HOURLY_BUDGET,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> SandboxState:
        """A sandbox with the practice's API user (password and TOTP secret derive from `seed`)."""
        state = cls(
            dataset=dataset,
            clock=clock,
            seed=seed,
            hourly_budget=hourly_budget,
            webhook_transport=webhook_transport,
        )
        user = dataset.user
        state.add_user(
            SandboxUser(
                id=int(user["id"]),
                username=str(user["username"]),
                password=state.random_token(24),
                totp_secret=base64.b32encode(state._random.randbytes(20)).decode("ascii"),
                first_name=str(user["first_name"]),
                last_name=str(user["last_name"]),
            )
        )
        return state

    @property
    def default_user(self) -> SandboxUser:
        return self.users[str(self.dataset.user["username"])]

    def add_user(self, user: SandboxUser) -> SandboxUser:
        self.users[user.username] = user
        return user

    def random_token(self, length: int) -> str:
        return "".join(self._random.choice(_TOKEN_ALPHABET) for _ in range(length))

    def random_digits(self, length: int) -> str:
        return "".join(self._random.choice(string.digits) for _ in range(length))

    def new_guid(self) -> str:
        return new_guid(self._random)

    def now_local(self) -> datetime:
        return self.clock().astimezone(PRACTICE_ZONE)

    # -- authentication ------------------------------------------------------------------

    def login(self, username: str, password: str, mfa_code: str | None) -> tuple[int, Record]:
        """POST /authenticate with credentials: (status, body)."""
        now = self.clock()
        locked = self.locked_until.get(username)
        if locked is not None:
            if now < locked:
                return 403, {"error": "account_locked"}
            del self.locked_until[username]
            self.failures.pop(username, None)
        user = self.users.get(username)
        if user is None or user.password != password:
            return self._failed(username, "invalid_credentials")
        if not mfa_code:
            return 401, {"error": "mfa_required"}
        if not verify_totp(user.totp_secret, mfa_code, now):
            return self._failed(username, "invalid_mfa_code")
        if self.single_use_codes:
            step = next(
                time_step(now) + delta
                for delta in (-1, 0, 1)
                if hotp(user.totp_secret, time_step(now) + delta) == mfa_code
            )
            if (username, step) in self.spent_codes:
                return self._failed(username, "invalid_mfa_code")
            self.spent_codes.add((username, step))
        self.failures.pop(username, None)
        return 200, self._issue(username)

    def _failed(self, username: str, error: str) -> tuple[int, Record]:
        count = self.failures.get(username, 0) + 1
        self.failures[username] = count
        if count >= LOCKOUT_FAILURES:
            self.locked_until[username] = self.clock() + timedelta(seconds=LOCKOUT_SECONDS)
        return 401, {"error": error}

    def refresh(self, refresh_token: str) -> tuple[int, Record]:
        """POST /authenticate with a refresh grant: the old refresh token dies either way."""
        grant = self.refresh_grants.pop(refresh_token, None)
        if grant is None or self.clock() >= grant.expires_at:
            return 401, {"error": "invalid_refresh_token"}
        if self.clock() < self.locked_until.get(grant.username, self.clock()):
            return 403, {"error": "account_locked"}
        return 200, self._issue(grant.username)

    def _issue(self, username: str) -> Record:
        now = self.clock()
        session = Session(self.random_token(32), username, now + timedelta(seconds=SESSION_SECONDS))
        grant = RefreshGrant(
            self.random_token(40), username, now + timedelta(seconds=REFRESH_SECONDS)
        )
        self.sessions[session.token] = session
        self.refresh_grants[grant.token] = grant
        return {
            "session_token": session.token,
            "token_type": "Bearer",
            "expires_in": SESSION_SECONDS,
            "refresh_token": grant.token,
            "business_entity_id": self.dataset.business_entity["id"],
        }

    def issue_session(self, username: str | None = None) -> Record:
        """Mint a session as a successful login would (tests may skip the TOTP dance)."""
        return self._issue(username or self.default_user.username)

    def session_for(self, token: str) -> tuple[Session | None, str | None]:
        """(session, None) when valid, else (None, "invalid_session" | "session_expired")."""
        session = self.sessions.get(token)
        if session is None:
            return None, "invalid_session"
        if self.clock() >= session.expires_at:
            return None, "session_expired"
        return session, None

    def expire_all_sessions(self) -> None:
        now = self.clock()
        for session in self.sessions.values():
            session.expires_at = min(session.expires_at, now)

    # -- budget ---------------------------------------------------------------------------

    def budget_wait(self, username: str) -> float | None:
        """Seconds until `username` may call again, or None if the rolling hour has room."""
        now = self.clock()
        calls = self.spent.setdefault(username, deque())
        window_start = now - timedelta(seconds=BUDGET_WINDOW_SECONDS)
        while calls and calls[0] <= window_start:
            calls.popleft()
        if len(calls) < self.hourly_budget:
            return None
        return (calls[0] - window_start).total_seconds()

    def charge(self, username: str) -> None:
        self.spent.setdefault(username, deque()).append(self.clock())

    # -- request log ----------------------------------------------------------------------

    def api_requests(self, endpoint: str | None = None) -> list[RequestLogEntry]:
        """Logged API requests (not /authenticate), optionally only those to one endpoint."""
        return [
            entry
            for entry in self.request_log
            if entry.endpoint != "authenticate" and (endpoint is None or entry.endpoint == endpoint)
        ]

    # -- writes and the events they raise ---------------------------------------------------

    def subscribe(self, url: str, secret: str, events: list[str]) -> Subscription:
        subscription = Subscription(
            id=self.new_guid(),
            url=url,
            secret=secret,
            events=tuple(events),
            created_at=iso(self.clock()),
        )
        self.subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription_id: str) -> bool:
        before = len(self.subscriptions)
        self.subscriptions = [s for s in self.subscriptions if s.id != subscription_id]
        return len(self.subscriptions) != before

    async def publish(self, event: str, data: Record) -> list[Delivery]:
        """Post `event` to every subscription that wants it; awaited, never in the background."""
        wanted = [s for s in self.subscriptions if event in s.events]
        if not wanted:
            return []
        event_id = self.new_guid()
        body = event_body(event_id, event, iso(self.clock()), data)
        sent = []
        async with httpx.AsyncClient(transport=self.webhook_transport, timeout=10.0) as client:
            for subscription in wanted:
                delivery = await deliver(client, subscription, event, event_id, body)
                self.deliveries.append(delivery)
                sent.append(delivery)
        return sent

    async def _appointment_changed(self, appointment: Record) -> None:
        await self.publish(
            APPOINTMENT_CHANGED,
            {"appointment_id": appointment["id"], "patient_id": appointment["patient_id"]},
        )

    async def add_appointment(self, appointment: Record) -> Record:
        self.dataset.appointments.append(appointment)
        await self._appointment_changed(appointment)
        return appointment

    async def change_appointment_status(
        self, appointment_id: str, status: str, *, cancellation_reason: str | None = None
    ) -> Record:
        """What a front-desk user does in CareCloud (check in, cancel, ...); fires the webhook."""
        if status not in APPOINTMENT_STATUSES:
            raise ValueError(f"unknown appointment status {status!r}")
        appointment = self.dataset.appointment(appointment_id)
        if appointment is None:
            raise KeyError(appointment_id)
        appointment["status"] = status
        appointment["cancellation_reason"] = cancellation_reason if status == "cancelled" else None
        appointment["updated_at"] = iso(self.clock())
        await self._appointment_changed(appointment)
        return appointment

    async def reschedule_appointment(
        self, appointment_id: str, start: datetime, end: datetime
    ) -> Record:
        """The front desk moves a visit to another time; fires the webhook."""
        appointment = self.dataset.appointment(appointment_id)
        if appointment is None:
            raise KeyError(appointment_id)
        appointment["start_time"] = iso(start)
        appointment["end_time"] = iso(end)
        appointment["updated_at"] = iso(self.clock())
        await self._appointment_changed(appointment)
        return appointment

    async def sign_encounter(self, encounter_id: str, *, text: str | None = None) -> Record:
        """What a provider does when they sign the visit note; fires `encounter.signed`."""
        encounter = self.dataset.encounter(encounter_id)
        if encounter is None:
            raise KeyError(encounter_id)
        now = iso(self.clock())
        amended = encounter["status"] in ("signed", "amended")
        encounter["status"] = "amended" if amended else "signed"
        encounter["signed_at"] = now
        encounter["updated_at"] = now
        encounter["note"] = {
            "id": self._random.randint(9_000_000, 9_999_999),
            "signed_by": encounter["provider_id"],
            "signed_at": now,
            "text": text
            or f"Subjective: {encounter['chief_complaint']}.\nPlan: Return as scheduled.",
        }
        for lab in encounter["lab_results"]:
            if lab["status"] == "preliminary":
                lab["status"] = "final"
        await self.publish(
            ENCOUNTER_SIGNED,
            {"encounter_id": encounter["id"], "patient_id": encounter["patient_id"]},
        )
        return encounter
