"""Answers from the mirror through the FHIR API, for each vendor: the same resources as the
vendor's live answer, with no vendor call; live where the request or the mirror says so."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from facade.core.compartment import CompartmentMapping
from facade.runtime import Runtime
from tests.conftest import all_pages
from tests.mirror.serving import mirror_on
from tests.vendors import VENDORS, patient_ids, vendor_calls

pytestmark = VENDORS

LIVE = {"Cache-Control": "no-cache"}


def _searches(runtime: Runtime, patients: list[str]) -> list[str]:
    urls = []
    for mapping in runtime.service.registry:
        if isinstance(mapping, CompartmentMapping):
            urls += [f"/fhir/{mapping.resource_type}?patient={p}" for p in patients]
        else:
            urls.append(f"/fhir/{mapping.resource_type}")
    return urls


def _by_id(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{r['resourceType']}/{r['id']}": r for r in resources}


async def test_every_search_answers_from_the_mirror_as_the_vendor_does_without_a_call(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    await mirror_on(runtime)
    patients = patient_ids(sandbox)[:3]
    asked = 0
    for url in _searches(runtime, patients):
        before = len(vendor_calls(sandbox))
        first = await fhir.get(url)
        mirrored = _by_id(await all_pages(fhir, url))
        assert len(vendor_calls(sandbox)) == before, (url, vendor_calls(sandbox)[before:])
        assert first.headers["X-Upstream-Calls"] == "0"
        assert "Age" in first.headers, url
        live = _by_id(await all_pages(fhir, url, headers=LIVE))
        asked += len(vendor_calls(sandbox)) - before
        assert mirrored == live, url
    assert asked > 0  # the live answers did ask the vendor
