"""Coded assessments from DrChrono `/api/patient_risk_assessments` (code, code_system,
value_code, value_code_system, value_code_name, effective_time) as US Core Observations:
pregnancy status and intent, occupation (with its industry), sexual orientation, and
screening assessments (survey + SDOH / functional / disability / cognitive status). A helper
module of `observation`: it defines no MAPPING.

Only the questions in ASSESSMENTS are served (each needs its own profile and category);
records with other codes are left out. Tobacco smoking status (72166-2) recorded here is
left out too: the appointments' vitals carry it and are served as us-core-smokingstatus.
The occupation industry (86188-0) is not an Observation of its own but the `industry`
component of the occupation recorded at the same time. Answers of one screening taken at
the same time are linked: the Hunger Vital Sign panel (88121-9) has the questions as
`hasMember`, and the food insecurity risk (88124-3) is `derivedFrom` the two questions.

One patient costs one call (`patient_risk_assessments?patient=X`); a read costs the record
and that same (cached) list, to find the record's companions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facade.core.compartment import FetchContext, fhir_id
from facade.core.mapping import MappingContext, Record, Resource
from mappings.drchrono.fields import coded_concept, instant, reference, text
from mappings.valuemaps import (
    LOINC,
    OBSERVATION_CATEGORY,
    UCUM,
    US_CORE,
)

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

SOURCE_NAME = "assessment"
ENDPOINT = "patient_risk_assessments"
US_CORE_CATEGORY_SYSTEM = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"

SCREENING = US_CORE + "us-core-observation-screening-assessment"
PREGNANCY_STATUS = US_CORE + "us-core-observation-pregnancystatus"
PREGNANCY_INTENT = US_CORE + "us-core-observation-pregnancyintent"
OCCUPATION = US_CORE + "us-core-observation-occupation"
SEXUAL_ORIENTATION = US_CORE + "us-core-observation-sexual-orientation"

INDUSTRY = "86188-0"
HVS_PANEL = "88121-9"
FOOD_RISK = "88124-3"

#: LOINC question → (profile, US Core screening category or None for social history,
#: UCUM unit when the answer is a number).
ASSESSMENTS: dict[str, tuple[str, str | None, str | None]] = {
    "82810-3": (PREGNANCY_STATUS, None, None),
    "86645-9": (PREGNANCY_INTENT, None, None),
    "11341-5": (OCCUPATION, None, None),
    "76690-7": (SEXUAL_ORIENTATION, None, None),
    HVS_PANEL: (SCREENING, "sdoh", None),
    "88122-7": (SCREENING, "sdoh", None),
    "88123-5": (SCREENING, "sdoh", None),
    FOOD_RISK: (SCREENING, "sdoh", None),
    "68517-2": (SCREENING, "sdoh", None),
    "83232-9": (SCREENING, "functional-status", None),
    "69856-3": (SCREENING, "disability-status", None),
    "11332-4": (SCREENING, "cognitive-status", None),
    "72172-0": (SCREENING, "cognitive-status", "{score}"),
}
#: Panel → its member questions; derived result → the answers it is derived from.
PANEL_MEMBERS = {HVS_PANEL: ("88122-7", "88123-5", FOOD_RISK)}
DERIVED_FROM = {FOOD_RISK: ("88122-7", "88123-5")}

PROFILES = tuple(dict.fromkeys(profile for profile, _, _ in ASSESSMENTS.values()))
CODES = frozenset(ASSESSMENTS)
CATEGORIES = frozenset(
    {"social-history", "survey"} | {c for _, c, _ in ASSESSMENTS.values() if c is not None}
)

_US_CORE_CATEGORY_DISPLAY = {
    "sdoh": "SDOH",
    "functional-status": "Functional Status",
    "disability-status": "Disability Status",
    "cognitive-status": "Cognitive Status",
}


async def fetch(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    records = await client.list_all(
        ENDPOINT, {"patient": patient_id}, reason=fc.reason, cache_ttl=fc.cache_ttl
    )
    return [{"assessment": r, "chart": records} for r in records]


async def read(client: VendorClient, vendor_id: str, fc: FetchContext) -> list[Record]:
    record = await client.get_record(ENDPOINT, vendor_id, reason=fc.reason, cache_ttl=fc.cache_ttl)
    if record is None or text(record.get("patient")) is None:
        return []
    chart = await client.list_all(
        ENDPOINT, {"patient": str(record["patient"])}, reason=fc.reason, cache_ttl=fc.cache_ttl
    )
    return [{"assessment": record, "chart": chart}]


def _companions(record: Record, chart: list[Record], codes: tuple[str, ...]) -> list[Record]:
    moment = record.get("effective_time")
    return [
        r
        for r in chart
        if r.get("effective_time") == moment
        and text(r.get("code")) in codes
        and r.get("id") != record.get("id")
    ]


def _answer(record: Record) -> dict[str, Any] | None:
    return coded_concept(
        record.get("value_code"), record.get("value_code_system"), record.get("value_code_name")
    )


def _category(code: str, text_: str) -> dict[str, Any]:
    return {"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": text_}]}


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    assessment, chart = record["assessment"], record.get("chart", [])
    code = text(assessment.get("code"))
    if code is None or code not in ASSESSMENTS or text(assessment.get("patient")) is None:
        return []
    profile, screening, unit = ASSESSMENTS[code]
    effective = instant(assessment.get("effective_time"), ctx.timezone)
    if effective is None:
        return []
    resource: Resource = {
        "resourceType": "Observation",
        "id": fhir_id(SOURCE_NAME, assessment["id"]),
        "meta": {"profile": [profile]},
        "status": "final",
    }
    if screening is None:
        resource["category"] = [_category("social-history", "Social History")]
    else:
        resource["category"] = [
            _category("survey", "Survey"),
            {
                "coding": [
                    {
                        "system": US_CORE_CATEGORY_SYSTEM,
                        "code": screening,
                        "display": _US_CORE_CATEGORY_DISPLAY[screening],
                    }
                ]
            },
        ]
    display = text(assessment.get("name"))
    coding = {"system": LOINC, "code": code}
    if display:
        coding["display"] = display
    resource["code"] = {"coding": [coding], **({"text": display} if display else {})}
    resource["subject"] = {"reference": f"Patient/{assessment['patient']}"}
    if profile == OCCUPATION:
        resource["effectivePeriod"] = {"start": effective}
    else:
        resource["effectiveDateTime"] = effective
    doctor = reference("Practitioner", assessment.get("doctor"))
    if doctor and screening is not None:
        resource["performer"] = [doctor]
    answer = _answer(assessment)
    name = text(assessment.get("value_code_name"))
    if unit is not None and name is not None:
        try:
            number = float(name)
        except ValueError:
            number = None
        if number is not None:
            value: int | float = int(number) if number.is_integer() else number
            resource["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    elif code in PANEL_MEMBERS:
        members = _companions(assessment, chart, PANEL_MEMBERS[code])
        if members:
            resource["hasMember"] = [
                {"reference": f"Observation/{fhir_id(SOURCE_NAME, m['id'])}"} for m in members
            ]
    elif screening == "cognitive-status" and answer and "coding" not in answer and name:
        resource["valueString"] = name
    elif answer:
        resource["valueCodeableConcept"] = answer
    if code in DERIVED_FROM:
        sources = _companions(assessment, chart, DERIVED_FROM[code])
        if sources:
            resource["derivedFrom"] = [
                {"reference": f"Observation/{fhir_id(SOURCE_NAME, s['id'])}"} for s in sources
            ]
    if profile == OCCUPATION:
        industries = _companions(assessment, chart, (INDUSTRY,))
        if industries:
            industry = industries[0]
            component: dict[str, Any] = {
                "code": {
                    "coding": [
                        {
                            "system": LOINC,
                            "code": INDUSTRY,
                            "display": "History of Occupation industry",
                        }
                    ]
                }
            }
            industry_value = _answer(industry)
            if industry_value:
                component["valueCodeableConcept"] = industry_value
                resource["component"] = [component]
    if not any(key.startswith("value") or key == "hasMember" for key in resource):
        return []  # a value (or, for a panel, its members) is required
    return [resource]
