"""Condition ← DrChrono problems (us-core-condition-problems-health-concerns) and the ICD-10
codes billed on appointments (us-core-condition-encounter-diagnosis).

A problem row is one Condition of category problem-list-item or health-concern (from the
row's `category`); its `problem_type` (sdoh, functional/disability/cognitive status) adds the
US Core screening-assessment category. Each code of an appointment's `icd10_codes` is one
encounter diagnosis, referencing the appointment's Encounter. Encounter diagnoses are not
joined with the problem list (a category=encounter-diagnosis search costs one appointments
call), so they carry no clinical status or abatement: the problem-list row carries those.
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
    no_change_time,
)
from mappings.drchrono.fields import (
    APPOINTMENT_PARAMS,
    UPDATED,
    fhir_date,
    instant,
    reference,
    text,
)
from mappings.drchrono.valuemaps import SCREENING_ASSESSMENT_CATEGORY
from mappings.valuemaps import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    ICD9CM,
    ICD10CM,
    SNOMED,
    US_CORE,
    US_CORE_CONDITION_CATEGORY,
    icd10_with_dot,
)

PROBLEMS_PROFILE = US_CORE + "us-core-condition-problems-health-concerns"
ENCOUNTER_DIAGNOSIS_PROFILE = US_CORE + "us-core-condition-encounter-diagnosis"
PROBLEM_SOURCE = "problem"
DIAGNOSIS_SOURCE = "encdx"
ASSERTED_DATE = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate"

#: The generic "Problem" concept DrChrono uses as a placeholder code.
_PLACEHOLDER_SNOMED = "55607006"
_CLINICAL = {"active", "inactive", "resolved"}
_VERIFICATION = {
    "unconfirmed",
    "provisional",
    "differential",
    "confirmed",
    "refuted",
    "entered-in-error",
}


def _category(record: Record) -> list[dict[str, Any]]:
    categories: list[dict[str, Any]] = []
    if text(record.get("category")) == "health-concern":
        categories.append(
            {
                "coding": [
                    {
                        "system": US_CORE_CONDITION_CATEGORY,
                        "code": "health-concern",
                        "display": "Health Concern",
                    }
                ]
            }
        )
    else:
        categories.append(
            {
                "coding": [
                    {
                        "system": CONDITION_CATEGORY,
                        "code": "problem-list-item",
                        "display": "Problem List Item",
                    }
                ]
            }
        )
    screening = SCREENING_ASSESSMENT_CATEGORY.get(text(record.get("problem_type")))
    if screening is not None:
        categories.append({"coding": [screening]})
    return categories


def _icd_coding(code: Any, version: Any = "10") -> dict[str, str] | None:
    raw = text(code)
    if raw is None:
        return None
    if text(version) == "9":
        return {"system": ICD9CM, "code": raw}
    return {"system": ICD10CM, "code": icd10_with_dot(raw)}


def _clinical_status(code: str) -> dict[str, Any]:
    return {"coding": [{"system": CONDITION_CLINICAL, "code": code}]}


def _abatement(record: Record) -> str | None:
    abated = fhir_date(record.get("abatement_date"))
    if abated is None and text(record.get("status")) == "resolved":
        abated = fhir_date(record.get("date_changed"))
    return abated


def transform_problem(record: Record, ctx: MappingContext) -> list[Resource]:
    resource: Resource = {
        "resourceType": "Condition",
        "id": fhir_id(PROBLEM_SOURCE, record["id"]),
        "meta": {"profile": [PROBLEMS_PROFILE]},
    }
    diagnosed = fhir_date(record.get("date_diagnosis"))
    if diagnosed:
        resource["extension"] = [{"url": ASSERTED_DATE, "valueDateTime": diagnosed}]
    verification = text(record.get("verification_status"))
    status = text(record.get("status"))
    # A problem entered in error never held, so it never abated either (and with no clinical
    # status an abatement would break US Core's con-4).
    abated = _abatement(record) if verification != "entered-in-error" else None
    if verification != "entered-in-error":
        if status not in _CLINICAL:
            status = "inactive" if abated else "active"
        elif status == "active" and abated:
            status = "resolved"
        resource["clinicalStatus"] = _clinical_status(status)
    if verification in _VERIFICATION:
        resource["verificationStatus"] = {
            "coding": [{"system": CONDITION_VERIFICATION, "code": verification}]
        }
    resource["category"] = _category(record)
    codings: list[dict[str, str]] = []
    icd = _icd_coding(record.get("icd_code"), record.get("icd_version"))
    if icd:
        codings.append(icd)
    snomed = text(record.get("snomed_ct_code"))
    if snomed and snomed != _PLACEHOLDER_SNOMED:
        codings.append({"system": SNOMED, "code": snomed})
    code: dict[str, Any] = {}
    if codings:
        code["coding"] = codings
    name = text(record.get("name")) or text(record.get("description"))
    if name:
        code["text"] = name
    resource["code"] = code or {"text": "Unspecified problem"}
    resource["subject"] = {"reference": f"Patient/{record['patient']}"}
    appointment = text(record.get("appointment"))
    if appointment:
        resource["encounter"] = {"reference": f"Encounter/{fhir_id('encounter', appointment)}"}
    onset = fhir_date(record.get("date_onset"))
    if onset:
        resource["onsetDateTime"] = onset
    if abated:
        resource["abatementDateTime"] = abated
    if diagnosed:
        resource["recordedDate"] = diagnosed
    doctor = reference("Practitioner", record.get("doctor"))
    if doctor:
        resource["recorder"] = doctor
    notes = text(record.get("notes"))
    if notes:
        resource["note"] = [{"text": notes}]
    return [resource]


def _diagnosis_codes(record: Record) -> list[tuple[str, str | None]]:
    """(ICD-10 code, description) of each code billed on the appointment, in order, once."""
    found: dict[str, str | None] = {}
    raw = record.get("icd10_codes") or []
    if isinstance(raw, str):
        raw = [part for part in raw.split(",")]
    for item in raw:
        if isinstance(item, dict):
            code, description = text(item.get("code")), text(item.get("description"))
        else:
            code, description = text(item), None
        if code:
            found.setdefault(icd10_with_dot(code), description)
    return list(found.items())


def transform_diagnoses(record: Record, ctx: MappingContext) -> list[Resource]:
    if record.get("deleted_flag") is True or not text(record.get("patient")):
        return []
    encounter = {"reference": f"Encounter/{fhir_id('encounter', record['id'])}"}
    recorded = fhir_date(record.get("scheduled_time"))
    last_updated = instant(record.get("updated_at"), ctx.timezone)
    meta: dict[str, Any] = {"profile": [ENCOUNTER_DIAGNOSIS_PROFILE]}
    if last_updated:
        meta["lastUpdated"] = last_updated
    resources: list[Resource] = []
    for code, description in _diagnosis_codes(record):
        resource: Resource = {
            "resourceType": "Condition",
            "id": fhir_id(DIAGNOSIS_SOURCE, record["id"], code),
            "meta": meta,
            "category": [
                {
                    "coding": [
                        {
                            "system": CONDITION_CATEGORY,
                            "code": "encounter-diagnosis",
                            "display": "Encounter Diagnosis",
                        }
                    ]
                }
            ],
        }
        concept: dict[str, Any] = {"coding": [{"system": ICD10CM, "code": code}]}
        if description:
            concept["text"] = description
        resource["code"] = concept
        resource["subject"] = {"reference": f"Patient/{record['patient']}"}
        resource["encounter"] = encounter
        if recorded:
            resource["recordedDate"] = recorded
        doctor = reference("Practitioner", record.get("doctor"))
        if doctor:
            resource["recorder"] = doctor
        resources.append(resource)
    return resources


MAPPING = CompartmentMapping(
    resource_type="Condition",
    profiles=(PROBLEMS_PROFILE, ENCOUNTER_DIAGNOSIS_PROFILE),
    sources=(
        Source(
            name=PROBLEM_SOURCE,
            last_updated=no_change_time(
                "DrChrono problems carry onset, diagnosis and change dates (days), no update time."
            ),
            endpoint="problems",
            transform=transform_problem,
            produces={
                "category": frozenset(
                    {
                        "problem-list-item",
                        "health-concern",
                        "sdoh",
                        "functional-status",
                        "disability-status",
                        "cognitive-status",
                    }
                )
            },
            description="problems (problem list and health concerns)",
        ),
        Source(
            name=DIAGNOSIS_SOURCE,
            last_updated=UPDATED,
            endpoint="appointments",
            transform=transform_diagnoses,
            fixed_params=APPOINTMENT_PARAMS,
            produces={"category": frozenset({"encounter-diagnosis"})},
            description="appointments' icd10_codes (encounter diagnoses)",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-condition-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the problem or appointment record")),
        SearchParam("us-core-condition-category", LocalFilter()),
        SearchParam("us-core-condition-clinical-status", LocalFilter()),
        SearchParam("us-core-condition-code", LocalFilter()),
        SearchParam("us-core-condition-onset-date", LocalFilter()),
        SearchParam("us-core-condition-abatement-date", LocalFilter()),
        SearchParam("us-core-condition-recorded-date", LocalFilter()),
        SearchParam("us-core-condition-asserted-date", LocalFilter()),
        SearchParam("us-core-condition-encounter", LocalFilter()),
    ),
    author_paths=("recorder",),
)
