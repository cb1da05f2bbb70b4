"""Paging, for every vendor: following next links returns every match exactly once, in the
same order at any page size, whether the vendor moves by cursor or by page number, and a
search chain never asks the vendor for the same page twice.

The sandboxes here hold more patients than one vendor page (CareCloud lists 50 a page), so
FHIR pages cross vendor pages.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import httpx
import pytest

from facade.clock import FakeClock
from facade.core.compartment import CompartmentMapping
from tests.conftest import all_pages
from tests.vendors import (
    VENDORS,
    generated,
    patient_ids,
    registry,
    sandbox_state,
    vendor_calls,
)

pytestmark = VENDORS

#: More than two vendor pages of patients for every vendor.
PATIENTS = 120


@pytest.fixture
def sandbox(vendor_name: str, clock: FakeClock) -> Any:
    return sandbox_state(vendor_name, generated(vendor_name, patients=PATIENTS), clock)


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def name_parts(patient: dict[str, Any]) -> list[str]:
    """Every string of every HumanName, as the `name` search parameter matches them."""
    parts: list[str] = []
    for name in patient.get("name", []):
        parts += [name.get("family", ""), name.get("text", "")]
        for key in ("given", "prefix", "suffix"):
            parts += name.get(key, [])
    return [p for p in parts if p]


def ids_of(resources: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in resources]


async def test_paging_is_complete_without_duplicates_at_every_page_size(
    fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    everyone = patient_ids(sandbox)
    assert len(everyone) == PATIENTS
    for count in (1, 7, 49, 50, 51, PATIENTS, 250):
        found = ids_of(await all_pages(fhir, f"/fhir/Patient?_count={count}"))
        assert found == everyone, count


async def test_a_patients_chart_pages_completely_in_one_order(
    fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    patient = patient_ids(sandbox)[0]
    whole = ids_of(await all_pages(fhir, f"/fhir/Observation?patient={patient}&_count=250"))
    assert len(whole) > 10, "the patient has observations to page through"
    assert len(whole) == len(set(whole))
    for count in (1, 3, 10, len(whole) - 1):
        paged = await all_pages(fhir, f"/fhir/Observation?patient={patient}&_count={count}")
        assert ids_of(paged) == whole, count


async def test_every_practice_type_pages_completely_in_one_order(
    fhir: httpx.AsyncClient, vendor_name: str
) -> None:
    for mapping in registry(vendor_name):
        if isinstance(mapping, CompartmentMapping) or mapping.resource_type == "Patient":
            continue
        path = f"/fhir/{mapping.resource_type}"
        whole = ids_of(await all_pages(fhir, f"{path}?_count=250"))
        assert whole, f"{mapping.resource_type}: nothing to page through"
        assert len(whole) == len(set(whole)), mapping.resource_type
        assert ids_of(await all_pages(fhir, f"{path}?_count=1")) == whole, mapping.resource_type


async def test_filtered_paging_never_refetches_a_vendor_page(
    warm_fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    fhir = warm_fhir
    before = len(vendor_calls(sandbox))
    found = await all_pages(fhir, "/fhir/Patient?name=a&_count=1")
    calls = vendor_calls(sandbox)[before:]
    urls = [(c.path, tuple(sorted(c.query.items()))) for c in calls]
    assert len(urls) > 1, "the search crossed vendor pages"
    assert len(urls) == len(set(urls)), "a vendor page was fetched twice in one search chain"
    everyone = await all_pages(fhir, "/fhir/Patient?_count=250")
    want = [p for p in everyone if any(fold(x).startswith("a") for x in name_parts(p))]
    assert want, "some patient has a name starting with a"
    assert ids_of(found) == ids_of(want)
