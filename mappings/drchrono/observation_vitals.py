"""Vital signs and smoking status from one DrChrono appointment's verbose `vitals` object
(shared/research/upstreams.md §5.9). A helper module of `observation`: it defines no MAPPING.

Each filled vitals key becomes one US Core vital-sign Observation, id
`vitals-<appointment>-<LOINC>`; `smoking_status` becomes a us-core-smokingstatus Observation.
The 85353-1 panel is not emitted (the individual vitals carry everything); `pain` (72514-3)
has no US Core profile and is left out.
"""

from __future__ import annotations

from typing import Any

from facade.core.compartment import fhir_id
from facade.core.mapping import MappingContext, Record, Resource
from mappings.drchrono.fields import instant, text
from mappings.drchrono.valuemaps import VITAL_UNITS
from mappings.valuemaps import (
    DATA_ABSENT_REASON_CODES,
    LOINC,
    OBSERVATION_CATEGORY,
    SMOKING_STATUS,
    SNOMED,
    UCUM,
    US_CORE,
)

SOURCE_NAME = "vitals"

VITAL_SIGNS = {
    "coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]
}
SOCIAL_HISTORY = {
    "coding": [
        {"system": OBSERVATION_CATEGORY, "code": "social-history", "display": "Social History"}
    ]
}

#: vitals key → (LOINC, display, profile, fixed UCUM unit or None when a *_units key says).
SIMPLE_VITALS: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("height", "8302-2", "Body height", "us-core-body-height", None),
    ("weight", "29463-7", "Body weight", "us-core-body-weight", None),
    ("bmi", "39156-5", "Body mass index (BMI) [Ratio]", "us-core-bmi", "kg/m2"),
    ("temperature", "8310-5", "Body temperature", "us-core-body-temperature", None),
    ("pulse", "8867-4", "Heart rate", "us-core-heart-rate", "/min"),
    ("respiratory_rate", "9279-1", "Respiratory rate", "us-core-respiratory-rate", "/min"),
    (
        "head_circumference",
        "9843-4",
        "Head Occipital-frontal circumference",
        "us-core-head-circumference",
        None,
    ),
    (
        "bmi_percentile",
        "59576-9",
        "Body mass index (BMI) [Percentile] Per age and sex",
        "pediatric-bmi-for-age",
        "%",
    ),
    (
        "weight_for_length_percentile",
        "77606-2",
        "Weight-for-length Per age and sex",
        "pediatric-weight-for-height",
        "%",
    ),
    (
        "head_occipital_frontal_circumference_percentile",
        "8289-1",
        "Head Occipital-frontal circumference Percentile",
        "head-occipital-frontal-circumference-percentile",
        "%",
    ),
)
BLOOD_PRESSURE = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
PULSE_OX = ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
O2_SAT = ("2708-6", "Oxygen saturation in Arterial blood")
FLOW_RATE = ("3151-8", "Inhaled oxygen flow rate")
CONCENTRATION = ("3150-0", "Inhaled oxygen concentration")
SMOKING = ("72166-2", "Tobacco smoking status")

#: Every profile this module emits.
PROFILES: tuple[str, ...] = tuple(
    US_CORE + name
    for name in (
        "us-core-blood-pressure",
        *(row[3] for row in SIMPLE_VITALS),
        "us-core-pulse-oximetry",
        "us-core-smokingstatus",
    )
)
#: Every Observation.code this module can emit (for source pruning).
CODES = frozenset(
    {row[1] for row in SIMPLE_VITALS} | {BLOOD_PRESSURE[0], PULSE_OX[0], O2_SAT[0], SMOKING[0]}
)
CATEGORIES = frozenset({"vital-signs", "social-history"})

#: A UCUM code's human-readable unit where it differs from the code.
_UNIT_TEXT = {"/min": "/min", "kg/m2": "kg/m2", "%": "%", "L/min": "L/min", "mm[Hg]": "mmHg"}


def _number(value: Any) -> float | int | None:
    raw = text(value)
    if raw is None:
        return None
    try:
        number = float(raw)
    except ValueError:
        return None
    return int(number) if number.is_integer() and "." not in raw else number


