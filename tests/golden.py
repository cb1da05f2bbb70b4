"""The golden-file suite every vendor's transforms run: a vendor record (and the practice
context) in, the exact FHIR resources out, each element's vendor field named in the file.

A golden file (`<golden dir>/<kind>/<case>.json`) holds `resource_type`, `context`, `input`,
`expected` and `provenance`; a compartment type also names its `source`, and `"companions":
true` asks for the source's companion resources instead; `lookups` feed a mapping's `derive`.
Regenerate deliberately with FACADE_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest

from facade.core.compartment import CompartmentMapping
from facade.core.mapping import MappingContext
from facade.core.registry import MappingRegistry
from tests.fhir_models import assert_fhir_resources

UPDATE = os.environ.get("FACADE_UPDATE_GOLDEN") == "1"


def context_from(data: dict[str, Any]) -> MappingContext:
    ctx = data["context"]
    return MappingContext(
        practice_group_id=ctx["practice_group_id"],
        practice_name=ctx["practice_name"],
        timezone=ZoneInfo(ctx["timezone"]),
        custom_field_roles=ctx.get("custom_field_roles", {}),
    )


def as_list(expected: Any) -> list[Any]:
    return expected if isinstance(expected, list) else [expected]


class GoldenSuite:
    """One vendor's golden tests: a vendor's test module subclasses it as `Test...` and says
    where its files are and what differs; every test below then runs once per golden file."""

    registry: ClassVar[MappingRegistry]
    directory: ClassVar[Path]
    #: What provenance may name besides the record's fields (context, derived values, lookups).
    not_record_fields: ClassVar[frozenset[str]]
    #: A plain (non-compartment) mapping's file expects its one resource, not a list.
    single_resource: ClassVar[bool] = False

    @classmethod
    def golden_files(cls) -> list[Path]:
        return sorted(cls.directory.glob("*/*.json"))

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "path" in metafunc.fixturenames:
            metafunc.parametrize(
                "path", self.golden_files(), ids=lambda p: f"{p.parent.name}/{p.stem}"
            )

    def run_case(self, data: dict[str, Any]) -> Any:
        """The transform's output: the resources the record yields (or, for a compartment
        source asked for them, its companions)."""
        mapping = self.registry.get(data["resource_type"])
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
        if self.single_resource:
            return mapping.resource(records[0], ctx)
        return [mapping.resource(record, ctx) for record in records]

    def test_there_are_golden_cases_for_every_mapping(self) -> None:
        covered = {json.loads(p.read_text())["resource_type"] for p in self.golden_files()}
        assert covered == set(self.registry.resource_types)

    def test_transform_matches_golden(self, path: Path) -> None:
        data = json.loads(path.read_text())
        produced = self.run_case(data)
        if UPDATE:
            data["expected"] = produced
            path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        assert produced == data["expected"]

    def test_golden_output_parses_as_fhir_resources(self, path: Path) -> None:
        assert_fhir_resources(as_list(json.loads(path.read_text())["expected"]))

    def test_golden_provenance_names_real_vendor_fields(self, path: Path) -> None:
        data = json.loads(path.read_text())
        assert data["provenance"], "every golden file says where its values come from"
        record_fields = set(data["input"]) | self.not_record_fields
        produced_elements = {key for resource in as_list(data["expected"]) for key in resource}
        documented = {element.split(".")[0].split("[")[0] for element in data["provenance"]}
        assert produced_elements - {"resourceType", "meta"} <= documented | {"extension"}, (
            "an element of the output has no documented source"
        )
        for element, source in data["provenance"].items():
            for field in source.split(" + "):
                assert field.split("[")[0].split(".")[0] in record_fields, (element, field)

    def test_transforms_are_pure(self) -> None:
        for path in self.golden_files():
            data = json.loads(path.read_text())
            snapshot = json.dumps(data["input"], sort_keys=True)
            assert self.run_case(data) == self.run_case(data)
            assert json.dumps(data["input"], sort_keys=True) == snapshot, (
                "a transform changed its input"
            )
