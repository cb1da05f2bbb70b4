"""Immunization (us-core-immunization) ← CareCloud encounters' `immunizations`.

status completed → completed; refused → not-done with statusReason v3-ActReason PATOBJ
(patient objection) and the refusal reason as text; not_administered → not-done with the
recorded reason as text only (CareCloud does not say why in a coded way). vaccineCode CVX.

primarySource: a vaccine given on the day of the encounter that recorded it was given at
that visit (primarySource true, location = the visit's location); one given earlier is a
history the practice recorded from someone else (primarySource false). The occurrence is
`administered_on`, else (a refusal) the encounter's date of service.

Must-support elements CareCloud has no field for: none beyond the above (status,
statusReason, vaccineCode, patient, occurrenceDateTime, primarySource are all backed).
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
    profiled,
)
from mappings.carecloud.fields import fhir_date, reference, text
from mappings.valuemaps import CVX, US_CORE, V3_ACT_REASON

PROFILE = US_CORE + "us-core-immunization"
SOURCE_NAME = "vaccine"


def _status(immunization: Record) -> tuple[str, dict[str, Any] | None]:
    status = text(immunization.get("status"))
    reason = text(immunization.get("refusal_reason"))
    if status == "refused":
        return "not-done", {
            "coding": [{"system": V3_ACT_REASON, "code": "PATOBJ", "display": "patient objection"}],
            "text": reason or "Refused",
        }
    if status == "not_administered":
        return "not-done", {"text": reason or "Not administered"}
    return "completed", None


def _immunization(immunization: Record, encounter: Record, ctx: MappingContext) -> Resource:
    status, reason = _status(immunization)
    resource = profiled(
        "Immunization", item_id(SOURCE_NAME, encounter, immunization["id"]), PROFILE
    )
    resource["status"] = status
    if reason:
        resource["statusReason"] = reason
    vaccine: dict[str, Any] = {}
    cvx, name = text(immunization.get("cvx_code")), text(immunization.get("name"))
    if cvx:
        coding = {"system": CVX, "code": cvx}
        if name:
            coding["display"] = name
        vaccine["coding"] = [coding]
    if name:
        vaccine["text"] = name
    resource["vaccineCode"] = vaccine or {"text": "Unspecified vaccine"}
    resource["patient"] = patient_reference(encounter)
    resource["encounter"] = encounter_reference(encounter)
    visit_day = fhir_date(encounter.get("date_of_service"))
    given = fhir_date(immunization.get("administered_on"))
    occurred = given or visit_day
    if occurred:
        resource["occurrenceDateTime"] = occurred
    else:
        resource["occurrenceString"] = "Date not recorded"
    at_visit = status == "completed" and given is not None and given == visit_day
    if status == "completed" and given is not None:
        resource["primarySource"] = at_visit
    location = reference("Location", encounter.get("location_id"))
    if at_visit and location:
        resource["location"] = location
    manufacturer = text(immunization.get("manufacturer"))
    if manufacturer:
        resource["manufacturer"] = {"display": manufacturer}
    lot = text(immunization.get("lot_number"))
    if lot:
        resource["lotNumber"] = lot
    return resource


transform = each_item("immunizations", _immunization)


MAPPING = CompartmentMapping(
    resource_type="Immunization",
    profiles=(PROFILE,),
    sources=(chart_source(SOURCE_NAME, transform, "encounters' immunizations (CVX)"),),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-immunization-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the encounter holding the immunization")),
        SearchParam("us-core-immunization-date", LocalFilter()),
        SearchParam("us-core-immunization-status", LocalFilter()),
    ),
    notes="From the encounters list (one call per patient, shared with every chart type)."
    " primarySource is true for a vaccine given on the visit's date, false for an earlier"
    " one the visit recorded; not stated for refusals. No performer: CareCloud does not"
    " record who administered a vaccine.",
)
