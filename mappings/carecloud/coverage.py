"""Coverage (us-core-coverage) ← the insurances of a CareCloud patient record
(`coverage-<patient key>-<insurance id>`).

One `GET /patients/{id}` per patient (the Patient read's own call, shared through the
client's cache). The payer is `Organization/payer-<patient key>-<insurance id>` (payer.py).
The period is the insurance's effective and termination dates; the status stays `active`
(FHIR's status is about the record: an ended coverage is an active record with a past period,
and a transform must not compare dates with today).

Must-support elements CareCloud has no field for: `type` (CareCloud names no plan type or
claim filing indicator, so the Source of Payment Typology code cannot be chosen; omitted).
A subscriber other than the patient is named (display) but is no RelatedPerson: CareCloud
keeps only the subscriber's name and birth date.
"""

from __future__ import annotations

from typing import Any

from facade.core.compartment import CompartmentMapping, Source
from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
)
from mappings.carecloud.fields import (
    PATIENT_RECORD_CHANGED,
    PATIENTS,
    chart_id,
    expand_guid,
    fhir_date,
    meta,
    text,
)
from mappings.carecloud.patient_record import PATIENT_FIELD, PATIENT_LISTING, patient_records
from mappings.carecloud.payer import insurances, payer_id, payer_organizations
from mappings.valuemaps import (
    COVERAGE_CLASS,
    SUBSCRIBER_RELATIONSHIP,
    SUBSCRIBER_RELATIONSHIP_CODE,
    US_CORE,
    V2_0203,
)

PROFILE = US_CORE + "us-core-coverage"
SOURCE_NAME = "coverage"
_RELATIONSHIP_DISPLAY = {
    "self": "Self",
    "spouse": "Spouse",
    "child": "Child",
    "common": "Common Law Spouse",
    "other": "Other",
}


def coverage_id(patient_id: object, insurance_id: object) -> str:
    return chart_id(SOURCE_NAME, patient_id, insurance_id)


def _class(kind: str, display: str, value: str, name: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": {"coding": [{"system": COVERAGE_CLASS, "code": kind, "display": display}]},
        "value": value,
    }
    if name:
        entry["name"] = name
    return entry


def _subscriber(plan: dict[str, Any]) -> str | None:
    person = plan.get("subscriber")
    if not isinstance(person, dict):
        return None
    names = [text(person.get(key)) for key in ("first_name", "last_name")]
    return " ".join(n for n in names if n) or None


def _coverage(
    patient_id: str, plan: dict[str, Any], record: Record, ctx: MappingContext
) -> Resource:
    resource: Resource = {
        "resourceType": "Coverage",
        "id": coverage_id(patient_id, plan["id"]),
        "meta": meta(PROFILE, record.get("updated_at") or record.get("created_at"), ctx),
    }
    member = text(plan.get("member_id"))
    if member:
        resource["identifier"] = [
            {
                "type": {"coding": [{"system": V2_0203, "code": "MB", "display": "Member Number"}]},
                "value": member,
            }
        ]
    resource["status"] = "active"
    relationship = SUBSCRIBER_RELATIONSHIP_CODE.get(text(plan.get("relationship_to_insured_code")))
    if relationship == "self":
        resource["subscriber"] = {"reference": f"Patient/{patient_id}"}
    else:
        subscriber = _subscriber(plan)
        if subscriber:
            resource["subscriber"] = {"display": subscriber}
    if member:
        resource["subscriberId"] = member
    resource["beneficiary"] = {"reference": f"Patient/{patient_id}"}
    resource["relationship"] = {
        "coding": [
            {
                "system": SUBSCRIBER_RELATIONSHIP,
                "code": relationship,
                "display": _RELATIONSHIP_DISPLAY.get(relationship, relationship.title()),
            }
        ]
    }
    period: dict[str, str] = {}
    start = fhir_date(plan.get("effective_date"))
    if start:
        period["start"] = start
    end = fhir_date(plan.get("termination_date"))
    if end:
        period["end"] = end
    if period:
        resource["period"] = period
    payor: dict[str, str] = {"reference": f"Organization/{payer_id(patient_id, plan['id'])}"}
    payer = text(plan.get("payer_name"))
    if payer:
        payor["display"] = payer
    resource["payor"] = [payor]
    classes: list[dict[str, Any]] = []
    group = text(plan.get("group_number"))
    if group:
        classes.append(_class("group", "Group", group, None))
    plan_name = text(plan.get("plan_name"))
    if plan_name:
        classes.append(_class("plan", "Plan", plan_name, plan_name))
    if classes:
        resource["class"] = classes
    priority = plan.get("priority")
    if isinstance(priority, int) and priority > 0:
        resource["order"] = priority
    return resource


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    patient_id = str(record["id"])
    return [_coverage(patient_id, plan, record, ctx) for plan in insurances(record)]


MAPPING = CompartmentMapping(
    resource_type="Coverage",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=PATIENT_RECORD_CHANGED,
            endpoint=PATIENTS,
            patient_param=PATIENT_FIELD,
            vendor_key=expand_guid,
            transform=transform,
            fetch=patient_records,
            read=patient_records,
            bulk=PATIENT_LISTING,
            companions=payer_organizations,
            description="the patient's insurances (patient record)",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-coverage-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the patient's insurance")),
    ),
    notes="No Coverage.type: CareCloud names no plan type. Eligibility is not mapped (a"
    " per-check answer, not part of the coverage record).",
)
