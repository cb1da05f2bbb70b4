"""Vital signs and smoking status from one CareCloud encounter's `vitals` and
`smoking_status` (shared/research/upstreams.md §5.9). A helper module of `observation`: it
defines no MAPPING.

CareCloud writes one row per measurement, LOINC-coded with a UCUM unit. The curated table
`loinc_vitals` names each code's US Core profile and the UCUM units the profile accepts:

* systolic 8480-6 + diastolic 8462-4 rows taken at the same moment → one us-core-blood-
  pressure panel 85354-9 with both components (id from the systolic row; a missing half is
  a component with a data-absent reason);
* 59408-5 / 2708-6 (oxygen saturation) → us-core-pulse-oximetry with both codes, with
  inhaled O2 flow rate 3151-8 and concentration 3150-0 rows of the same moment as components;
* every other row whose code has a profile → that profile (height, weight, BMI, temperature,
  heart and respiratory rate, head circumference, the pediatric percentiles).

Rows left out: codes with no US Core profile (pain 72514-3), and units the profile does not
allow (a validator would reject them; facade converts no units). `smoking_status` → one
us-core-smokingstatus Observation (`smoking-<encounter key>`), performer = the encounter's
provider.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from facade.core.mapping import MappingContext, Record, Resource
from facade.sandbox.codes import load_table
from mappings.carecloud.chart import (
    encounter_reference,
    item_id,
    items,
    mapped,
    number,
    patient_reference,
    practitioner_reference,
    profiled,
)
from mappings.carecloud.fields import instant, text
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
SMOKING_SOURCE = "smoking"
VITALS_TABLE = "loinc_vitals"

VITAL_SIGNS = {
    "coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]
}
SOCIAL_HISTORY = {
    "coding": [
        {"system": OBSERVATION_CATEGORY, "code": "social-history", "display": "Social History"}
    ]
}
BLOOD_PRESSURE = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
PULSE_OX = ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
O2_SAT = ("2708-6", "Oxygen saturation in Arterial blood")
FLOW_RATE = ("3151-8", "Inhaled oxygen flow rate")
CONCENTRATION = ("3150-0", "Inhaled oxygen concentration")
SMOKING = ("72166-2", "Tobacco smoking status")

_PANEL_PARTS = frozenset({SYSTOLIC[0], DIASTOLIC[0], PULSE_OX[0], O2_SAT[0]})
_COMPONENTS = frozenset({FLOW_RATE[0], CONCENTRATION[0]})
#: A UCUM code's human-readable unit where it differs from the code.
_UNIT_TEXT = {
    "[in_i]": "in",
    "[lb_av]": "lb",
    "[oz_av]": "oz",
    "[degF]": "degF",
    "mm[Hg]": "mmHg",
}


@cache
def vital_rows() -> dict[str, tuple[str, str, frozenset[str]]]:
    """LOINC → (display, US Core profile name, allowed UCUM units), for codes with a profile."""
    found: dict[str, tuple[str, str, frozenset[str]]] = {}
    for row in load_table(VITALS_TABLE).rows:
        profile = str(row.get("us_core_profile") or "")
        if profile:
            units = frozenset(u for u in str(row.get("ucum") or "").split("|") if u)
            found[str(row["code"])] = (str(row["display"]), profile, units)
    return found


def _profiles() -> tuple[str, ...]:
    names = dict.fromkeys(p for _, p, _ in vital_rows().values() if p != "us-core-smokingstatus")
    return tuple(US_CORE + name for name in names)


#: Every vital-sign profile this module emits, and the smoking status profile.
PROFILES: tuple[str, ...] = _profiles()
SMOKING_PROFILE = US_CORE + "us-core-smokingstatus"
#: Every Observation.code the vitals source can emit (for source pruning).
CODES = frozenset(c for c, (_, p, _) in vital_rows().items() if p != "us-core-smokingstatus") | {
    BLOOD_PRESSURE[0]
}


def _quantity(value: float | int, ucum: str) -> dict[str, Any]:
    return {"value": value, "unit": _UNIT_TEXT.get(ucum, ucum), "system": UCUM, "code": ucum}


def _code(first: tuple[str, str], *more: tuple[str, str]) -> dict[str, Any]:
    codings = [{"system": LOINC, "code": c, "display": d} for c, d in (first, *more)]
    return {"coding": codings, "text": first[1]}


def _observation(encounter: Record, row: Record, profile: str) -> Resource:
    resource_id = item_id(SOURCE_NAME, encounter, row["id"])
    resource = profiled("Observation", resource_id, US_CORE + profile)
    resource["status"] = "final"
    resource["category"] = [VITAL_SIGNS]
    return resource


def _finish(resource: Resource, encounter: Record, effective: str | None) -> Resource:
    resource["subject"] = patient_reference(encounter)
    resource["encounter"] = encounter_reference(encounter)
    if effective:
        resource["effectiveDateTime"] = effective
    return resource


def _value(row: Record) -> tuple[float | int, str] | None:
    """(value, UCUM unit) of a row whose unit its code's profile allows, else None."""
    value = number(row.get("value"))
    unit = text(row.get("unit"))
    known = vital_rows().get(text(row.get("loinc_code")) or "")
    if value is None or unit is None or known is None or unit not in known[2]:
        return None
    return value, unit


