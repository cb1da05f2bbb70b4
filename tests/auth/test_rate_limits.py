"""Per-client request limits: a sliding minute, per client. In memory for one process; in
the database (SQLite or PostgreSQL) for processes that share it, where every replica counts
against the one window."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from facade.auth.ratelimit import ClientRateLimits, SharedRateLimits
from facade.auth.server.registration_rules import SharedAddressLimits
from facade.clock import FakeClock
from facade.errors import RateLimited
from facade.store.database import Database
from facade.store.ledger import Ledger
from tests.store.test_database import (  # noqa: F401  (fixtures)
    database,
    database_url,
    postgres_database,
)

Limits = Callable[[], ClientRateLimits]


@pytest.fixture(params=["memory", "database"])
def make_limits(
    request: pytest.FixtureRequest,
    database: Database,  # noqa: F811
    clock: FakeClock,
) -> Limits:
    if request.param == "memory":
        return lambda: ClientRateLimits(clock, 3)
    return lambda: SharedRateLimits(Ledger(database), clock, 3)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_client_over_its_minute_waits_for_its_oldest_request(
    make_limits: Limits, clock: FakeClock
) -> None:
    limits = make_limits()
    for _ in range(3):
        limits.check("app")
        clock.advance(10)
    with pytest.raises(RateLimited) as refused:
        limits.check("app")
    assert refused.value.headers["Retry-After"] == "30"  # the first frees 60 s after it
    limits.check("another-app")  # each client has its own window
    clock.advance(30)
    limits.check("app")


def test_replicas_on_one_database_count_one_window(database: Database, clock: FakeClock) -> None:  # noqa: F811
    a = SharedRateLimits(Ledger(database), clock, 3)
    b = SharedRateLimits(Ledger(database), clock, 3)
    a.check("app")
    b.check("app")
    a.check("app")
    with pytest.raises(RateLimited):
        b.check("app")


def test_registration_attempts_count_once_for_the_deployment(
    database: Database,  # noqa: F811
    clock: FakeClock,
) -> None:
    """Registration attempts per source address: replicas on one database share the hour,
    and an IPv6 /64 is one address."""
    a = SharedAddressLimits(Ledger(database), clock, 2)
    b = SharedAddressLimits(Ledger(database), clock, 2)
    assert a.hit("2001:db8::1") == 0
    assert b.hit("2001:db8::2") == 0  # the same /64
    assert a.hit("2001:db8::3") == pytest.approx(3600)
    assert b.hit("198.51.100.7") == 0
    clock.advance(3600)
    assert b.hit("2001:db8::4") == 0
