"""Procedure (us-core-procedure) ← CareCloud encounters' `procedures`: CPT, SNOMED CT or
HCPCS by `code_system`, performed at `performed_at` (else the encounter's date of service),
status completed (CareCloud lists procedures done at the visit), performer = the
encounter's provider. The visit code (`visit_code`, an E/M CPT) is the Encounter's type, not
a Procedure.

Must-support elements CareCloud has no field for: `basedOn` (no orders are recorded).
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
)
from mappings.carecloud.chart import (
    chart_source,
    each_item,
    encounter_reference,
    item_id,
    patient_reference,
    practitioner_reference,
    profiled,
)
from mappings.carecloud.fields import concept, fhir_date, instant, text
from mappings.valuemaps import CPT, HCPCS, SNOMED, US_CORE

PROFILE = US_CORE + "us-core-procedure"
SOURCE_NAME = "procedure"
#: CareCloud procedure code_system → FHIR system.
SYSTEMS = {"CPT": CPT, "SNOMED": SNOMED, "HCPCS": HCPCS}


def _code(procedure: Record) -> dict[str, Any]:
    """The procedure's code; its text is the description, else the bare code, so a row
    without either still says what it is."""
    code = text(procedure.get("code"))
    system = SYSTEMS.get(text(procedure.get("code_system")) or "")
    found = concept(system, code, text(procedure.get("description"))) or {}
    if "text" not in found:
        found["text"] = code or "Unspecified procedure"
    return found


def _procedure(procedure: Record, encounter: Record, ctx: MappingContext) -> Resource:
    resource = profiled("Procedure", item_id(SOURCE_NAME, encounter, procedure["id"]), PROFILE)
    resource["status"] = "completed"
    resource["code"] = _code(procedure)
    resource["subject"] = patient_reference(encounter)
    resource["encounter"] = encounter_reference(encounter)
    performed = instant(procedure.get("performed_at"), ctx.timezone) or fhir_date(
        encounter.get("date_of_service")
    )
    if performed:
        resource["performedDateTime"] = performed
    performer = practitioner_reference(encounter.get("provider_id"))
    if performer:
        resource["performer"] = [{"actor": performer}]
    return resource


transform = each_item("procedures", _procedure)


MAPPING = CompartmentMapping(
    resource_type="Procedure",
    profiles=(PROFILE,),
    sources=(chart_source(SOURCE_NAME, transform, "encounters' procedures (CPT, SNOMED, HCPCS)"),),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-procedure-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the encounter holding the procedure")),
        SearchParam("us-core-procedure-date", LocalFilter()),
        SearchParam("us-core-procedure-code", LocalFilter()),
        SearchParam("us-core-procedure-status", LocalFilter()),
    ),
    author_paths=("performer.actor",),
    notes="Procedures done at a visit, from the encounters list (one call per patient). No"
    " basedOn: CareCloud records no orders.",
)
