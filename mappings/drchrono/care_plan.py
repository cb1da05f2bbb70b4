"""CarePlan (us-core-careplan) ← DrChrono /api/care_plans of plan_type 2 (patient education),
3 (patient decision aid) and 4 (patient clinical instruction): assessment-and-plan entries.

Plan type 1 is a Goal (goal.py), 5 a referral and 6 a health concern (other mappings). Every
care-plan source lists a patient's care plans with no `plan_type` filter, so one cached vendor
page serves CarePlan and Goal.
"""

from __future__ import annotations

from html import escape
from typing import Any

from facade.core.compartment import CompartmentMapping, Source, fhir_id
from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
)
from mappings.drchrono.encounter import encounter_id
from mappings.drchrono.fields import UPDATED, fhir_date, meta, text
from mappings.valuemaps import CAREPLAN_CATEGORY, LOINC, SNOMED, US_CORE

PROFILE = US_CORE + "us-core-careplan"
SOURCE_NAME = "careplan"
CARE_PLAN_ID_SYSTEM = "urn:drchrono:care-plan"
PLAN_TYPES = {2: "Patient education", 3: "Patient decision aid", 4: "Patient clinical instruction"}
ASSESS_PLAN = {
    "coding": [
        {
            "system": CAREPLAN_CATEGORY,
            "code": "assess-plan",
            "display": "Assessment and Plan of Treatment",
        }
    ]
}
#: DrChrono code_system names → FHIR code systems.
CODE_SYSTEMS = {"SNOMEDCT": SNOMED, "SNOMED": SNOMED, "LOINC": LOINC}


def plan_type(record: Record) -> int | None:
    try:
        return int(record.get("plan_type") or 0)
    except (TypeError, ValueError):
        return None


def coded(record: Record, label: str | None) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    system = CODE_SYSTEMS.get((text(record.get("code_system")) or "").upper())
    code = text(record.get("code"))
    if system and code:
        concept["coding"] = [{"system": system, "code": code}]
    if label:
        concept["text"] = label
    return concept


def narrative(rows: list[tuple[str, str | None]]) -> dict[str, str]:
    cells = "".join(
        f"<p><b>{escape(name)}</b>: {escape(value)}</p>" for name, value in rows if value
    )
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{cells}</div>',
    }


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    kind = plan_type(record)
    if kind not in PLAN_TYPES:
        return []
    title = text(record.get("title"))
    description = text(record.get("description"))
    instructions = text(record.get("instructions"))
    due = fhir_date(record.get("scheduled_date"))
    resource: Resource = {
        "resourceType": "CarePlan",
        "id": fhir_id(SOURCE_NAME, record["id"]),
        "meta": meta(PROFILE, record.get("updated_at"), ctx),
        "text": narrative(
            [
                (PLAN_TYPES[kind], title),
                ("Description", description if description != title else None),
                ("Instructions", instructions),
                ("Due", due),
            ]
        ),
        "identifier": [{"system": CARE_PLAN_ID_SYSTEM, "value": str(record["id"])}],
        "status": "active",
        "intent": "plan",
        "category": [ASSESS_PLAN],
        "subject": {"reference": f"Patient/{record['patient']}"},
    }
    if title:
        resource["title"] = title
    if description:
        resource["description"] = description
    appointment = text(record.get("appointment"))
    if appointment:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id(appointment)}"}
    period: dict[str, str] = {}
    start = fhir_date(record.get("created_at"))
    if start:
        period["start"] = start
    if due and (not start or due >= start):
        period["end"] = due
    if period:
        resource["period"] = period
    created = fhir_date(record.get("created_at"))
    if created:
        resource["created"] = created
    detail: dict[str, Any] = {"status": "scheduled" if due else "unknown"}
    activity_code = coded(record, title)
    if activity_code:
        detail["code"] = activity_code
    if due:
        detail["scheduledString"] = f"Due {due}"
    if instructions:
        detail["description"] = instructions
    resource["activity"] = [{"detail": detail}]
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="CarePlan",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=UPDATED,
            endpoint="care_plans",
            transform=transform,
            produces={"category": frozenset({"assess-plan"})},
            description="care plans of plan_type 2, 3, 4 (one unfiltered list shared with Goal)",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-careplan-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the care plan")),
        SearchParam("us-core-careplan-category", LocalFilter()),
        SearchParam("us-core-careplan-status", LocalFilter()),
        SearchParam("us-core-careplan-date", LocalFilter()),
    ),
)
