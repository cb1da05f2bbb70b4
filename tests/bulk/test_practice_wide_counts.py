"""A practice-wide system export holds exactly what per-patient searches return, for every
patient-data type (sources with joins included), and reports no skipped part."""

from __future__ import annotations

from typing import Any

import httpx

from facade.bulk.exports import BulkExports
from facade.core.compartment import CompartmentMapping
from facade.runtime import Runtime
from tests.bulk.conftest import download, export
from tests.chart import every_resource
from tests.vendors import VENDORS, patient_ids

pytestmark = VENDORS


async def test_system_export_equals_the_per_patient_searches(
    fhir: httpx.AsyncClient, exports: BulkExports, runtime: Runtime, sandbox: Any
) -> None:
    manifest = await export(fhir, exports, "$export")
    exported = await download(fhir, manifest)
    errors = []
    for item in manifest.get("error", []):
        errors.append((await fhir.get(item["url"])).text)
    assert not any("export-part-skipped" in e for e in errors), errors
    patients = patient_ids(sandbox)
    for mapping in runtime.service.registry:
        if not isinstance(mapping, CompartmentMapping):
            continue
        searched = await every_resource(fhir, mapping.resource_type, patients)
        got = sorted(r["id"] for r in exported.get(mapping.resource_type, []))
        assert got == sorted(r["id"] for r in searched), mapping.resource_type
