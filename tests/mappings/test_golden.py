"""Golden tests of the DrChrono transforms: a vendor record (and the practice context) in,
the exact FHIR resource out. Each golden file says which vendor field each element came
from. Regenerate deliberately with FACADE_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from facade.core.compartment import CompartmentMapping
from facade.core.mapping import MappingContext
from mappings.drchrono import REGISTRY

GOLDEN_DIR = Path(__file__).parent / "golden" / "drchrono"
UPDATE = os.environ.get("FACADE_UPDATE_GOLDEN") == "1"


def golden_files() -> list[Path]:
    return sorted(GOLDEN_DIR.glob("*/*.json"))


def context_from(data: dict[str, Any]) -> MappingContext:
    ctx = data["context"]
    return MappingContext(
        practice_group_id=ctx["practice_group_id"],
        practice_name=ctx["practice_name"],
        timezone=ZoneInfo(ctx["timezone"]),
        custom_field_roles=ctx.get("custom_field_roles", {}),
    )


def run_case(data: dict[str, Any]) -> Any:
    """The transform's output: one resource, or for a compartment source (a golden file with
    "source") the list of resources the record yields."""
    mapping = REGISTRY.get(data["resource_type"])
    if isinstance(mapping, CompartmentMapping):
        source = mapping.source(data["source"])
        assert source is not None, data["source"]
        return source.resources(data["input"], context_from(data))
    records = [data["input"]]
    if mapping.derive is not None:
        records = mapping.derive(records, data.get("lookups", {}), context_from(data))
    return mapping.resource(records[0], context_from(data))


def test_there_are_golden_cases_for_every_mapping() -> None:
    covered = {json.loads(p.read_text())["resource_type"] for p in golden_files()}
    assert covered == set(REGISTRY.resource_types)


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_transform_matches_golden(path: Path) -> None:
    data = json.loads(path.read_text())
    produced = run_case(data)
    if UPDATE:
        data["expected"] = produced
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    assert produced == data["expected"]


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_provenance_names_real_vendor_fields(path: Path) -> None:
    data = json.loads(path.read_text())
    assert data["provenance"], "every golden file says where its values come from"
    record_fields = set(data["input"]) | {"(context)", "(derived)", "(lookup: offices)"}
    outputs = data["expected"] if isinstance(data["expected"], list) else [data["expected"]]
    produced_elements = {key for resource in outputs for key in resource}
    documented = {element.split(".")[0].split("[")[0] for element in data["provenance"]}
    assert produced_elements - {"resourceType", "meta"} <= documented | {"extension"}, (
        "an element of the output has no documented source"
    )
    for element, source in data["provenance"].items():
        for field in source.split(" + "):
            assert field.split("[")[0].split(".")[0] in record_fields, (element, field)


def test_transforms_are_pure() -> None:
    for path in golden_files():
        data = json.loads(path.read_text())
        snapshot = json.dumps(data["input"], sort_keys=True)
        assert run_case(data) == run_case(data)
        assert json.dumps(data["input"], sort_keys=True) == snapshot, (
            "a transform changed its input"
        )
