"""Vendor-call economy, for every patient-compartment type the registry serves: a patient
search calls only that patient's records, and a token search calls only the sources that
can produce the asked codes."""

from __future__ import annotations

import httpx
import pytest

from facade.core.compartment import CompartmentMapping
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from mappings.drchrono import REGISTRY
from tests.conftest import all_pages

COMPARTMENT = [m for m in REGISTRY if isinstance(m, CompartmentMapping)]

#: Query parameters that confine a vendor list call to records of one patient or one of
#: that patient's orders.
CONFINING = {"patient", "order", "appointment", "lab_order"}


@pytest.mark.parametrize("mapping", COMPARTMENT, ids=[m.resource_type for m in COMPARTMENT])
async def test_a_patient_search_never_lists_practice_wide(
    warm_fhir: httpx.AsyncClient,
    sandbox: SandboxState,
    dataset: SandboxDataset,
    mapping: CompartmentMapping,
) -> None:
    patient_id = str(dataset.endpoint("patients")[0]["id"])
    before = len(sandbox.api_requests())
    await all_pages(warm_fhir, f"/fhir/{mapping.resource_type}?patient={patient_id}")
    for call in sandbox.api_requests()[before:]:
        detail = call.path.rstrip("/").split("/")[-1].isdigit() or patient_id in call.path
        confined = any(key in call.query for key in CONFINING)
        assert detail or confined, f"{mapping.resource_type} listed {call.path} practice-wide"
        if "patient" in call.query:
            assert call.query["patient"] == patient_id


PRUNABLE = [
    (mapping, source, code)
    for mapping in COMPARTMENT
    for source in mapping.sources
    for code in source.produces
    if len(mapping.sources) > 1
]


@pytest.mark.parametrize(
    "mapping,source,code",
    PRUNABLE,
    ids=[f"{m.resource_type}-{s.name}-{c}" for m, s, c in PRUNABLE],
)
async def test_a_token_search_skips_sources_that_cannot_match(
    warm_fhir: httpx.AsyncClient,
    sandbox: SandboxState,
    dataset: SandboxDataset,
    mapping: CompartmentMapping,
    source: object,
    code: str,
) -> None:
    """Ask for a code only other sources produce (or, when the others cannot list theirs, a
    code this source does not produce): this source's endpoint is not called."""
    others = {
        value
        for other in mapping.sources
        if other is not source
        for value in other.produces.get(code, frozenset())
    } - set(source.produces[code])
    value = sorted(others)[0] if others else "http://loinc.org|2345-7"
    assert value.rpartition("|")[2] not in source.produces[code]
    patient_id = str(dataset.endpoint("patients")[0]["id"])
    before = len(sandbox.api_requests())
    response = await warm_fhir.get(
        f"/fhir/{mapping.resource_type}?patient={patient_id}&{code}={value}"
    )
    assert response.status_code == 200
    endpoints = {c.endpoint for c in sandbox.api_requests()[before:]}
    own = source.endpoint
    shared = any(o.endpoint == own for o in mapping.sources if o is not source)
    assert shared or own not in endpoints, (source, endpoints)


@pytest.mark.parametrize(
    "search,endpoints",
    [
        ("Observation?code=8867-4", {"appointments"}),
        ("Observation?code=http://loinc.org|85354-9,8867-4", {"appointments"}),
        ("Observation?category=laboratory", {"lab_orders_summary", "lab_tests", "lab_results"}),
        ("Observation?category=vital-signs", {"appointments"}),
        ("Observation?category=exam", {"patient_physical_exams"}),
        ("DiagnosticReport?category=LAB", {"lab_orders_summary", "lab_tests", "lab_results"}),
        ("DiagnosticReport?code=24356-8", {"lab_orders_summary", "lab_tests", "lab_results"}),
        # The first patient has an EKG report, whose results are that day's exam findings:
        # listing their documents also lists their exams.
        ("DiagnosticReport?category=LP29684-5", {"documents", "patient_physical_exams"}),
        ("DiagnosticReport?code=11526-1", {"documents", "patient_physical_exams"}),
        ("DiagnosticReport?category=LP29708-2", {"documents", "patient_physical_exams"}),
    ],
)
async def test_token_searches_call_only_the_endpoints_they_need(
    warm_fhir: httpx.AsyncClient,
    sandbox: SandboxState,
    dataset: SandboxDataset,
    search: str,
    endpoints: set[str],
) -> None:
    resource_type, _, query = search.partition("?")
    patient_id = str(dataset.endpoint("patients")[0]["id"])
    before = len(sandbox.api_requests())
    response = await warm_fhir.get(f"/fhir/{resource_type}?patient={patient_id}&{query}")
    assert response.status_code == 200
    assert response.json().get("total", len(response.json().get("entry", []))) != 0
    called = {c.endpoint for c in sandbox.api_requests()[before:]}
    assert called and called <= endpoints, called
