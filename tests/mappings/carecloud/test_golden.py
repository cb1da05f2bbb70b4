"""Golden tests of the CareCloud transforms: a record as the CareCloud contract shapes it
(and the practice context) in, the exact FHIR resources out. Each golden file says which
CareCloud field each element came from. Regenerate deliberately with FACADE_UPDATE_GOLDEN=1
and review the diff; every expected resource must also pass the US Core validator.

Every file expects a list of resources; `"companions": true` asks a compartment source for
its companion resources instead (the payer Organizations a patient's insurances name). The
suite itself is tests/golden.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from mappings.carecloud import REGISTRY
from tests.golden import GoldenSuite


class TestCareCloudGoldens(GoldenSuite):
    registry = REGISTRY
    directory = Path(__file__).parent / "golden"
    not_record_fields = frozenset({"(context)", "(derived)", "(lookup: locations)"})

    def test_every_case_yields_a_resource(self, path: Path) -> None:
        assert json.loads(path.read_text())["expected"], "a golden case yields at least one"
