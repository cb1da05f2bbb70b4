"""AllergyIntolerance (us-core-allergyintolerance) ← DrChrono /api/allergies.

The allergen's text (`description`, e.g. "Food: Peanut") is verbose-only, so the list is
fetched verbose; drug allergies carry an RxNorm ingredient, others a SNOMED CT substance.
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
from mappings.drchrono.fields import reference, text
from mappings.valuemaps import RXNORM, SNOMED, US_CORE

PROFILE = US_CORE + "us-core-allergyintolerance"
SOURCE_NAME = "allergy"

CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
_VERIFICATION_CODES = {"confirmed", "unconfirmed", "refuted", "entered-in-error"}


def _allergen_text(record: Record) -> str | None:
    description = text(record.get("description"))
    if description and ":" in description:
        # DrChrono writes "Category: allergen"; the allergen is what follows the last colon.
        return description.rsplit(":", 1)[1].strip() or description
    return description


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    verification = text(record.get("verification_status"))
    resource: Resource = {
        "resourceType": "AllergyIntolerance",
        "id": fhir_id(SOURCE_NAME, record["id"]),
        "meta": {"profile": [PROFILE]},
    }
    if verification != "entered-in-error":
        status = "inactive" if text(record.get("status")) == "inactive" else "active"
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": status}]}
    if verification in _VERIFICATION_CODES:
        resource["verificationStatus"] = {
            "coding": [{"system": VERIFICATION, "code": verification}]
        }
    codings: list[dict[str, Any]] = []
    rxnorm = text(record.get("rxnorm"))
    if rxnorm:
        codings.append({"system": RXNORM, "code": rxnorm})
        resource["category"] = ["medication"]
    snomed = text(record.get("snomed_code"))
    if snomed:
        codings.append({"system": SNOMED, "code": snomed})
    code: dict[str, Any] = {}
    if codings:
        code["coding"] = codings
    allergen = _allergen_text(record)
    if allergen:
        code["text"] = allergen
    resource["code"] = code or {"text": "Unspecified allergy"}
    resource["patient"] = {"reference": f"Patient/{record['patient']}"}
    doctor = reference("Practitioner", record.get("doctor"))
    if doctor:
        resource["recorder"] = doctor
    manifestation: dict[str, Any] = {}
    reaction_code = text(record.get("snomed_reaction"))
    if reaction_code:
        manifestation["coding"] = [{"system": SNOMED, "code": reaction_code}]
    reaction_text = text(record.get("reaction"))
    if reaction_text:
        manifestation["text"] = reaction_text
    if manifestation:
        resource["reaction"] = [{"manifestation": [manifestation]}]
    notes = text(record.get("notes"))
    if notes:
        resource["note"] = [{"text": notes}]
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="AllergyIntolerance",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=no_change_time("DrChrono allergies carry no update or creation time."),
            endpoint="allergies",
            transform=transform,
            needs_detail=lambda _ctx: True,
            description="allergies (verbose: the allergen text)",
        ),
    ),
    search_params=(
        SearchParam("us-core-allergyintolerance-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the allergy's vendor record")),
        SearchParam("us-core-allergyintolerance-clinical-status", LocalFilter()),
    ),
    author_paths=("recorder",),
)
