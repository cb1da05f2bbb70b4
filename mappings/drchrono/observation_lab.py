"""Laboratory result Observations (us-core-observation-lab) from DrChrono lab results joined
with their lab test and lab order summary (see `labs` for the vendor calls). A helper module
of `observation`: it defines no MAPPING.

code: `observation_code` as LOINC when it looks like one, text `observation_description`;
value: numeric → valueQuantity (UCUM when the unit is a UCUM code), "Positive"/"Negative" →
valueCodeableConcept (SNOMED CT), other text → valueString; `normal_range` "low high" →
referenceRange; `abnormal_status` (v2 table 0078) → interpretation; effective = the test's
specimen collection time; specimen → Specimen `lab-<test id>`; basedOn → ServiceRequest.
"""

from __future__ import annotations

from typing import Any

from facade.core.compartment import fhir_id
from facade.core.mapping import MappingContext, Record, Resource
from mappings.drchrono.fields import concept, instant, text
from mappings.drchrono.labs import is_loinc
from mappings.drchrono.valuemaps import LAB_STATUS
from mappings.valuemaps import (
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
#: us-core-observation-lab is derived from it; US Core asks lab results to claim both.
CLINICAL_RESULT = US_CORE + "us-core-observation-clinical-result"
LABORATORY = {
    "coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "Laboratory"}]
}
#: Qualitative result words → SNOMED CT qualifier values.
QUALITATIVE = {
    "negative": ("260385009", "Negative"),
    "positive": ("10828004", "Positive"),
    "not detected": ("260415000", "Not detected"),
    "detected": ("260373001", "Detected"),
}


def _number(raw: str) -> float | int | None:
    try:
        number = float(raw)
    except ValueError:
        return None
    return int(number) if number.is_integer() and "." not in raw else number


def _value(result: Record) -> tuple[str, Any] | None:
    raw = text(result.get("value"))
    if raw is None:
        return None
    unit = text(result.get("unit"))
    number = _number(raw) if result.get("value_is_numeric") in (True, "True", "true") else None
    if number is not None:
        quantity: dict[str, Any] = {"value": number}
        if unit:
            quantity["unit"] = unit
            if unit in LAB_UCUM_UNITS:
                quantity["system"] = UCUM
                quantity["code"] = unit
        return "valueQuantity", quantity
    coded = QUALITATIVE.get(raw.lower())
    if coded:
        return "valueCodeableConcept", {
            "coding": [{"system": SNOMED, "code": coded[0], "display": coded[1]}],
            "text": raw,
        }
    return "valueString", raw


def _reference_range(result: Record) -> list[dict[str, Any]]:
    raw = text(result.get("normal_range"))
    if raw is None:
        return []
    parts = raw.split()
    unit = text(result.get("unit"))
    if len(parts) == 2 and all(_number(p) is not None for p in parts):
        bounds: dict[str, Any] = {}
        for key, part in zip(("low", "high"), parts, strict=True):
            quantity: dict[str, Any] = {"value": _number(part)}
            if unit:
                quantity["unit"] = unit
                if unit in LAB_UCUM_UNITS:
                    quantity["system"] = UCUM
                    quantity["code"] = unit
            bounds[key] = quantity
        return [bounds]
    return [{"text": raw}]


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    result, test, order = record["result"], record.get("test") or {}, record["order"]
    patient = text(order.get("patient"))
    if patient is None:
        return []
    resource: Resource = {
        "resourceType": "Observation",
        "id": fhir_id(SOURCE_NAME, result["id"]),
        "meta": {"profile": [PROFILE, CLINICAL_RESULT]},
    }
    if text(result.get("lab_test")):
        resource["basedOn"] = [
            {"reference": f"ServiceRequest/{fhir_id(SOURCE_NAME, result['lab_test'])}"}
        ]
    resource["status"] = LAB_STATUS.get(text(result.get("status")))
    resource["category"] = [LABORATORY]
    code = text(result.get("observation_code"))
    description = text(result.get("observation_description"))
    coded = concept(LOINC if code and is_loinc(code) else None, code, description)
    resource["code"] = coded or {"text": code or "Laboratory result"}
    resource["subject"] = {"reference": f"Patient/{patient}"}
    effective = instant(test.get("collection_date"), ctx.timezone) or instant(
        result.get("specimen_received"), ctx.timezone
    )
    if effective:
        resource["effectiveDateTime"] = effective
    issued = instant(result.get("results_released"), ctx.timezone)
    if issued:
        resource["issued"] = issued
    value = _value(result)
    if value is not None:
        resource[value[0]] = value[1]
    else:
        resource["dataAbsentReason"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "unknown",
                    "display": "Unknown",
                }
            ]
        }
    interpretation = LAB_INTERPRETATION.get(text(result.get("abnormal_status")))
    if interpretation is None and result.get("is_abnormal") in (True, "True", "true"):
        interpretation = "A"
    if interpretation:
        resource["interpretation"] = [
            {"coding": [{"system": V3_INTERPRETATION, "code": interpretation}]}
        ]
    comments = text(result.get("comments"))
    if comments:
        resource["note"] = [{"text": comments}]
    if test:
        resource["specimen"] = {"reference": f"Specimen/{fhir_id(SOURCE_NAME, test['id'])}"}
    ranges = _reference_range(result)
    if ranges:
        resource["referenceRange"] = ranges
    return [resource]
