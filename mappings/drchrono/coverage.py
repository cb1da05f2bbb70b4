"""Coverage (us-core-coverage) ← the primary, secondary and tertiary insurance objects of a
DrChrono patient (verbose-only fields of /api/patients/{id}).

One patient detail call per patient (the Patient read's own query, so it is shared through
the client's cache). The payer is `Organization/payer-<patient id>-<order>` (payer.py). Plan
type follows the X12 claim filing indicator, mapped to the Source of Payment Typology
(shared/research/upstreams.md §5.13). DrChrono keeps no coverage dates, so there is no period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from mappings.drchrono import bulk_listings
from mappings.drchrono.fields import PATIENT_RECORD_CHANGED, meta, text
from mappings.drchrono.payer import (
    SLOTS,
    insurance,
    patient_records,
    payer_id,
    payer_organizations,
)
from mappings.valuemaps import (
    COVERAGE_CLASS,
    PAYER_TYPE,
    SOPT,
    SUBSCRIBER_RELATIONSHIP,
    SUBSCRIBER_RELATIONSHIP_CODE,
    US_CORE,
    V2_0203,
)

if TYPE_CHECKING:
    pass

PROFILE = US_CORE + "us-core-coverage"
SOURCE_NAME = "coverage"
_RELATIONSHIP_DISPLAY = {
    "self": "Self",
    "spouse": "Spouse",
    "child": "Child",
    "common": "Common Law Spouse",
    "other": "Other",
}


def _class(kind: str, display: str, value: str, name: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": {"coding": [{"system": COVERAGE_CLASS, "code": kind, "display": display}]},
        "value": value,
    }
    if name:
        entry["name"] = name
    return entry


def _coverage(
    patient_id: str, order: int, plan: dict[str, Any], updated_at: Any, ctx: MappingContext
) -> Resource:
    resource: Resource = {
        "resourceType": "Coverage",
        "id": fhir_id(SOURCE_NAME, patient_id, order),
        "meta": meta(PROFILE, updated_at, ctx),
    }
    member = text(plan.get("insurance_id_number"))
    if member:
        resource["identifier"] = [
            {
                "type": {"coding": [{"system": V2_0203, "code": "MB", "display": "Member Number"}]},
                "value": member,
            }
        ]
    resource["status"] = "active"
    code, display = PAYER_TYPE.get(text(plan.get("insurance_plan_type")))
    resource["type"] = {"coding": [{"system": SOPT, "code": code, "display": display}]}
    if plan.get("is_subscriber_the_patient") is not False:
        resource["subscriber"] = {"reference": f"Patient/{patient_id}"}
        relationship = "self"
    else:
        relationship = SUBSCRIBER_RELATIONSHIP_CODE.get(
            text(plan.get("patient_relationship_to_subscriber"))
        )
        names = [
            text(plan.get(key))
            for key in ("subscriber_first_name", "subscriber_middle_name", "subscriber_last_name")
        ]
        subscriber = " ".join(n for n in names if n)
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
    payer = text(plan.get("insurance_company"))
    payor: dict[str, str] = {"reference": f"Organization/{payer_id(patient_id, order)}"}
    if payer:
        payor["display"] = payer
    resource["payor"] = [payor]
    classes: list[dict[str, Any]] = []
    group = text(plan.get("insurance_group_number"))
    if group:
        classes.append(_class("group", "Group", group, text(plan.get("insurance_group_name"))))
    plan_name = text(plan.get("insurance_plan_name"))
    if plan_name:
        classes.append(_class("plan", "Plan", plan_name, plan_name))
    if classes:
        resource["class"] = classes
    resource["order"] = order
    return resource


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    patient_id = str(record["id"])
    resources: list[Resource] = []
    for order in SLOTS:
        plan = insurance(record, order)
        if plan is not None:
            resources.append(_coverage(patient_id, order, plan, record.get("updated_at"), ctx))
    return resources


MAPPING = CompartmentMapping(
    resource_type="Coverage",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=PATIENT_RECORD_CHANGED,
            endpoint="patients",
            transform=transform,
            fetch=patient_records,
            read=patient_records,
            bulk=bulk_listings.PATIENTS_VERBOSE,
            companions=payer_organizations,
            description="the patient's primary/secondary/tertiary insurance (verbose detail)",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-coverage-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the patient's insurance")),
    ),
    notes="No Coverage.period: DrChrono insurance objects carry no effective dates.",
)
