"""SearchParameter definitions: the published US Core ones carried as data, plus the
resource-wide `_id` and `_lastUpdated` from base FHIR R4.

Local filtering and the CapabilityStatement both read a parameter's type, expression,
comparators and multipleOr from here, so they follow the published definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DEFINITIONS_DIR = Path(__file__).parent / "searchparameters"


@dataclass(frozen=True)
class SearchParamDefinition:
    id: str
    url: str
    code: str
    type: str
    expression: str
    comparators: tuple[str, ...]
    modifiers: tuple[str, ...]
    multiple_or: bool
    #: Resource types a reference parameter may point at (SearchParameter.target).
    targets: tuple[str, ...] = ()


_BASE: dict[str, SearchParamDefinition] = {
    "Resource-id": SearchParamDefinition(
        id="Resource-id",
        url="http://hl7.org/fhir/SearchParameter/Resource-id",
        code="_id",
        type="token",
        expression="Resource.id",
        comparators=(),
        modifiers=(),
        multiple_or=True,
    ),
    "Resource-lastUpdated": SearchParamDefinition(
        id="Resource-lastUpdated",
        url="http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
        code="_lastUpdated",
        type="date",
        expression="Resource.meta.lastUpdated",
        comparators=("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"),
        modifiers=(),
        multiple_or=True,
    ),
}


@cache
def definition(definition_id: str) -> SearchParamDefinition:
    """The definition with this id; KeyError if facade does not carry it."""
    if definition_id in _BASE:
        return _BASE[definition_id]
    path = DEFINITIONS_DIR / f"SearchParameter-{definition_id}.json"
    if not path.exists():
        raise KeyError(f"no SearchParameter definition {definition_id!r} in {DEFINITIONS_DIR}")
    data = json.loads(path.read_text())
    return SearchParamDefinition(
        id=data["id"],
        url=data["url"],
        code=data["code"],
        type=data["type"],
        expression=data["expression"],
        comparators=tuple(data.get("comparator", ())),
        modifiers=tuple(data.get("modifier", ())),
        multiple_or=bool(data.get("multipleOr", False)),
        targets=tuple(data.get("target", ())),
    )
