"""A full system export of each vendor's sandbox (DrChrono's with 20 patients) validates
against US Core 6.1.0 with the independent validator (shared/tools/validator), 0 errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.generator import generate
from tests.bulk.conftest import export
from tests.vendors import VENDORS

pytestmark = VENDORS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dataset() -> SandboxDataset:
    return generate(patients=20, seed=3)


async def test_full_system_export_validates_with_zero_errors(fhir, exports, tmp_path):
    shared = Path(os.environ.get("FACADE_SHARED_DIR", REPO.parent / "shared"))
    validator = shared / "tools" / "validator" / "validate.sh"
    assert validator.exists(), f"validator missing at {validator}"
    manifest = await export(fhir, exports, "$export")
    assert not manifest.get("error"), "every part of the export was read"
    paths = []
    for index, item in enumerate(manifest["output"]):
        body = (await fhir.get(item["url"])).content
        path = tmp_path / f"{index:03d}-{item['type']}.ndjson"
        path.write_bytes(body)
        paths.append(str(path))
    result = subprocess.run(
        [str(validator), "--default-profiles", *paths], capture_output=True, text=True, timeout=600
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " 0 errors" in summary, summary
