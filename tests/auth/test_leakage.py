"""Cross-patient leakage: with one patient's token, every type, search, include,
revinclude and read aimed at another patient's data finds nothing."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from facade.core.compartment import CompartmentMapping
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from mappings.drchrono import REGISTRY
from tests.chart import every_resource, patient_of
from tests.conftest import all_pages
from tests.tokens import token

PATIENT_DATA = ["Patient"] + [
    m.resource_type for m in REGISTRY if isinstance(m, CompartmentMapping)
]


def owner(resource: dict) -> str | None:
    return resource["id"] if resource["resourceType"] == "Patient" else patient_of(resource)


@pytest.mark.parametrize("resource_type", PATIENT_DATA)
async def test_one_patients_token_reaches_nothing_of_another(
    fhir: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset, resource_type: str
) -> None:
    mine, theirs = (str(p["id"]) for p in dataset.endpoint("patients")[:2])
    access = {
        "Authorization": f"Bearer {token(runtime, 'patient/*.rs launch/patient', patient_id=mine)}"
    }
    system = {"Authorization": f"Bearer {token(runtime)}"}
    theirs_all = (
        await every_resource(fhir, resource_type, [theirs])
        if resource_type != "Patient"
        else [(await fhir.get(f"/fhir/Patient/{theirs}", headers=system)).json()]
    )
    mapping = REGISTRY.get(resource_type)
    includes = [i.name for i in mapping.includes]
    scope = f"patient={theirs}" if resource_type != "Patient" else f"_id={theirs}"
    queries = [
        scope,
        f"{scope}&_revinclude=Provenance:target",
        *[f"{scope}&_include={quote(name)}" for name in includes],
    ]
    if theirs_all:
        ids = ",".join(r["id"] for r in theirs_all[:10])
        queries.append(f"_id={ids}")
    for query in queries:
        found = await all_pages(fhir, f"/fhir/{resource_type}?{query}", headers=access)
        assert found == [], (query, [r["id"] for r in found])
    for resource in theirs_all[:10]:
        read = await fhir.get(f"/fhir/{resource_type}/{resource['id']}", headers=access)
        assert read.status_code == 404, resource["id"]
        provenance = await fhir.get(
            f"/fhir/Provenance/{resource_type}-{resource['id']}", headers=access
        )
        assert provenance.status_code == 404
    if resource_type != "Patient":
        own = await all_pages(
            fhir, f"/fhir/{resource_type}?_revinclude=Provenance:target", headers=access
        )
        for resource in own:
            if resource["resourceType"] == resource_type:
                assert owner(resource) == mine, resource["id"]
