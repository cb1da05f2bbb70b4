"""AllergyIntolerance (us-core-allergyintolerance) ← CareCloud encounters' `allergies`.

The allergen is coded in RxNorm (drug allergies: category medication), SNOMED CT or UNII
(`code_system`), with the allergen name as text; the reaction is SNOMED-coded with its text
and severity. The recorder is the provider of the encounter that recorded the allergy.

Must-support elements CareCloud has no field for: `verificationStatus` (no verification
state is recorded; omitted rather than assumed confirmed).
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
from mappings.carecloud.fields import fhir_date, instant, text
from mappings.valuemaps import RXNORM, SNOMED, US_CORE

PROFILE = US_CORE + "us-core-allergyintolerance"
SOURCE_NAME = "allergy"
CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
UNII = "http://fdasis.nlm.nih.gov"
#: CareCloud allergen code_system → FHIR system.
ALLERGEN_SYSTEMS = {"RXNORM": RXNORM, "SNOMED": SNOMED, "UNII": UNII}
_SEVERITIES = frozenset({"mild", "moderate", "severe"})


def _allergen(allergy: Record) -> dict[str, Any]:
    code, system = (
        text(allergy.get("allergen_code")),
        ALLERGEN_SYSTEMS.get(text(allergy.get("code_system")) or ""),
    )
    concept: dict[str, Any] = {}
    name = text(allergy.get("allergen"))
    if code and system:
        coding = {"system": system, "code": code}
        if name:
            coding["display"] = name
        concept["coding"] = [coding]
    if name:
        concept["text"] = name
    return concept or {"text": "Unspecified allergen"}


def _reaction(allergy: Record) -> dict[str, Any] | None:
    manifestation: dict[str, Any] = {}
    code, name = text(allergy.get("reaction_code")), text(allergy.get("reaction"))
    if code:
        coding = {"system": SNOMED, "code": code}
        if name:
            coding["display"] = name
        manifestation["coding"] = [coding]
    if name:
        manifestation["text"] = name
    if not manifestation:
        return None
    reaction: dict[str, Any] = {"manifestation": [manifestation]}
    severity = text(allergy.get("severity"))
    if severity in _SEVERITIES:
        reaction["severity"] = severity
    return reaction


def _allergy(allergy: Record, encounter: Record, ctx: MappingContext) -> Resource:
    resource = profiled(
        "AllergyIntolerance", item_id(SOURCE_NAME, encounter, allergy["id"]), PROFILE
    )
    status = "inactive" if text(allergy.get("status")) == "inactive" else "active"
    resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": status}]}
    if text(allergy.get("code_system")) == "RXNORM":
        resource["category"] = ["medication"]
    resource["code"] = _allergen(allergy)
    resource["patient"] = patient_reference(encounter)
    resource["encounter"] = encounter_reference(encounter)
    onset = fhir_date(allergy.get("onset_date"))
    if onset:
        resource["onsetDateTime"] = onset
    recorded = instant(allergy.get("recorded_at"), ctx.timezone)
    if recorded:
        resource["recordedDate"] = recorded
    recorder = practitioner_reference(encounter.get("provider_id"))
    if recorder:
        resource["recorder"] = recorder
    reaction = _reaction(allergy)
    if reaction:
        resource["reaction"] = [reaction]
    return resource


transform = each_item("allergies", _allergy)


MAPPING = CompartmentMapping(
    resource_type="AllergyIntolerance",
    profiles=(PROFILE,),
    sources=(chart_source(SOURCE_NAME, transform, "encounters' allergies"),),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-allergyintolerance-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the encounter holding the allergy")),
        SearchParam("us-core-allergyintolerance-clinical-status", LocalFilter()),
    ),
    author_paths=("recorder",),
    notes="From the encounters list (one call per patient, shared with every chart type)."
    " No verificationStatus: CareCloud records none.",
)
