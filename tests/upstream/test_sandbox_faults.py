"""The fault plan every sandbox shares: where a planned fault strikes, and how it is named."""

from __future__ import annotations

import pytest

from facade.sandbox.faults import Fault, FaultPlan


def test_a_fault_strikes_the_nth_call_counted_from_now() -> None:
    plan = FaultPlan()
    plan.next_api_call()
    plan.fail_call(2, "500")
    plan.fail_next(1, Fault.THROTTLED)
    seen = [plan.next_api_call() for _ in range(3)]
    assert [p.fault if p else None for p in seen] == [Fault.THROTTLED, Fault.SERVER_ERROR, None]
    assert plan.api_calls_seen == 4


def test_cleared_faults_never_strike() -> None:
    plan = FaultPlan()
    plan.fail_next(3, "timeout", timeout_seconds=0.5)
    plan.clear_faults()
    assert [plan.next_api_call() for _ in range(3)] == [None, None, None]


def test_a_login_expiry_is_one_fault_under_either_name() -> None:
    assert Fault("expire_token") is Fault("expire_session") is Fault.EXPIRE_SESSION
    with pytest.raises(ValueError):
        Fault("expire_everything")


def test_calls_count_from_one() -> None:
    with pytest.raises(ValueError, match="nth counts from 1"):
        FaultPlan().fail_call(0, "500")
