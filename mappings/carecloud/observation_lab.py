"""Laboratory result Observations (us-core-observation-lab, also claiming its parent
us-core-observation-clinical-result) from one CareCloud encounter's `lab_results`, and the
grouping DiagnosticReport uses. A helper module of `observation`: it defines no MAPPING.

code: `loinc_code` (LOINC) with `name`; value: `value_type` numeric → valueQuantity (UCUM
when the unit is a UCUM code), text "Positive"/"Negative"/... → valueCodeableConcept (SNOMED
CT qualifier), other text → valueString; `reference_range` "3.5-5.0" → low/high ("<200" →
high, ">40" → low, anything else text); `abnormal_flag` H/L/N/A → interpretation (v2 table
0078 = v3 codes); effective = `collected_at`, issued = `resulted_at`.

Must-support elements CareCloud has no field for: `specimen` (no specimen is recorded
beyond the collection time, so there is no Specimen to reference).
"""

from __future__ import annotations

import re
from typing import Any

from facade.core.mapping import MappingContext, Record, Resource
from mappings.carecloud.chart import (
    each_item,
    encounter_reference,
    item_id,
    items,
    number,
    patient_reference,
    profiled,
)
from mappings.carecloud.fields import instant, text
from mappings.valuemaps import (
    DATA_ABSENT_REASON_CODES,
    LAB_INTERPRETATION,
    LAB_UCUM_UNITS,
    LOINC,
    OBSERVATION_CATEGORY,
    SNOMED,
    UCUM,
    US_CORE,
    V3_INTERPRETATION,
)

SOURCE_NAME = "lab"
PROFILE = US_CORE + "us-core-observation-lab"
CLINICAL_RESULT = US_CORE + "us-core-observation-clinical-result"
LABORATORY = {
    "coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "Laboratory"}]
}
#: CareCloud lab status → observation-status (and diagnostic-report-status: same codes).
STATUS = {"final": "final", "preliminary": "preliminary", "corrected": "corrected"}
#: Qualitative result words → SNOMED CT qualifier values.
QUALITATIVE = {
    "negative": ("260385009", "Negative"),
    "positive": ("10828004", "Positive"),
    "not detected": ("260415000", "Not detected"),
    "detected": ("260373001", "Detected"),
}
_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$")
_BOUND = re.compile(r"^\s*([<>])=?\s*(\d+(?:\.\d+)?)\s*$")


def _quantity(value: float | int, unit: str | None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if unit:
        quantity["unit"] = unit
        if unit in LAB_UCUM_UNITS:
            quantity["system"] = UCUM
            quantity["code"] = unit
    return quantity


def _value(result: Record) -> tuple[str, Any] | None:
    raw = text(result.get("value"))
    if raw is None:
        return None
    unit = text(result.get("unit"))
    amount = number(raw) if text(result.get("value_type")) == "numeric" else None
    if amount is not None:
        return "valueQuantity", _quantity(amount, unit)
    coded = QUALITATIVE.get(raw.lower())
    if coded:
        return "valueCodeableConcept", {
            "coding": [{"system": SNOMED, "code": coded[0], "display": coded[1]}],
            "text": raw,
        }
    return "valueString", raw


def reference_range(result: Record) -> list[dict[str, Any]]:
    raw = text(result.get("reference_range"))
    if raw is None:
        return []
    unit = text(result.get("unit"))
    both = _RANGE.match(raw)
    if both:
        low, high = number(both.group(1)), number(both.group(2))
        assert low is not None and high is not None
        return [{"low": _quantity(low, unit), "high": _quantity(high, unit)}]
    bound = _BOUND.match(raw)
    if bound:
        limit = number(bound.group(2))
        assert limit is not None
        return [{"high" if bound.group(1) == "<" else "low": _quantity(limit, unit)}]
    return [{"text": raw}]


def result_code(result: Record) -> dict[str, Any]:
    code, name = text(result.get("loinc_code")), text(result.get("name"))
    concept: dict[str, Any] = {}
    if code:
        coding = {"system": LOINC, "code": code}
        if name:
            coding["display"] = name
        concept["coding"] = [coding]
    if name:
        concept["text"] = name
    return concept or {"text": "Laboratory result"}


def _result(result: Record, encounter: Record, ctx: MappingContext) -> Resource:
    resource = profiled(
        "Observation", item_id(SOURCE_NAME, encounter, result["id"]), PROFILE, CLINICAL_RESULT
    )
    resource["status"] = STATUS.get(text(result.get("status")) or "", "unknown")
    resource["category"] = [LABORATORY]
    resource["code"] = result_code(result)
    resource["subject"] = patient_reference(encounter)
    resource["encounter"] = encounter_reference(encounter)
    effective = instant(result.get("collected_at"), ctx.timezone)
    if effective:
        resource["effectiveDateTime"] = effective
    issued = instant(result.get("resulted_at"), ctx.timezone)
    if issued:
        resource["issued"] = issued
    value = _value(result)
    if value is not None:
        resource[value[0]] = value[1]
    else:
        resource["dataAbsentReason"] = {
            "coding": [
                {"system": DATA_ABSENT_REASON_CODES, "code": "unknown", "display": "Unknown"}
            ]
        }
    interpretation = LAB_INTERPRETATION.get(text(result.get("abnormal_flag")))
    if interpretation:
        resource["interpretation"] = [
            {"coding": [{"system": V3_INTERPRETATION, "code": interpretation}]}
        ]
    ranges = reference_range(result)
    if ranges:
        resource["referenceRange"] = ranges
    return resource


transform = each_item("lab_results", _result)


def panels(encounter: Record) -> dict[str, list[Record]]:
    """The encounter's lab results by panel LOINC (a result with no panel is its own)."""
    grouped: dict[str, list[Record]] = {}
    for result in items(encounter, "lab_results"):
        key = text(result.get("panel_loinc")) or text(result.get("loinc_code"))
        if key:
            grouped.setdefault(key, []).append(result)
    return grouped
