"""MedicationRequest (us-core-medicationrequest) ← CareCloud encounters' `medications`.

CareCloud codes medications by NDC (package code, 11-digit 5-4-2 with dashes), not RxNorm,
which US Core binds medication[x] to. The curated crosswalk `ndc_rxnorm`
(facade/sandbox/tables/ndc_rxnorm.json, each row a package NDC and the RxNorm SCD of its
labeled drug, with its source) adds the RxNorm coding; the NDC coding is kept beside it. An
NDC the crosswalk has no row for keeps its NDC coding and the name as text only: facade never
guesses an RxNorm code (such medications are what `unmapped_ndcs` lists for the operator).

A medication with a prescriber is the practice's order (intent order, reportedBoolean
false, requester = the prescriber, category community: taken at home); one without is a
medication the patient reports (intent plan, reportedBoolean true). status: active →
active, discontinued → stopped, completed → completed. authoredOn = when it was recorded;
start/end dates bound the dosage timing.

Must-support elements CareCloud has no field for: `reasonCode`/`reasonReference` (no
indication), `dispenseRequest` (no quantity or refills), `reportedReference` (the reporter
is not recorded), structured `dosageInstruction.timing` repeats (the sig is free text;
timing carries only the start/end bounds).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
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
from facade.sandbox.codes import load_table
from mappings.carecloud.chart import (
    chart_source,
    each_item,
    encounter_reference,
    item_id,
    number,
    patient_reference,
    practitioner_reference,
    profiled,
)
from mappings.carecloud.fields import fhir_date, instant, text
from mappings.valuemaps import MEDICATIONREQUEST_CATEGORY, NDC, RXNORM, UCUM, US_CORE

PROFILE = US_CORE + "us-core-medicationrequest"
#: Short: a Provenance id (`MedicationRequest-<this id>`) must fit FHIR's 64 characters.
SOURCE_NAME = "med"
CROSSWALK_TABLE = "ndc_rxnorm"

COMMUNITY = {
    "coding": [{"system": MEDICATIONREQUEST_CATEGORY, "code": "community", "display": "Community"}]
}
#: CareCloud medication status → MedicationRequest.status.
STATUS = {"active": "active", "discontinued": "stopped", "completed": "completed"}
#: CareCloud dose units that are UCUM codes (others stay text).
_UCUM_DOSE_UNITS = frozenset({"mg", "g", "ug", "mL", "L", "meq", "[iU]", "%"})


def crosswalk(ndc: str) -> dict[str, Any] | None:
    """The crosswalk row of a package NDC, or None when the table has none."""
    return _crosswalk_index().get(ndc)


@cache
def _crosswalk_index() -> dict[str, dict[str, Any]]:
    table = load_table(CROSSWALK_TABLE)
    return {str(row["code"]): row for row in table.rows}


def unmapped_ndcs(ndcs: Iterable[str]) -> list[str]:
    """The NDCs among `ndcs` the crosswalk cannot turn into RxNorm (they map with NDC + text)."""
    return sorted({ndc for ndc in ndcs if crosswalk(ndc) is None})


def medication_code(medication: Record) -> dict[str, Any]:
    name = text(medication.get("name"))
    ndc = text(medication.get("ndc"))
    codings: list[dict[str, str]] = []
    row = crosswalk(ndc) if ndc else None
    if row is not None:
        codings.append(
            {"system": RXNORM, "code": str(row["rxnorm"]), "display": str(row["display"])}
        )
    if ndc:
        codings.append({"system": NDC, "code": ndc})
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    concept["text"] = name or (str(row["display"]) if row else "Unspecified medication")
    return concept


def _dosage(medication: Record) -> dict[str, Any] | None:
    dosage: dict[str, Any] = {}
    sig = text(medication.get("sig"))
    if sig:
        dosage["text"] = sig
    bounds = {
        key: day
        for key, field in (("start", "start_date"), ("end", "end_date"))
        if (day := fhir_date(medication.get(field)))
    }
    if bounds:
        dosage["timing"] = {"repeat": {"boundsPeriod": bounds}}
    amount = number(medication.get("dose_quantity"))
    if amount is not None:
        quantity: dict[str, Any] = {"value": amount}
        unit = text(medication.get("dose_unit"))
        if unit:
            quantity["unit"] = unit
            if unit in _UCUM_DOSE_UNITS:
                quantity["system"] = UCUM
                quantity["code"] = unit
        dosage["doseAndRate"] = [{"doseQuantity": quantity}]
    return dosage or None


def _medication(medication: Record, encounter: Record, ctx: MappingContext) -> Resource:
    prescriber = practitioner_reference(medication.get("prescriber_id"))
    resource = profiled(
        "MedicationRequest", item_id(SOURCE_NAME, encounter, medication["id"]), PROFILE
    )
    resource["status"] = STATUS.get(text(medication.get("status")) or "", "unknown")
    resource["intent"] = "order" if prescriber else "plan"
    resource["category"] = [COMMUNITY]
    resource["reportedBoolean"] = prescriber is None
    resource["medicationCodeableConcept"] = medication_code(medication)
    resource["subject"] = patient_reference(encounter)
    resource["encounter"] = encounter_reference(encounter)
    authored = instant(medication.get("recorded_at"), ctx.timezone) or fhir_date(
        medication.get("start_date")
    )
    if authored:
        resource["authoredOn"] = authored
    if prescriber:
        resource["requester"] = prescriber
    dosage = _dosage(medication)
    if dosage:
        resource["dosageInstruction"] = [dosage]
    return resource


transform = each_item("medications", _medication)


MAPPING = CompartmentMapping(
    resource_type="MedicationRequest",
    profiles=(PROFILE,),
    sources=(chart_source(SOURCE_NAME, transform, "encounters' medications (NDC-coded)"),),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-medicationrequest-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the encounter holding the medication")),
        SearchParam("us-core-medicationrequest-intent", LocalFilter()),
        SearchParam("us-core-medicationrequest-status", LocalFilter()),
        SearchParam("us-core-medicationrequest-authoredon", LocalFilter()),
        SearchParam("us-core-medicationrequest-encounter", LocalFilter()),
    ),
    author_paths=("requester",),
    notes="medicationCodeableConcept: RxNorm through the curated NDC crosswalk (ndc_rxnorm)"
    " plus the NDC; an NDC without a crosswalk row keeps NDC + text. CareCloud has no"
    " medication records to reference, so _include=MedicationRequest:medication is not"
    " offered. No reasonCode or dispenseRequest: CareCloud records neither.",
)
