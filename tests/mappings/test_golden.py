"""Golden tests of the DrChrono transforms: a vendor record (and the practice context) in,
the exact FHIR resource out. Each golden file says which vendor field each element came
from. Regenerate deliberately with FACADE_UPDATE_GOLDEN=1 and review the diff.

A plain mapping's file expects the one resource; a compartment source's, the list of
resources the record yields. The suite itself is tests/golden.py.
"""

from __future__ import annotations

from pathlib import Path

from mappings.drchrono import REGISTRY
from tests.golden import GoldenSuite


class TestDrChronoGoldens(GoldenSuite):
    registry = REGISTRY
    directory = Path(__file__).parent / "golden" / "drchrono"
    not_record_fields = frozenset({"(context)", "(derived)", "(lookup: offices)"})
    single_resource = True
