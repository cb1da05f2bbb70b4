"""Golden tests of the CareCloud transforms: a record as the CareCloud contract shapes it
(and the practice context) in, the exact FHIR resources out. Each golden file says which
CareCloud field each element came from. Regenerate deliberately with FACADE_UPDATE_GOLDEN=1
and review the diff; every expected resource must also pass the US Core validator.

A golden file names its mapping by `resource_type`; a compartment type also names its
`source`, and `"companions": true` asks for the source's companion resources instead (the
payer Organizations a patient's insurances name).
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
from mappings.carecloud import REGISTRY
from tests.fhir_models import assert_fhir_resources

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("FACADE_UPDATE_GOLDEN") == "1"
#: Provenance may also name these: values from the context, derived values and lookups.
NOT_RECORD_FIELDS = {"(context)", "(derived)", "(lookup: locations)"}


def golden_files() -> list[Path]:
    return sorted(GOLDEN_DIR.glob("*/*.json"))


def context_from(data: dict[str, Any]) -> MappingContext:
    ctx = data["context"]
    return MappingContext(
        practice_group_id=ctx["practice_group_id"],
        practice_name=ctx["practice_name"],
        timezone=ZoneInfo(ctx["timezone"]),
    )


def run_case(data: dict[str, Any]) -> Any:
    """The transform's output: one resource, or for a compartment source (a golden file with
    "source") the list of resources the record yields (or its companions)."""
    mapping = REGISTRY.get(data["resource_type"])
    ctx = context_from(data)
    if isinstance(mapping, CompartmentMapping):
        source = mapping.source(data["source"])
        assert source is not None, data["source"]
        if data.get("companions"):
            return source.companion_resources(data["input"], ctx)
        return source.resources(data["input"], ctx)
    records = [data["input"]]
    if mapping.derive is not None:
        records = mapping.derive(records, data.get("lookups", {}), ctx)
    return [mapping.resource(record, ctx) for record in records]


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
def test_golden_output_parses_as_fhir_resources(path: Path) -> None:
    expected = json.loads(path.read_text())["expected"]
    assert expected, "a golden case yields at least one resource"
    assert_fhir_resources(expected)


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_provenance_names_real_vendor_fields(path: Path) -> None:
    data = json.loads(path.read_text())
    assert data["provenance"], "every golden file says where its values come from"
    record_fields = set(data["input"]) | NOT_RECORD_FIELDS
    produced_elements = {key for resource in data["expected"] for key in resource}
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
