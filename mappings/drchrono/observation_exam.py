"""Physical exam findings from DrChrono `/api/patient_physical_exams` (code, code_system,
value_code, value_code_system, value_code_name, effective_time) as US Core clinical result
Observations (category exam). A helper module of `observation`: it defines no MAPPING.

The exam's code (LOINC or SNOMED CT, as DrChrono records it) is the observation's code and
the coded finding its valueCodeableConcept. DrChrono records findings as codes only: an
exam with no finding code has no value, so it says why (dataAbsentReason `unknown`).
The records carry `created_at` but no update time: that is their `meta.lastUpdated`.

One patient costs one call (`patient_physical_exams?patient=X`); a read costs the record.
"""

from __future__ import annotations

from facade.core.compartment import fhir_id
from facade.core.mapping import MappingContext, Record, Resource
from mappings.drchrono.fields import coded_concept, instant, meta, reference, text
from mappings.valuemaps import (
    DATA_ABSENT_REASON_CODES,
    OBSERVATION_CATEGORY,
    US_CORE,
)

SOURCE_NAME = "exam"
ENDPOINT = "patient_physical_exams"
PROFILE = US_CORE + "us-core-observation-clinical-result"
EXAM = {"coding": [{"system": OBSERVATION_CATEGORY, "code": "exam", "display": "Exam"}]}
NO_FINDING = {
    "coding": [{"system": DATA_ABSENT_REASON_CODES, "code": "unknown", "display": "Unknown"}]
}


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    code = coded_concept(record.get("code"), record.get("code_system"), record.get("name"))
    patient = text(record.get("patient"))
    effective = instant(record.get("effective_time"), ctx.timezone)
    if code is None or "coding" not in code or patient is None or effective is None:
        return []
    resource: Resource = {
        "resourceType": "Observation",
        "id": fhir_id(SOURCE_NAME, record["id"]),
        "meta": meta(PROFILE, record.get("created_at"), ctx),
        "status": "final",
        "category": [EXAM],
        "code": code,
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": effective,
    }
    doctor = reference("Practitioner", record.get("doctor"))
    if doctor:
        resource["performer"] = [doctor]
    finding = coded_concept(
        record.get("value_code"), record.get("value_code_system"), record.get("value_code_name")
    )
    if finding:
        resource["valueCodeableConcept"] = finding
    else:
        resource["dataAbsentReason"] = NO_FINDING
    return [resource]
