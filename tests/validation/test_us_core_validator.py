"""Everything facade returns for a sandbox-wide search of each served type validates with
zero errors against US Core 6.1.0, judged by the independent validator in ../shared, over
every vendor's sandbox, answered live and from the mirror."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from capability import capability_statement
from facade.vendors import vendor
from tests.chart import PATIENT_COMPARTMENT, every_resource
from tests.conftest import all_pages
from tests.fhir_models import assert_fhir_resources
from tests.vendors import VENDORS, registry


@VENDORS
@pytest.mark.parametrize("mirror_mode", ["live", "mirror"])
async def test_every_served_resource_validates_against_us_core(
    sandbox_fhir: httpx.AsyncClient, shared_dir: Path, tmp_path: Path, vendor_name: str
) -> None:
    files: list[Path] = []
    counts: dict[str, int] = {}
    patients = [r["id"] for r in await all_pages(sandbox_fhir, "/fhir/Patient?_count=250")]
    for resource_type in registry(vendor_name).resource_types:
        resources = await every_resource(sandbox_fhir, resource_type, patients)
        counts[resource_type] = assert_fhir_resources(resources)
        path = tmp_path / f"{resource_type}.ndjson"
        path.write_text("\n".join(json.dumps(r) for r in resources) + "\n")
        files.append(path)
        scope = f"patient={patients[0]}&" if resource_type in PATIENT_COMPARTMENT else ""
        first_page = (
            await sandbox_fhir.get(
                f"/fhir/{resource_type}?{scope}_count=5&_revinclude=Provenance:target"
            )
        ).json()
        assert_fhir_resources([first_page])
        bundle_path = tmp_path / f"{resource_type}-bundle.json"
        bundle_path.write_text(json.dumps(first_page))
        files.append(bundle_path)
    assert all(counts.values()), counts
    metadata = tmp_path / "metadata.json"
    statement = (await sandbox_fhir.get("/fhir/metadata")).json()
    assert_fhir_resources([statement])
    metadata.write_text(json.dumps(statement))
    files.append(metadata)

    validator = shared_dir / "tools" / "validator" / "validate.sh"
    result = subprocess.run(
        ["bash", str(validator), *map(str, files)], capture_output=True, text=True, timeout=600
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " 0 errors" in summary, summary
    assert int(summary.split()[0]) > sum(counts.values()), summary


@VENDORS
def test_capability_statement_is_valid_fhir(
    shared_dir: Path, tmp_path: Path, vendor_name: str
) -> None:
    wire = vendor(vendor_name).wire
    statement = capability_statement(
        registry(vendor_name), wire, "http://facade.test/fhir", "2026-11-21"
    )
    path = tmp_path / "cs.json"
    path.write_text(json.dumps(statement))
    validator = shared_dir / "tools" / "validator" / "validate.sh"
    result = subprocess.run(["bash", str(validator), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
