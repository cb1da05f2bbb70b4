"""/metadata claims exactly what the declarations serve: a snapshot guards against drift, and
the claim is checked against behaviour (every claimed parameter is accepted, nothing else is)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from capability import support_matrix
from mappings.drchrono import REGISTRY

SNAPSHOT = Path(__file__).parent / "metadata.snapshot.json"


async def test_metadata_matches_the_snapshot(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    statement["date"] = "(start time)"
    if os.environ.get("FACADE_UPDATE_GOLDEN") == "1":
        SNAPSHOT.write_text(json.dumps(statement, indent=2) + "\n")
    assert statement == json.loads(SNAPSHOT.read_text())


async def test_metadata_needs_no_vendor_call_and_states_us_core(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get("/fhir/metadata")
    statement = response.json()
    assert response.headers["x-upstream-calls"] == "0"
    assert statement["fhirVersion"] == "4.0.1"
    assert (
        "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server|6.1.0"
        in statement["instantiates"]
    )
    assert {"json", "application/fhir+json"} <= set(statement["format"])
    served = {r["type"] for r in statement["rest"][0]["resource"]}
    assert served == set(REGISTRY.resource_types)


@pytest.mark.parametrize("resource_type", REGISTRY.resource_types)
async def test_claimed_search_parameters_are_exactly_the_accepted_ones(
    fhir: httpx.AsyncClient, resource_type: str
) -> None:
    statement = (await fhir.get("/fhir/metadata")).json()
    entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == resource_type)
    assert entry["supportedProfile"] == [REGISTRY.get(resource_type).profile]
    claimed = {p["name"]: p for p in entry["searchParam"]}
    samples = {"string": "a", "token": "x", "date": "ge2000-01-01", "number": "5"}
    for name, param in claimed.items():
        response = await fhir.get(f"/fhir/{resource_type}?{name}={samples[param['type']]}")
        assert response.status_code == 200, (name, response.text)
        assert param["definition"].startswith("http://hl7.org/fhir/")
    for unclaimed in ("telecom", "address-country", "_sort", "_summary", "_include"):
        if unclaimed not in claimed:
            response = await fhir.get(f"/fhir/{resource_type}?{unclaimed}=x")
            assert response.status_code == 400, unclaimed


async def test_claimed_combinations_are_served(fhir: httpx.AsyncClient) -> None:
    statement = (await fhir.get("/fhir/metadata")).json()
    for entry in statement["rest"][0]["resource"]:
        for combination in entry.get("extension", []):
            codes = [e["valueString"] for e in combination["extension"] if e["url"] == "required"]
            claimed = {p["name"]: p["type"] for p in entry["searchParam"]}
            assert set(codes) <= set(claimed)
            samples = {"string": "a", "token": "female", "date": "ge1900-01-01"}
            query = "&".join(f"{c}={samples[claimed[c]]}" for c in codes)
            assert (await fhir.get(f"/fhir/{entry['type']}?{query}")).status_code == 200


def test_support_matrix_lists_every_declared_parameter() -> None:
    matrix = support_matrix(REGISTRY)
    for mapping in REGISTRY:
        for param in mapping.search_params:
            assert f"| {mapping.resource_type} |" in matrix and f"`{param.code}`" in matrix
