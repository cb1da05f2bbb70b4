"""Vendor-call economy, for every patient-compartment type each vendor's registry serves: a
patient search calls only that patient's records, and a token search skips the sources that
cannot produce the asked codes and never calls more than the search without it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from facade.core.compartment import CompartmentMapping, Source
from facade.core.planner import plan_chart
from facade.fhir.query import parse_query
from facade.runtime import Runtime
from tests.conftest import all_pages
from tests.vendors import confining_params, patient_ids, per_vendor, registry


def compartment(vendor_name: str) -> list[CompartmentMapping]:
    return [m for m in registry(vendor_name) if isinstance(m, CompartmentMapping)]


@per_vendor("mapping", compartment, ids=lambda mapping: mapping.resource_type)
async def test_a_patient_search_never_lists_practice_wide(
    warm_fhir: httpx.AsyncClient, sandbox: Any, vendor_name: str, mapping: CompartmentMapping
) -> None:
    patient_id = patient_ids(sandbox)[0]
    patient_key = registry(vendor_name).patient_key(patient_id)
    assert patient_key is not None
    by_patient = {source.patient_param for source in mapping.sources}
    confining = by_patient | confining_params(vendor_name)
    before = len(sandbox.api_requests())
    await all_pages(warm_fhir, f"/fhir/{mapping.resource_type}?patient={patient_id}")
    for call in sandbox.api_requests()[before:]:
        detail = call.path.rstrip("/").split("/")[-1].isdigit() or patient_key in call.path
        confined = any(key in call.query for key in confining)
        assert detail or confined, f"{mapping.resource_type} listed {call.path} practice-wide"
        for key in by_patient & set(call.query):
            assert call.query[key] == patient_key


def prunable(vendor_name: str) -> list[tuple[CompartmentMapping, Source, str]]:
    """Each (type, source, token parameter) where a search could leave the source out."""
    return [
        (mapping, source, code)
        for mapping in compartment(vendor_name)
        for source in mapping.sources
        for code in source.produces
        if len(mapping.sources) > 1
    ]


def calls_since(sandbox: Any, before: int) -> Counter[tuple[str, str]]:
    return Counter(
        (c.path, "&".join(f"{k}={v}" for k, v in sorted(c.query.items())))
        for c in sandbox.api_requests()[before:]
    )


@per_vendor("mapping,source,code", prunable, ids=lambda m, s, c: f"{m.resource_type}-{s.name}-{c}")
async def test_a_token_search_skips_sources_that_cannot_match(
    warm_fhir: httpx.AsyncClient,
    runtime: Runtime,
    sandbox: Any,
    mapping: CompartmentMapping,
    source: Source,
    code: str,
) -> None:
    """Ask for a code only other sources produce (or, when the others cannot list theirs, a
    code this source does not produce): the plan skips this source, its endpoint is called
    only when a source the plan keeps shares it, and the search makes no call the same
    search without the code would not make."""
    others = {
        value
        for other in mapping.sources
        if other is not source
        for value in other.produces.get(code, frozenset())
    } - set(source.produces[code])
    value = sorted(others)[0] if others else "http://loinc.org|2345-7"
    assert value.rpartition("|")[2] not in source.produces[code]
    patient_id = patient_ids(sandbox)[0]
    query = f"patient={patient_id}&{code}={value}"
    plan = plan_chart(mapping, parse_query([("patient", patient_id), (code, value)]), lenient=False)
    skipped = plan.rules[-1].rpartition("skipped: ")[2].split(", ")
    assert source not in plan.sources and source.name in skipped, plan.rules

    before = len(sandbox.api_requests())
    response = await warm_fhir.get(f"/fhir/{mapping.resource_type}?{query}")
    assert response.status_code == 200
    searched = calls_since(sandbox, before)
    own = source.endpoint
    kept = {s.endpoint for s in plan.sources}
    assert own in kept or own not in {c.endpoint for c in sandbox.api_requests()[before:]}

    runtime.service.client.cache.clear()  # the search without the code, from a cold cache
    await runtime.service.context()
    before = len(sandbox.api_requests())
    await all_pages(warm_fhir, f"/fhir/{mapping.resource_type}?patient={patient_id}")
    unfiltered = calls_since(sandbox, before)
    assert searched <= unfiltered, (searched, unfiltered)


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
    warm_fhir: httpx.AsyncClient, sandbox: Any, search: str, endpoints: set[str]
) -> None:
    """DrChrono only: its endpoints, named. (A CareCloud patient's chart is one /encounters
    listing, so the source-skipping test above already pins its calls.)"""
    resource_type, _, query = search.partition("?")
    patient_id = patient_ids(sandbox)[0]
    before = len(sandbox.api_requests())
    response = await warm_fhir.get(f"/fhir/{resource_type}?patient={patient_id}&{query}")
    assert response.status_code == 200
    assert response.json().get("total", len(response.json().get("entry", []))) != 0
    called = {c.endpoint for c in sandbox.api_requests()[before:]}
    assert called and called <= endpoints, called