def _absent() -> dict[str, Any]:
    return {
        "coding": [{"system": DATA_ABSENT_REASON_CODES, "code": "unknown", "display": "Unknown"}]
    }


def _blood_pressure(
    encounter: Record, systolic: Record | None, diastolic: Record | None, effective: str | None
) -> Resource | None:
    parts = [(SYSTOLIC, systolic), (DIASTOLIC, diastolic)]
    values = [(code, _value(row) if row else None) for code, row in parts]
    if all(value is None for _, value in values):
        return None
    first = systolic if systolic is not None else diastolic
    assert first is not None
    resource = _observation(encounter, first, "us-core-blood-pressure")
    resource["code"] = _code(BLOOD_PRESSURE)
    _finish(resource, encounter, effective)
    components: list[dict[str, Any]] = []
    for code, value in values:
        component: dict[str, Any] = {"code": _code(code)}
        if value is None:
            component["dataAbsentReason"] = _absent()
        else:
            component["valueQuantity"] = _quantity(*value)
        components.append(component)
    resource["component"] = components
    return resource


def _pulse_oximetry(
    encounter: Record, saturation: Record, extras: list[Record], effective: str | None
) -> Resource | None:
    value = _value(saturation)
    if value is None:
        return None
    resource = _observation(encounter, saturation, "us-core-pulse-oximetry")
    resource["code"] = _code(PULSE_OX, O2_SAT)
    _finish(resource, encounter, effective)
    resource["valueQuantity"] = _quantity(*value)
    components: list[dict[str, Any]] = []
    for code in (FLOW_RATE, CONCENTRATION):
        for row in extras:
            found = _value(row) if text(row.get("loinc_code")) == code[0] else None
            if found is not None:
                components.append({"code": _code(code), "valueQuantity": _quantity(*found)})
                break
    if components:
        resource["component"] = components
    return resource


def _simple(encounter: Record, row: Record, effective: str | None) -> Resource | None:
    loinc = text(row.get("loinc_code")) or ""
    known = vital_rows().get(loinc)
    value = _value(row)
    if known is None or value is None or known[1] == "us-core-smokingstatus":
        return None
    resource = _observation(encounter, row, known[1])
    resource["code"] = _code((loinc, known[0]))
    _finish(resource, encounter, effective)
    resource["valueQuantity"] = _quantity(*value)
    return resource


def transform(encounter: Record, ctx: MappingContext) -> list[Resource]:
    if not mapped(encounter):
        return []
    fallback = instant(encounter.get("start_time"), ctx.timezone)
    moments: dict[str, list[Record]] = {}
    for row in items(encounter, "vitals"):
        moments.setdefault(text(row.get("observed_at")) or "", []).append(row)
    found: list[Resource] = []
    for moment, rows in moments.items():
        effective = instant(moment, ctx.timezone) or fallback
        by_code: dict[str, Record] = {}
        for row in rows:
            by_code.setdefault(text(row.get("loinc_code")) or "", row)
        if SYSTOLIC[0] in by_code or DIASTOLIC[0] in by_code:
            pressure = _blood_pressure(
                encounter, by_code.get(SYSTOLIC[0]), by_code.get(DIASTOLIC[0]), effective
            )
            if pressure:
                found.append(pressure)
        saturation = by_code.get(PULSE_OX[0]) or by_code.get(O2_SAT[0])
        if saturation is not None:
            oximetry = _pulse_oximetry(encounter, saturation, rows, effective)
            if oximetry:
                found.append(oximetry)
        for row in rows:
            code = text(row.get("loinc_code")) or ""
            if code in _PANEL_PARTS or code in _COMPONENTS:
                continue
            simple = _simple(encounter, row, effective)
            if simple:
                found.append(simple)
    return found


def transform_smoking(encounter: Record, ctx: MappingContext) -> list[Resource]:
    status = encounter.get("smoking_status")
    if not mapped(encounter) or not isinstance(status, dict):
        return []
    code = text(status.get("code"))
    display = SMOKING_STATUS.get(code) or text(status.get("description"))
    if code is None:
        return []
    resource = profiled("Observation", item_id(SMOKING_SOURCE, encounter), SMOKING_PROFILE)
    resource["status"] = "final"
    resource["category"] = [SOCIAL_HISTORY]
    resource["code"] = _code(SMOKING)
    effective = instant(status.get("recorded_at"), ctx.timezone) or instant(
        encounter.get("start_time"), ctx.timezone
    )
    _finish(resource, encounter, effective)
    performer = practitioner_reference(encounter.get("provider_id"))
    if performer:
        resource["performer"] = [performer]
    coding = {"system": SNOMED, "code": code}
    if display:
        coding["display"] = display
    value: dict[str, Any] = {"coding": [coding]}
    if display:
        value["text"] = display
    resource["valueCodeableConcept"] = value
    return [resource]
