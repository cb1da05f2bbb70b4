"""A practice-wide system export holds exactly what per-patient searches return, for every
patient-data type (sources with joins included), and reports no skipped part."""

from __future__ import annotations

import httpx

from facade.bulk.exports import BulkExports
from facade.core.compartment import CompartmentMapping
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from mappings.drchrono import REGISTRY
from tests.bulk.conftest import download, export
from tests.chart import every_resource


async def test_system_export_equals_the_per_patient_searches(
    fhir: httpx.AsyncClient, exports: BulkExports, dataset: SandboxDataset
) -> None:
    manifest = await export(fhir, exports, "$export")
    exported = await download(fhir, manifest)
    errors = []
    for item in manifest.get("error", []):
        errors.append((await fhir.get(item["url"])).text)
    assert not any("export-part-skipped" in e for e in errors), errors
    patients = [str(p["id"]) for p in dataset.endpoint("patients")]
    for mapping in REGISTRY:
        if not isinstance(mapping, CompartmentMapping):
            continue
        searched = await every_resource(fhir, mapping.resource_type, patients)
        got = sorted(r["id"] for r in exported.get(mapping.resource_type, []))
        assert got == sorted(r["id"] for r in searched), mapping.resource_type
