"""/metadata claims exactly what the declarations serve: a snapshot guards against drift, and
the claim is checked against behaviour (every claimed parameter, include and revinclude is
accepted; nothing else is)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from capability import support_matrix
from capability.statement import export_since_note
from facade.core.compartment import CompartmentMapping
from facade.fhir.definitions import definition
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.vendors import vendor
from mappings.drchrono import REGISTRY
from tests.vendors import VENDORS

SNAPSHOT = Path(__file__).parent / "metadata.snapshot.json"


def scope_for(resource_type: str, dataset: SandboxDataset) -> str:
    """Compartment types are searched within a patient; practice types are not."""
    if isinstance(REGISTRY.get(resource_type), CompartmentMapping):
        return f"patient={dataset.endpoint('patients')[0]['id']}&"
    return ""


def samples(dataset: SandboxDataset) -> dict[str, str]:
    return {
        "string": "a",
        "token": "x",
        "date": "ge2000-01-01",
        "number": "5",
        "reference": f"Patient/{dataset.endpoint('patients')[0]['id']}",
    }


def sample_for(param: dict, values: dict[str, str]) -> str:
    """A value of the claimed parameter's type; a reference names one of its target types,
    the sample Patient where the parameter may point at one."""
    if param["type"] != "reference":
        return values[param["type"]]
    targets = definition(param["definition"].rsplit("/", 1)[1]).targets
    return values["reference"] if "Patient" in targets else f"{targets[0]}/1"


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
    assert served == set(REGISTRY.resource_types) | {"Provenance", "Group", "Binary"}
    operations = {o["name"] for o in statement["rest"][0]["operation"]}
    assert operations == {"export"}


@pytest.mark.parametrize("resource_type", REGISTRY.resource_types)
async def test_claimed_search_parameters_are_exactly_the_accepted_ones(
    fhir: httpx.AsyncClient, dataset: SandboxDataset, resource_type: str
) -> None:
    statement = (await fhir.get("/fhir/metadata")).json()
    entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == resource_type)
    assert REGISTRY.get(resource_type).profile in entry["supportedProfile"]
    claimed = {p["name"]: p for p in entry["searchParam"]}
    scope = scope_for(resource_type, dataset)
    values = samples(dataset)
    for name, param in claimed.items():
        response = await fhir.get(
            f"/fhir/{resource_type}?{scope}{name}={sample_for(param, values)}"
        )
        assert response.status_code == 200, (name, response.text)
        assert param["definition"].startswith("http://hl7.org/fhir/")
    for unclaimed in ("telecom", "address-country", "_sort", "_summary"):
        if unclaimed not in claimed:
            response = await fhir.get(f"/fhir/{resource_type}?{scope}{unclaimed}=x")
            assert response.status_code == 400, unclaimed
    for include in entry.get("searchInclude", []):
        response = await fhir.get(f"/fhir/{resource_type}?{scope}_include={include}")
        assert response.status_code == 200, include
    unknown = await fhir.get(f"/fhir/{resource_type}?{scope}_include={resource_type}:nothing")
    assert unknown.status_code == 400
    assert entry["searchRevInclude"] == ["Provenance:target"]
    revinclude = await fhir.get(f"/fhir/{resource_type}?{scope}_revinclude=Provenance:target")
    assert revinclude.status_code == 200


async def test_claimed_combinations_are_served(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    statement = (await fhir.get("/fhir/metadata")).json()
    values = {**samples(dataset), "token": "female", "date": "ge1900-01-01"}
    for entry in statement["rest"][0]["resource"]:
        if entry["type"] not in REGISTRY.resource_types:
            continue  # Provenance, Group and Binary have their own tests
        claimed = {p["name"]: p for p in entry["searchParam"]}
        for combination in entry.get("extension", []):
            codes = [e["valueString"] for e in combination["extension"] if e["url"] == "required"]
            assert set(codes) <= set(claimed)
            query = "&".join(f"{c}={sample_for(claimed[c], values)}" for c in codes)
            if "patient" not in codes:
                query = scope_for(entry["type"], dataset) + query
            response = await fhir.get(f"/fhir/{entry['type']}?{query}")
            assert response.status_code == 200, (entry["type"], codes, response.text)


def test_support_matrix_lists_every_declared_parameter() -> None:
    matrix = support_matrix(REGISTRY)
    for mapping in REGISTRY:
        for param in mapping.search_params:
            assert f"| {mapping.resource_type} |" in matrix and f"`{param.code}`" in matrix


@VENDORS
async def test_each_vendors_metadata_says_how_its_export_answers_since(
    fhir: httpx.AsyncClient, vendor_name: str
) -> None:
    """The export's `_since` note is the vendor's own: a vendor that cannot list changed
    records (no `since_param` in its wire) has `_since` filtered locally."""
    statement = (await fhir.get("/fhir/metadata")).json()
    [export] = statement["rest"][0]["operation"]
    entry = vendor(vendor_name)
    assert export["documentation"] == export_since_note(entry.registry(), entry.wire)
    local = "facade filters `_since` locally" in export["documentation"]
    assert local == (not entry.wire.since_param)
