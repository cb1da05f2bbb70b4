"""Goal (us-core-goal) ← DrChrono /api/care_plans of plan_type 1 (Goal).

The list is the patient's unfiltered care plans, the same cached vendor page CarePlan uses.
"""

from __future__ import annotations

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
from mappings.drchrono.care_plan import CODE_SYSTEMS, plan_type
from mappings.drchrono.fields import UPDATED, fhir_date, meta, text
from mappings.valuemaps import LOINC, SNOMED, US_CORE

PROFILE = US_CORE + "us-core-goal"
SOURCE_NAME = "goal"
GOAL_PLAN_TYPE = 1
CARE_PLAN_ID_SYSTEM = "urn:drchrono:care-plan"


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    if plan_type(record) != GOAL_PLAN_TYPE:
        return []
    title = text(record.get("title")) or text(record.get("description")) or "Goal"
    system = CODE_SYSTEMS.get((text(record.get("code_system")) or "").upper())
    code = text(record.get("code"))
    description: dict[str, Any] = {"text": title}
    if system in (SNOMED, LOINC) and code:
        # US Core Goal Codes (ValueSet us-core-goal-description) include SNOMED CT and LOINC.
        description = {"coding": [{"system": system, "code": code}], "text": title}
    resource: Resource = {
        "resourceType": "Goal",
        "id": fhir_id(SOURCE_NAME, record["id"]),
        "meta": meta(PROFILE, record.get("updated_at"), ctx),
        "identifier": [{"system": CARE_PLAN_ID_SYSTEM, "value": str(record["id"])}],
        "lifecycleStatus": "active",
        "description": description,
        "subject": {"reference": f"Patient/{record['patient']}"},
    }
    start = fhir_date(record.get("created_at"))
    if start:
        resource["startDate"] = start
    target: dict[str, Any] = {}
    if system == LOINC and code:
        target["measure"] = {"coding": [{"system": LOINC, "code": code}], "text": title}
    due = fhir_date(record.get("scheduled_date"))
    if due:
        target["dueDate"] = due
    if target:
        resource["target"] = [target]
    instructions = text(record.get("instructions"))
    if instructions:
        resource["note"] = [{"text": instructions}]
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="Goal",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=UPDATED,
            endpoint="care_plans",
            transform=transform,
            description="care plans of plan_type 1 (one unfiltered list shared with CarePlan)",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-goal-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the care plan")),
        SearchParam("us-core-goal-lifecycle-status", LocalFilter()),
        SearchParam("us-core-goal-target-date", LocalFilter()),
        SearchParam("us-core-goal-description", LocalFilter()),
    ),
)
