"""One interface to every vendor's sandbox, for the suites that run against each vendor.

A cross-cutting suite (registry sweep, validator sweep, leakage, OperationOutcome cases,
paging, SMART launch, Bulk) is written once and parametrised by vendor: a module opts in with
`pytestmark = VENDORS` (or a test with `@VENDORS`), and the shared fixtures (tests/conftest.py)
then build facade over that vendor's embedded sandbox. What differs between sandboxes is read
through the functions here, never through a vendor's dataset directly.

Both sandboxes keep the same fault plan (`fail_call(nth, fault)`, `fail_next(count, fault)`,
`clear_faults()`, faults "500", "429", "timeout", "expire_token") and the same request log
(`api_requests(endpoint)` entries with `path`, `endpoint`, `query`, `status`, `counted`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections import deque
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import cache
from typing import Any

import pytest

from facade.core.registry import MappingRegistry
from facade.vendors import vendor, vendor_names

#: Every vendor in the table, for `@pytest.mark.parametrize("vendor_name", ...)`.
ALL_VENDORS = tuple(vendor_names())
#: Opt a module (`pytestmark = VENDORS`) or a test into running once per vendor.
VENDORS = pytest.mark.parametrize("vendor_name", ALL_VENDORS, indirect=True)


def registry(vendor_name: str) -> MappingRegistry:
    """What the vendor serves (its mapping registry), readable at collection time."""
    return vendor(vendor_name).registry()


def per_vendor(
    argnames: str, values: Callable[[str], Iterable[Any]], ids: Callable[..., str] | None = None
) -> pytest.MarkDecorator:
    """Run once per vendor and, within it, once per value of `values(vendor)` (e.g. the
    resource types its registry serves), with ids like `carecloud-Coverage`. With several
    `argnames` ("mapping,code") each value is a tuple; `ids(*value)` names a case whose
    values do not read well as ids."""
    names = [name.strip() for name in argnames.split(",")]
    cases = []
    for name in ALL_VENDORS:
        for value in values(name):
            row = tuple(value) if len(names) > 1 else (value,)
            cases.append(pytest.param(name, *row, id=f"{name}-{ids(*row)}" if ids else None))
    return pytest.mark.parametrize(["vendor_name", *names], cases, indirect=["vendor_name"])


SANDBOX_PATIENTS = 12
SANDBOX_SEED = 7


@cache
def _generated(vendor: str, patients: int, seed: int) -> Any:
    if vendor == "drchrono":
        from facade.upstream.drchrono.sandbox.generator import generate as drchrono

        return drchrono(patients=patients, seed=seed)
    if vendor == "carecloud":
        from facade.upstream.carecloud.sandbox.generator import generate as carecloud

        return carecloud(patients, seed)
    raise AssertionError(f"no test sandbox for vendor {vendor!r}")


def generated(vendor: str, patients: int = SANDBOX_PATIENTS, seed: int = SANDBOX_SEED) -> Any:
    """A fresh copy of the vendor's generated dataset (generated once per session)."""
    return copy.deepcopy(_generated(vendor, patients, seed))


def sandbox_state(vendor: str, dataset: Any, clock: Any, *, hourly_limit: int = 0) -> Any:
    """The vendor's sandbox over `dataset`, on facade's test clock; `hourly_limit` raises
    the vendor's hourly quota above its own (for suites that read a large sandbox whole)."""
    if vendor == "drchrono":
        from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState

        limits = SandboxLimits(burst_per_second=None)
        if hourly_limit:
            limits = SandboxLimits(burst_per_second=None, hourly_limit=hourly_limit)
        return SandboxState.with_default_app(
            dataset, seed=SANDBOX_SEED, limits=limits, clock=clock.now
        )
    if vendor == "carecloud":
        from facade.upstream.carecloud.sandbox.state import DEFAULT_HOURLY_BUDGET
        from facade.upstream.carecloud.sandbox.state import SandboxState as CareCloudState

        return CareCloudState.create(
            dataset,
            seed=SANDBOX_SEED,
            clock=clock.now,
            hourly_budget=hourly_limit or DEFAULT_HOURLY_BUDGET,
        )
    raise AssertionError(f"no test sandbox for vendor {vendor!r}")


def vendor_of(sandbox: Any) -> str:
    module = type(sandbox).__module__
    return next(name for name in ALL_VENDORS if f".{name}." in module)


