"""What US Core 6.1.0 asks a server to search, per resource type, read once from its server
CapabilityStatement (carried unedited in capabilitystatements/): the search parameters with
their expectation, and the required combinations. Vendor mappings declare only how they serve
each parameter; the CapabilityStatement and the tests take the lists from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SERVER = Path(__file__).parent / "capabilitystatements" / "CapabilityStatement-us-core-server.json"
EXPECTATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation"
COMBINATION = (
    "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"
)

#: (parameter codes, expectation), e.g. (("patient", "category"), "SHALL").
Combination = tuple[tuple[str, ...], str]


@dataclass(frozen=True)
class UsCoreSearch:
    #: (code, expectation, definition URL) of each search parameter US Core lists.
    params: tuple[tuple[str, str, str], ...] = ()
    combinations: tuple[Combination, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(code for code, _, _ in self.params)

    def expectation(self, code: str) -> str | None:
        """SHALL, SHOULD or MAY for a parameter US Core lists; None for others."""
        return next((e for c, e, _ in self.params if c == code), None)


def _expectation(element: dict[str, object]) -> str:
    for extension in element.get("extension", ()):  # type: ignore[attr-defined]
        if extension.get("url") == EXPECTATION:
            return str(extension["valueCode"])
    return "MAY"


@cache
def _all() -> dict[str, UsCoreSearch]:
    statement = json.loads(SERVER.read_text(encoding="utf-8"))
    found: dict[str, UsCoreSearch] = {}
    for resource in statement["rest"][0]["resource"]:
        params = tuple(
            (p["name"], _expectation(p), p["definition"]) for p in resource.get("searchParam", ())
        )
        combinations = tuple(
            (
                tuple(x["valueString"] for x in e["extension"] if x["url"] == "required"),
                _expectation(e),
            )
            for e in resource.get("extension", ())
            if e["url"] == COMBINATION
        )
        found[resource["type"]] = UsCoreSearch(params, combinations)
    return found


def us_core_search(resource_type: str) -> UsCoreSearch:
    """US Core's search parameters and combinations for `resource_type` (none if it lists
    none, e.g. Group or Provenance)."""
    return _all().get(resource_type, UsCoreSearch())
