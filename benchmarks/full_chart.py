"""Vendor calls for a full chart load: every US Core 6.1.0 SHALL search, for one patient,
with values taken from that patient's own resources (as certification testing does).

Prints each search's calls on a cold cache (what it costs alone) and the total for the whole
chart in one session (the client's page cache shares vendor pages between searches), next
to the floor: the distinct vendor pages the chart's data occupies. Measured, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from benchmarks.sandwich import sandwich
from facade.core.compartment import CompartmentMapping
from facade.core.registry import MappingRegistry
from facade.fhir.matching import extract
from facade.vendors import DEFAULT_VENDOR, vendor, vendor_names

SPEC = (
    Path(os.environ.get("FACADE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    / "research"
    / "us-core-6.1.0"
    / "uscore_6_1_0.json"
)


#: Per vendor: the fewest calls its API allows for one patient's own data, and why.
CHART_FLOOR = {
    "drchrono": (
        "one listing per clinical endpoint filtered by patient (250 records a page, 50 verbose, "
        "20 for clinical notes), plus the patient record"
    ),
    "carecloud": (
        "2 calls: 1 GET /encounters?patient_id (every encounter with its nested chart, unpaged: "
        "conditions, allergies, medications, immunizations, vitals, labs, procedures, notes) "
        "+ the patient record GET /patients/{guid} (Patient, Coverage, RelatedPerson)"
    ),
}


def _value_for(kind: str, elements: list[Any], comparator: bool) -> str | None:
    for element in elements:
        if kind == "reference" and isinstance(element, dict) and element.get("reference"):
            return str(element["reference"])
        if kind == "token":
            if isinstance(element, str):
                return element
            if isinstance(element, dict) and "value" in element:  # Identifier
                return str(element["value"])
            if isinstance(element, dict):
                codings = element.get("coding") or ([element] if "code" in element else [])
                if codings and codings[0].get("code"):
                    return str(codings[0]["code"])
        if kind == "date":
            if isinstance(element, dict):
                element = element.get("start") or element.get("end")
            if isinstance(element, str):
                if not comparator:
                    return element
                day = date.fromisoformat(element[:10]) - timedelta(days=1)
                return f"gt{day.isoformat()}"
        if kind == "string" and isinstance(element, str):
            return element
        if kind == "string" and isinstance(element, dict):  # HumanName, Address
            for key in ("family", "city", "text"):
                if element.get(key):
                    return str(element[key])
    return None


def shall_searches(
    registry: MappingRegistry,
    patient_id: str,
    resources_by_profile: dict[str, list[dict[str, Any]]],
) -> list[tuple[str, str, str]]:
    """(profile, resource type, query) for every SHALL combination with findable values."""
    spec = json.loads(SPEC.read_text())
    searches: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for profile in spec["profiles"]:
        resources = resources_by_profile.get(profile["profile_url"])
        if not resources:
            continue
        mapping = registry.get(profile["resource"])
        for combination in profile["capability_searches"]:
            if combination["expectation"] != "SHALL":
                continue
            params: list[tuple[str, str]] = []
            for code in combination["params"]:
                if code == "patient":
                    params.append(("patient", patient_id))
                    continue
                declared = mapping.param(code)
                if declared is None:
                    params = []
                    break
                definition = declared.definition
                comparator = bool(
                    profile["search_param_definitions"].get(code, {}).get("shall_comparators")
                )
                value = None
                for resource in resources:
                    value = _value_for(
                        definition.type, extract(resource, definition.expression), comparator
                    )
                    if value:
                        break
                if value is None:
                    params = []
                    break
                params.append((code, value))
            if not params:
                continue
            query = f"{profile['resource']}?{urlencode(params)}"
            if query not in seen:
                seen.add(query)
                searches.append(
                    (profile["profile_url"].rsplit("/", 1)[1], profile["resource"], query)
                )
    return searches


async def chart_by_profile(
    fhir: httpx.AsyncClient, registry: MappingRegistry, patient_id: str
) -> dict[str, list[dict[str, Any]]]:
    """The patient's whole chart (and the practice-wide types), by the profiles it claims:
    where `shall_searches` takes its values from."""
    by_profile: dict[str, list[dict[str, Any]]] = {}
    for mapping in registry:
        if isinstance(mapping, CompartmentMapping):
            query = f"/fhir/{mapping.resource_type}?patient={patient_id}&_count=250"
        elif mapping.resource_type == "Patient":
            query = f"/fhir/Patient?_id={patient_id}"
        else:
            query = f"/fhir/{mapping.resource_type}?_count=250"
        url: str | None = query
        while url:
            bundle = (await fhir.get(url)).json()
            for entry in bundle.get("entry", []):
                for profile in entry["resource"].get("meta", {}).get("profile", []):
                    by_profile.setdefault(profile, []).append(entry["resource"])
            url = next((k["url"] for k in bundle["link"] if k["relation"] == "next"), None)
    return by_profile


async def run(patients: int, patient_index: int, vendor_name: str = DEFAULT_VENDOR) -> None:
    registry = vendor(vendor_name).registry()
    async with sandwich(patients, vendor_name=vendor_name) as sw:
        await sw.runtime.service.context()
        patient_id = sw.patient_ids()[patient_index]
        searches = shall_searches(
            registry, patient_id, await chart_by_profile(sw.fhir, registry, patient_id)
        )
        print(
            f"== full chart: every US Core SHALL search for Patient/{patient_id} "
            f"({patients} {vendor_name} sandbox patients) =="
        )
        print(f"{'profile':42} {'cold calls':>10}  search")
        cold_total = 0
        for profile, _, query in searches:
            sw.runtime.client.cache.clear()
            response = await sw.fhir.get(f"/fhir/{query}")
            calls = int(response.headers.get("x-upstream-calls", "0"))
            cold_total += calls
            print(f"{profile:42} {calls:>10}  {query} -> {response.status_code}")
        sw.runtime.client.cache.clear()
        before = len(sw.state.api_requests())
        for _, _, query in searches:
            await sw.fhir.get(f"/fhir/{query}")
        session = sw.state.api_requests()[before:]
        distinct = {
            (c.path, tuple(sorted((k, v) for k, v in c.query.items() if k != "cursor")))
            for c in session
        }
        print(f"\nsearches: {len(searches)}")
        print(f"vendor calls, each search on a cold cache, summed: {cold_total}")
        print(f"vendor calls, the whole chart in one session (page cache shared): {len(session)}")
        print(f"floor: distinct vendor pages the chart needs: {len(distinct)}")
        by_endpoint: dict[str, int] = {}
        for call in session:
            by_endpoint[call.endpoint or call.path] = (
                by_endpoint.get(call.endpoint or call.path, 0) + 1
            )
        print("calls by endpoint: " + ", ".join(f"{k} {v}" for k, v in sorted(by_endpoint.items())))
        own = [c for c in session if _names_patient(c, patient_id)]
        own_endpoints = sorted({c.endpoint or c.path for c in own})
        print(
            f"calls naming the patient (the chart itself): {len(own)} on "
            f"{', '.join(own_endpoints)}; the other {len(session) - len(own)} are practice "
            "lists, searches that name no patient and reads by id"
        )
        print(f"fewest the API allows for the chart itself: {CHART_FLOOR[vendor_name]}")
        ratio = len(session) / len(distinct) if distinct else 0.0
        print(f"session calls / floor: {ratio:.2f}x")


def _names_patient(call: Any, patient_id: str) -> bool:
    """Whether a logged vendor request selects the patient (in its path or a query value)."""
    return patient_id in call.path.split("/") or patient_id in call.query.values()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--patient-index", type=int, default=0, help="0-2 are showcase patients")
    parser.add_argument("--vendor", choices=vendor_names(), default=DEFAULT_VENDOR)
    args = parser.parse_args(argv)
    asyncio.run(run(args.patients, args.patient_index, args.vendor))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
