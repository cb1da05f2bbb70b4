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
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import pytest

from facade.core.compartment import CompartmentMapping
from facade.core.registry import MappingRegistry
from facade.vendors import vendor, vendor_names

#: Every vendor in the table, for `@pytest.mark.parametrize("vendor_name", ...)`.
ALL_VENDORS = tuple(vendor_names())
#: Opt a module (`pytestmark = VENDORS`) or a test into running once per vendor.
VENDORS = pytest.mark.parametrize("vendor_name", ALL_VENDORS, indirect=True)

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


def vendor_calls(sandbox: Any) -> list[Any]:
    """Every API request the sandbox answered (its login and OAuth calls left out)."""
    return [e for e in sandbox.api_requests() if e.endpoint not in _LOGIN_ENDPOINTS]


def expire_sessions(sandbox: Any) -> None:
    """Every access token (or session) facade holds stops working; facade must renew."""
    if vendor_of(sandbox) == "drchrono":
        sandbox.expire_all_access_tokens()
    else:
        sandbox.expire_all_sessions()


_LOGIN_ENDPOINTS = {"oauth.token", "authenticate", None}


def registry(vendor_name: str) -> MappingRegistry:
    """The vendor's mapping registry (what facade serves over it)."""
    return vendor(vendor_name).registry()


def per_vendor(
    argnames: str,
    cases: Callable[[MappingRegistry], Iterable[Any]],
    ids: Callable[..., str] | None = None,
) -> Any:
    """Parametrise a test by vendor and by that vendor's own cases (`cases(registry)`
    yields a value, or a tuple, for `argnames`): `vendor_name` comes first and builds the
    vendor's fixtures, as with VENDORS. Case ids read `<vendor>-<ids(*case)>`, by default
    each value's resource type, name or text."""
    params = []
    for name in ALL_VENDORS:
        for case in cases(registry(name)):
            values = case if isinstance(case, tuple) else (case,)
            case_id = ids(*values) if ids else "-".join(map(_id, values))
            params.append(pytest.param(name, *values, id=f"{name}-{case_id}"))
    return pytest.mark.parametrize(f"vendor_name,{argnames}", params, indirect=["vendor_name"])


def _id(value: Any) -> str:
    return str(getattr(value, "resource_type", None) or getattr(value, "name", None) or value)


def per_patient(resource_type: str) -> bool:
    """Whether facade searches `resource_type` one patient at a time (a patient-compartment
    type); every vendor serving the type agrees."""
    kinds = {
        isinstance(registry(name).get(resource_type), CompartmentMapping)
        for name in ALL_VENDORS
        if resource_type in registry(name).resource_types
    }
    assert len(kinds) == 1, f"vendors disagree whether {resource_type} is per patient"
    return kinds.pop()


def confining_params(vendor_name: str) -> set[str]:
    """Besides a source's patient parameter, the list parameters that confine a vendor call
    to records of one of a patient's orders or visits (a source's own fetch uses them)."""
    return {"order", "appointment", "lab_order"} if vendor_name == "drchrono" else set()
