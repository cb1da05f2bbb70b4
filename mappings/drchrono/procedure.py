"""Procedure (us-core-procedure) ← DrChrono /api/procedures and /api/patient_interventions.

Billed procedures carry a CPT, HCPCS or SNOMED CT code by `procedure_type` (C/H/S; U is a
practice's custom code, kept as text); their date is the service date. Interventions (e.g.
counselling, SDOH referrals) are coded in SNOMED CT, CPT or HCPCS and dated `effective_time`.
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
from mappings.drchrono.fields import UPDATED, fhir_date, instant, meta, reference, text
from mappings.valuemaps import CPT, HCPCS, ICD10CM, SNOMED, US_CORE

PROFILE = US_CORE + "us-core-procedure"
PROCEDURE_SOURCE = "procedure"
INTERVENTION_SOURCE = "intervention"

_PROCEDURE_SYSTEMS = {"C": CPT, "H": HCPCS, "S": SNOMED}
_INTERVENTION_SYSTEMS = {"SNOMEDCT": SNOMED, "CPT": CPT, "HCPCS": HCPCS, "ICD10CM": ICD10CM}
_STATUS = {
    "complete": "completed",
    "completed": "completed",
    "in progress": "in-progress",
    "in-progress": "in-progress",
    "cancelled": "not-done",
    "canceled": "not-done",
    "not done": "not-done",
}


def _code(system: str | None, code: str | None, description: str | None) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if system and code:
        concept["coding"] = [{"system": system, "code": code}]
    if description:
        concept["text"] = description
    elif code and not system:
        concept["text"] = code
    return concept or {"text": "Unspecified procedure"}


def transform_procedure(record: Record, ctx: MappingContext) -> list[Resource]:
    status = _STATUS.get((text(record.get("status")) or "").lower(), "completed")
    system = _PROCEDURE_SYSTEMS.get(text(record.get("procedure_type")) or "")
    resource: Resource = {
        "resourceType": "Procedure",
        "id": fhir_id(PROCEDURE_SOURCE, record["id"]),
        "meta": meta(PROFILE, record.get("updated_at"), ctx),
        "status": status,
        "code": _code(system, text(record.get("code")), text(record.get("description"))),
        "subject": {"reference": f"Patient/{record['patient']}"},
    }
    appointment = text(record.get("appointment"))
    if appointment:
        resource["encounter"] = {"reference": f"Encounter/{fhir_id('encounter', appointment)}"}
    performed = fhir_date(record.get("date"))
    if performed:
        resource["performedDateTime"] = performed
    doctor = reference("Practitioner", record.get("doctor"))
    if doctor:
        resource["performer"] = [{"actor": doctor}]
    return [resource]


def transform_intervention(record: Record, ctx: MappingContext) -> list[Resource]:
    system = _INTERVENTION_SYSTEMS.get(text(record.get("code_system")) or "")
    resource: Resource = {
        "resourceType": "Procedure",
        "id": fhir_id(INTERVENTION_SOURCE, record["id"]),
        "meta": meta(PROFILE, record.get("created_at"), ctx),
        "status": "completed",
        "code": _code(system, text(record.get("code")), text(record.get("name"))),
        "subject": {"reference": f"Patient/{record['patient']}"},
    }
    performed = instant(record.get("effective_time"), ctx.timezone) or instant(
        record.get("created_at"), ctx.timezone
    )
    if performed:
        resource["performedDateTime"] = performed
    doctor = reference("Practitioner", record.get("doctor"))
    if doctor:
        resource["performer"] = [{"actor": doctor}]
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="Procedure",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=PROCEDURE_SOURCE,
            last_updated=UPDATED,
            endpoint="procedures",
            transform=transform_procedure,
            description="billed procedures (CPT, HCPCS, SNOMED CT)",
        ),
        Source(
            name=INTERVENTION_SOURCE,
            last_updated=UPDATED,
            endpoint="patient_interventions",
            transform=transform_intervention,
            description="patient interventions",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-procedure-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the procedure or intervention record")),
        SearchParam("us-core-procedure-date", LocalFilter()),
        SearchParam("us-core-procedure-code", LocalFilter()),
        SearchParam("us-core-procedure-status", LocalFilter()),
    ),
    author_paths=("performer.actor",),
)
