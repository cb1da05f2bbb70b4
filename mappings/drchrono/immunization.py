"""Immunization (us-core-immunization) ← DrChrono /api/patient_vaccine_records.

`completion_status` CP/PA → completed (PA is subpotent: a partial dose), RE/NA → not-done
with a v3-ActReason status reason (patient objection for RE; NA's reason is not recorded, so
text only). NIP001 `record_source` "00" is a new record (primarySource true); "01".."08" are
historical records with their report origin (shared/research/upstreams.md §5.11).
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
from mappings.drchrono.fields import UPDATED, instant, meta, reference, text
from mappings.valuemaps import (
    CPT,
    CVX,
    IMMUNIZATION_ORIGIN,
    IMMUNIZATION_ORIGIN_BY_SOURCE,
    UCUM,
    US_CORE,
    V3_ACT_REASON,
    VFC_ELIGIBILITY,
    VFC_ELIGIBILITY_DISPLAY,
)

PROFILE = US_CORE + "us-core-immunization"
SOURCE_NAME = "vaccine"
SUBPOTENT_REASON = "http://terminology.hl7.org/CodeSystem/immunization-subpotent-reason"
PERFORMER_FUNCTION = "http://terminology.hl7.org/CodeSystem/v2-0443"

_UCUM_UNITS = {"mL": "mL", "ml": "mL", "mg": "mg", "mcg": "ug"}


def _status(record: Record) -> tuple[str, dict[str, Any] | None]:
    completion = text(record.get("completion_status"))
    if completion == "RE":
        reason = {
            "coding": [{"system": V3_ACT_REASON, "code": "PATOBJ", "display": "patient objection"}],
            "text": "Refused",
        }
        return "not-done", reason
    if completion == "NA":
        return "not-done", {"text": "Not administered"}
    return "completed", None


def _amount(value: Any) -> float | int | None:
    raw = text(value)
    if raw is None:
        return None
    try:
        number = float(raw)
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    status, reason = _status(record)
    resource: Resource = {
        "resourceType": "Immunization",
        "id": fhir_id(SOURCE_NAME, record["id"]),
        "meta": meta(PROFILE, record.get("updated_at"), ctx),
        "status": status,
    }
    if reason:
        resource["statusReason"] = reason
    codings: list[dict[str, str]] = []
    cvx = text(record.get("cvx_code"))
    if cvx:
        codings.append({"system": CVX, "code": cvx})
    cpt = text(record.get("cpt_code"))
    if cpt:
        codings.append({"system": CPT, "code": cpt})
    vaccine: dict[str, Any] = {}
    if codings:
        vaccine["coding"] = codings
    name = text(record.get("name"))
    if name:
        vaccine["text"] = name
    resource["vaccineCode"] = vaccine or {"text": "Unspecified vaccine"}
    resource["patient"] = {"reference": f"Patient/{record['patient']}"}
    occurred = instant(record.get("administered_start"), ctx.timezone)
    if occurred:
        resource["occurrenceDateTime"] = occurred
    else:
        resource["occurrenceString"] = "Date not recorded"
    recorded = instant(record.get("created_at"), ctx.timezone)
    if recorded:
        resource["recorded"] = recorded
    source = text(record.get("record_source"))
    if source == "00":
        resource["primarySource"] = True
    elif source:
        resource["primarySource"] = False
        origin = IMMUNIZATION_ORIGIN_BY_SOURCE.get(source)
        if origin:
            resource["reportOrigin"] = {
                "coding": [{"system": IMMUNIZATION_ORIGIN, "code": origin[0]}],
                "text": origin[1],
            }
    office = text(record.get("administered_at"))
    if office and status == "completed":
        resource["location"] = {"reference": f"Location/{office}"}
    manufacturer = text(record.get("manufacturer"))
    if manufacturer:
        resource["manufacturer"] = {"display": manufacturer}
    lot = text(record.get("lot_number"))
    if lot:
        resource["lotNumber"] = lot
    site = text(record.get("site"))
    if site:
        resource["site"] = {"text": site}
    route = text(record.get("route"))
    if route:
        resource["route"] = {"text": route}
    amount = _amount(record.get("amount"))
    if amount is not None and status == "completed":
        dose: dict[str, Any] = {"value": amount}
        units = text(record.get("units"))
        if units:
            dose["unit"] = units
            if units in _UCUM_UNITS:
                dose["system"] = UCUM
                dose["code"] = _UCUM_UNITS[units]
        resource["doseQuantity"] = dose
    doctor = reference("Practitioner", record.get("ordering_doctor"))
    if doctor:
        resource["performer"] = [
            {
                "function": {
                    "coding": [
                        {"system": PERFORMER_FUNCTION, "code": "OP", "display": "Ordering Provider"}
                    ]
                },
                "actor": doctor,
            }
        ]
    comments = text(record.get("comments"))
    if comments:
        resource["note"] = [{"text": comments}]
    if text(record.get("completion_status")) == "PA":
        resource["isSubpotent"] = True
        resource["subpotentReason"] = [
            {"coding": [{"system": SUBPOTENT_REASON, "code": "partial", "display": "Partial Dose"}]}
        ]
    eligibility = text(record.get("funding_eligibility"))
    if eligibility in VFC_ELIGIBILITY_DISPLAY:
        resource["programEligibility"] = [
            {
                "coding": [
                    {
                        "system": VFC_ELIGIBILITY,
                        "code": eligibility,
                        "display": VFC_ELIGIBILITY_DISPLAY[eligibility],
                    }
                ]
            }
        ]
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="Immunization",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=UPDATED,
            endpoint="patient_vaccine_records",
            transform=transform,
            description="patient vaccine records",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-immunization-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the vaccine record")),
        SearchParam("us-core-immunization-date", LocalFilter()),
        SearchParam("us-core-immunization-status", LocalFilter()),
    ),
    author_paths=("performer.actor",),
)