def _quantity(value: float | int, ucum: str, unit: str | None = None) -> dict[str, Any]:
    return {
        "value": value,
        "unit": unit or _UNIT_TEXT.get(ucum, ucum),
        "system": UCUM,
        "code": ucum,
    }


def _code(loinc: tuple[str, str], *more: tuple[str, str]) -> dict[str, Any]:
    codings = [{"system": LOINC, "code": c, "display": d} for c, d in (loinc, *more)]
    return {"coding": codings, "text": loinc[1]}


def _base(
    record: Record, part: str, profile: str, category: dict[str, Any], ctx: MappingContext
) -> Resource:
    resource: Resource = {
        "resourceType": "Observation",
        "id": fhir_id(SOURCE_NAME, record["id"], part),
        "meta": {"profile": [US_CORE + profile]},
        "status": "final",
        "category": [category],
    }
    return resource


def _finish(resource: Resource, record: Record, effective: str) -> Resource:
    resource["subject"] = {"reference": f"Patient/{record['patient']}"}
    resource["effectiveDateTime"] = effective
    return resource


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    vitals = record.get("vitals")
    effective = instant(record.get("scheduled_time"), ctx.timezone)
    if not isinstance(vitals, dict) or effective is None or text(record.get("patient")) is None:
        return []
    found: list[Resource] = []

    systolic = _number(vitals.get("blood_pressure_1"))
    diastolic = _number(vitals.get("blood_pressure_2"))
    if systolic is not None or diastolic is not None:
        resource = _base(record, BLOOD_PRESSURE[0], "us-core-blood-pressure", VITAL_SIGNS, ctx)
        resource["code"] = _code(BLOOD_PRESSURE)
        _finish(resource, record, effective)
        resource["component"] = [
            _bp_component(SYSTOLIC, systolic),
            _bp_component(DIASTOLIC, diastolic),
        ]
        found.append(resource)

    for key, loinc, display, profile, fixed_unit in SIMPLE_VITALS:
        value = _number(vitals.get(key))
        if value is None:
            continue
        if fixed_unit is not None:
            ucum, unit = fixed_unit, None
        else:
            units = VITAL_UNITS.get(text(vitals.get(f"{key}_units")))
            if units is None:
                continue
            ucum, unit = units
        resource = _base(record, loinc, profile, VITAL_SIGNS, ctx)
        resource["code"] = _code((loinc, display))
        _finish(resource, record, effective)
        resource["valueQuantity"] = _quantity(value, ucum, unit)
        found.append(resource)

    saturation = _number(vitals.get("oxygen_saturation"))
    if saturation is not None:
        resource = _base(record, PULSE_OX[0], "us-core-pulse-oximetry", VITAL_SIGNS, ctx)
        resource["code"] = _code(PULSE_OX, O2_SAT)
        _finish(resource, record, effective)
        resource["valueQuantity"] = _quantity(saturation, "%")
        components = []
        flow = _number(vitals.get("inhaled_oxygen_flow_rate"))
        if flow is not None:
            components.append({"code": _code(FLOW_RATE), "valueQuantity": _quantity(flow, "L/min")})
        concentration = _number(vitals.get("oxygen_concentration"))
        if concentration is not None:
            components.append(
                {"code": _code(CONCENTRATION), "valueQuantity": _quantity(concentration, "%")}
            )
        if components:
            resource["component"] = components
        found.append(resource)

    smoking = text(vitals.get("smoking_status"))
    display = SMOKING_STATUS.get(smoking)
    if smoking and display:
        resource = _base(record, SMOKING[0], "us-core-smokingstatus", SOCIAL_HISTORY, ctx)
        resource["code"] = _code(SMOKING)
        _finish(resource, record, effective)
        resource["valueCodeableConcept"] = {
            "coding": [{"system": SNOMED, "code": smoking, "display": display}],
            "text": display,
        }
        found.append(resource)
    return found


def _bp_component(code: tuple[str, str], value: float | int | None) -> dict[str, Any]:
    component: dict[str, Any] = {"code": _code(code)}
    if value is None:
        component["dataAbsentReason"] = {
            "coding": [
                {"system": DATA_ABSENT_REASON_CODES, "code": "unknown", "display": "Unknown"}
            ]
        }
    else:
        component["valueQuantity"] = _quantity(value, "mm[Hg]")
    return component
