"""Condition ← CareCloud encounters: each encounter's `problems` (us-core-condition-problems-
health-concerns, category problem-list-item) and `diagnoses` (us-core-condition-encounter-
diagnosis, referencing that encounter).

Both come from the one encounters list of the patient (see `chart`), so `category` decides
only which items are mapped, never which vendor call is made. A diagnosis is identified by
its rank within its encounter (`encdx-<encounter key>-<rank>`, the id Encounter.diagnosis
references: fields.encounter_diagnosis_id).

Must-support elements CareCloud has no field for: `verificationStatus` (problems carry no
verification state; omitted rather than assumed confirmed); the screening-assessment
category (no problem type); encounter diagnoses' clinical status and abatement (a billed
diagnosis says nothing about the condition afterwards; the problem list carries those).
The assertedDate extension is left out: `recorded_at` is when the row was entered
(recordedDate), not when the condition was asserted.
"""

from __future__ import annotations

from typing import Any

from facade.core.compartment import CompartmentMapping
from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
    Unsupported,
)
from mappings.carecloud.chart import (
    chart_source,
    encounter_reference,
    item_id,
    items,
    mapped,
    patient_reference,
    practitioner_reference,
    profiled,
)
from mappings.carecloud.fields import (
    ENCOUNTER_DIAGNOSIS_SOURCE,
    encounter_diagnosis_id,
    fhir_date,
    instant,
    text,
)
from mappings.valuemaps import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    ICD10CM,
    SNOMED,
    US_CORE,
    icd10_with_dot,
)

PROBLEMS_PROFILE = US_CORE + "us-core-condition-problems-health-concerns"
ENCOUNTER_DIAGNOSIS_PROFILE = US_CORE + "us-core-condition-encounter-diagnosis"
PROBLEM_SOURCE = "problem"
DIAGNOSIS_SOURCE = ENCOUNTER_DIAGNOSIS_SOURCE

PROBLEM_LIST_ITEM = {
    "coding": [
        {"system": CONDITION_CATEGORY, "code": "problem-list-item", "display": "Problem List Item"}
    ]
}
ENCOUNTER_DIAGNOSIS = {
    "coding": [
        {
            "system": CONDITION_CATEGORY,
            "code": "encounter-diagnosis",
            "display": "Encounter Diagnosis",
        }
    ]
}
_CLINICAL = frozenset({"active", "inactive", "resolved"})


def condition_code(code: Any, code_system: Any, description: Any, fallback: str) -> dict[str, Any]:
    """ICD-10-CM (dotted) or SNOMED CT coding with the description as text."""
    raw, system = text(code), text(code_system)
    concept: dict[str, Any] = {}
    if raw and system == "ICD10CM":
        concept["coding"] = [{"system": ICD10CM, "code": icd10_with_dot(raw)}]
    elif raw and system == "SNOMED":
        concept["coding"] = [{"system": SNOMED, "code": raw}]
    name = text(description)
    if name:
        concept["text"] = name
    return concept or {"text": fallback}


def _problem(problem: Record, encounter: Record, ctx: MappingContext) -> Resource:
    resource_id = item_id(PROBLEM_SOURCE, encounter, problem["id"])
    resource = profiled("Condition", resource_id, PROBLEMS_PROFILE)
    abated = fhir_date(problem.get("resolved_date"))
    status = text(problem.get("status"))
    if status not in _CLINICAL:
        status = "resolved" if abated else "active"
    elif status == "active" and abated:
        status = "resolved"  # an abatement needs a clinical status that has ended (con-4)
    resource["clinicalStatus"] = {"coding": [{"system": CONDITION_CLINICAL, "code": status}]}
    resource["category"] = [PROBLEM_LIST_ITEM]
    resource["code"] = condition_code(
        problem.get("code"), problem.get("code_system"), problem.get("description"), "Problem"
    )
    resource["subject"] = patient_reference(encounter)
    resource["encounter"] = encounter_reference(encounter)
    onset = fhir_date(problem.get("onset_date"))
    if onset:
        resource["onsetDateTime"] = onset
    if abated:
        resource["abatementDateTime"] = abated
    recorded = instant(problem.get("recorded_at"), ctx.timezone)
    if recorded:
        resource["recordedDate"] = recorded
    recorder = practitioner_reference(encounter.get("provider_id"))
    if recorder:
        resource["recorder"] = recorder
    return resource


def transform_problems(encounter: Record, ctx: MappingContext) -> list[Resource]:
    if not mapped(encounter):
        return []
    return [_problem(problem, encounter, ctx) for problem in items(encounter, "problems")]


def transform_diagnoses(encounter: Record, ctx: MappingContext) -> list[Resource]:
    if not mapped(encounter):
        return []
    recorded = fhir_date(encounter.get("date_of_service"))
    recorder = practitioner_reference(encounter.get("provider_id"))
    resources: list[Resource] = []
    for diagnosis in items(encounter, "diagnoses"):
        raw, rank = text(diagnosis.get("code")), text(diagnosis.get("rank"))
        if raw is None or rank is None:
            continue
        code = icd10_with_dot(raw)
        resource_id = encounter_diagnosis_id(encounter["id"], rank)
        resource = profiled("Condition", resource_id, ENCOUNTER_DIAGNOSIS_PROFILE)
        resource["category"] = [ENCOUNTER_DIAGNOSIS]
        resource["code"] = condition_code(
            code, "ICD10CM", diagnosis.get("description"), "Diagnosis"
        )
        resource["subject"] = patient_reference(encounter)
        resource["encounter"] = encounter_reference(encounter)
        if recorded:
            resource["recordedDate"] = recorded
        if recorder:
            resource["recorder"] = recorder
        resources.append(resource)
    return resources


MAPPING = CompartmentMapping(
    resource_type="Condition",
    profiles=(PROBLEMS_PROFILE, ENCOUNTER_DIAGNOSIS_PROFILE),
    sources=(
        chart_source(
            PROBLEM_SOURCE,
            transform_problems,
            "encounters' problems (the problem list)",
            produces={"category": frozenset({"problem-list-item"})},
        ),
        chart_source(
            DIAGNOSIS_SOURCE,
            transform_diagnoses,
            "encounters' diagnoses (encounter diagnoses, ICD-10-CM)",
            produces={"category": frozenset({"encounter-diagnosis"})},
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-condition-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the encounter holding the item")),
        SearchParam("us-core-condition-category", LocalFilter()),
        SearchParam("us-core-condition-clinical-status", LocalFilter()),
        SearchParam("us-core-condition-code", LocalFilter()),
        SearchParam("us-core-condition-onset-date", LocalFilter()),
        SearchParam("us-core-condition-abatement-date", LocalFilter()),
        SearchParam("us-core-condition-recorded-date", LocalFilter()),
        SearchParam(
            "us-core-condition-asserted-date",
            Unsupported("CareCloud records no asserted date (problems[] have recorded_at only)"),
        ),
        SearchParam("us-core-condition-encounter", LocalFilter()),
    ),
    author_paths=("recorder",),
    notes="Problems and encounter diagnoses nest in the encounters that recorded them: one"
    " GET /encounters?patient_id per patient serves both (and every other chart type). No"
    " verificationStatus (CareCloud records none); encounter diagnoses carry no clinical"
    " status or abatement (the problem list does).",
)