def patient_ids(sandbox: Any) -> list[str]:
    """The FHIR ids of the sandbox's patients, in the vendor's order."""
    if vendor_of(sandbox) == "drchrono":
        return [str(p["id"]) for p in sandbox.dataset.endpoint("patients")]
    return [str(p["id"]).lower() for p in sandbox.dataset.patients]


def patient_records(sandbox: Any) -> list[dict[str, Any]]:
    """The sandbox's patient records as the vendor holds them (mutable: tests may edit)."""
    if vendor_of(sandbox) == "drchrono":
        return list(sandbox.dataset.endpoint("patients"))
    return list(sandbox.dataset.patients)


def practice_group(sandbox: Any) -> tuple[str, set[str]]:
    """A group the vendor keeps (its first doctor's or provider's panel): its FHIR id and its
    members' FHIR patient ids."""
    if vendor_of(sandbox) == "drchrono":
        doctor = str(sandbox.dataset.endpoint("doctors")[0]["id"])
        patients = sandbox.dataset.endpoint("patients")
        return f"doctor-{doctor}", {str(p["id"]) for p in patients if str(p["doctor"]) == doctor}
    provider = sandbox.dataset.providers[0]["id"]
    patients = sandbox.dataset.patients
    members = {str(p["id"]).lower() for p in patients if p["primary_provider_id"] == provider}
    return f"provider-{provider}", members


def vendor_calls(sandbox: Any) -> list[Any]:
    """Every API request the sandbox answered (its login and OAuth calls left out)."""
    return [e for e in sandbox.api_requests() if e.endpoint not in _LOGIN_ENDPOINTS]


def expire_sessions(sandbox: Any) -> None:
    """Every access token (or session) facade holds stops working; facade must renew."""
    if vendor_of(sandbox) == "drchrono":
        sandbox.expire_all_access_tokens()
    else:
        sandbox.expire_all_sessions()


def renewals(sandbox: Any) -> list[Any]:
    """Every login or session renewal the sandbox granted (its OAuth token calls that
    succeeded, or its successful logins)."""
    granted = [e for e in sandbox.request_log if e.status == 200]
    return [e for e in granted if e.endpoint in _LOGIN_ENDPOINTS - {None}]


def revoke_access(sandbox: Any) -> None:
    """The vendor stops letting facade in: every refresh grant dies, and no new login is
    accepted (DrChrono's only way in is a refresh token; CareCloud's password changes)."""
    if vendor_of(sandbox) == "drchrono":
        sandbox.refresh_tokens.clear()
        return
    sandbox.refresh_grants.clear()
    for name, user in list(sandbox.users.items()):
        sandbox.users[name] = dataclasses.replace(user, password=user.password + " (changed)")


def set_hourly_limit(sandbox: Any, calls: int) -> None:
    """The vendor answers 429 once facade has made `calls` calls in the (rolling) hour."""
    if vendor_of(sandbox) == "drchrono":
        sandbox.throttle.hourly_limit = calls
    else:
        sandbox.hourly_budget = calls


def hold(sandbox: Any, seconds: int) -> None:
    """Every call for the next `seconds` is answered 429 with `Retry-After: <seconds>`."""
    now = sandbox.clock()
    if vendor_of(sandbox) == "drchrono":
        from facade.upstream.drchrono.sandbox.state import DEFAULT_CLIENT_ID

        sandbox.throttle.hold(DEFAULT_CLIENT_ID, now, seconds)
        return
    # The user's rolling hour is full, and its calls all leave the window `seconds` from now.
    spent = now - timedelta(hours=1) + timedelta(seconds=seconds)
    sandbox.spent[sandbox.default_user.username] = deque([spent] * sandbox.hourly_budget)


_LOGIN_ENDPOINTS = {"oauth.token", "authenticate", None}


def confining_params(vendor_name: str) -> set[str]:
    """Besides a source's patient parameter, the list parameters that confine a vendor call
    to records of one of a patient's orders or visits (a source's own fetch uses them)."""
    return {"order", "appointment", "lab_order"} if vendor_name == "drchrono" else set()


def change_generator(sandbox: Any, per_hour: float, seed: int) -> Any:
    """The vendor's change generator over `sandbox` (its `run_until(moment)` makes the changes
    due by then; its `log` lists them)."""
    if vendor_of(sandbox) == "drchrono":
        from facade.upstream.drchrono.sandbox.changes import ChangeGenerator

        return ChangeGenerator(sandbox, changes_per_hour=per_hour, seed=seed)
    from facade.upstream.carecloud.sandbox.changes import ChangeGenerator as CareCloudChanges

    return CareCloudChanges(sandbox, per_hour, seed=seed)
