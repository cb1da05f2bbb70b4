"""ServiceRequest (us-core-servicerequest) ← one request per DrChrono lab test (an ordered
panel), grouped by its lab order through `requisition`: category SNOMED CT 108252007
"Laboratory procedure", code = the test's LOINC code, intent `order`, status from the
order's status (test cancelled → revoked), authoredOn = the order's creation, requester =
the ordering doctor, occurrence = specimen collection, reasonCode = the diagnoses (ICD-10-CM)
of the visit the order was placed at.

Vendor calls for one patient: the lab chart (see `labs`: 1 + 2 per lab order) plus the
patient's appointment list for the visit diagnoses — the query every appointment-based
source shares (APPOINTMENT_PARAMS), so it is usually already cached by Encounter or vitals.
A read: GET lab_tests/<id>, the order's three calls, and GET appointments/<visit>.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facade.core.compartment import CompartmentMapping, FetchContext, Source, fhir_id
from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
)
from mappings.drchrono import bulk_listings, labs
from mappings.drchrono.fields import APPOINTMENT_PARAMS, LAB_ORDER_CHANGED, instant, reference, text
from mappings.drchrono.valuemaps import LAB_ORDER_STATUS
from mappings.valuemaps import ICD10CM, SNOMED, US_CORE

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

PROFILE = US_CORE + "us-core-servicerequest"
SOURCE_NAME = "lab"
REQUISITION_SYSTEM = "urn:drchrono:lab-order"
LABORATORY_PROCEDURE = {
    "coding": [{"system": SNOMED, "code": "108252007", "display": "Laboratory procedure"}]
}
PRIORITY = {"N": "routine", "S": "stat"}


def _with_visits(records: list[Record], appointments: list[Record]) -> list[Record]:
    by_id = {str(a.get("id")): a for a in appointments}
    return [
        {**record, "visit": by_id.get(str(record["order"].get("appointment")), {})}
        for record in records
    ]


async def fetch(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    records = await labs.fetch_tests(client, patient_id, fc)
    if not records:
        return []
    appointments = await client.list_all(
        "appointments",
        {"patient": patient_id, **APPOINTMENT_PARAMS},
        reason=fc.reason,
        cache_ttl=fc.cache_ttl,
    )
    return _with_visits(records, appointments)


async def read(client: VendorClient, test_id: str, fc: FetchContext) -> list[Record]:
    records = await labs.read_test(client, test_id, fc)
    visit_ids = {text(r["order"].get("appointment")) for r in records} - {None}
    appointments = []
    params = {k: v for k, v in APPOINTMENT_PARAMS.items() if k != "since"}
    for visit_id in sorted(v for v in visit_ids if v):
        appointment = await client.get_record(
            "appointments", visit_id, params, reason=fc.reason, cache_ttl=fc.cache_ttl
        )
        if appointment is not None:
            appointments.append(appointment)
    return _with_visits(records, appointments)


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    test, order = record["test"], record["order"]
    patient = text(order.get("patient"))
    if patient is None:
        return []
    status = (
        "revoked"
        if text(test.get("status")) == "X"
        else LAB_ORDER_STATUS.get(text(order.get("status")))
    )
    resource: Resource = {
        "resourceType": "ServiceRequest",
        "id": fhir_id(SOURCE_NAME, test["id"]),
        "meta": {"profile": [PROFILE]},
        "requisition": {"system": REQUISITION_SYSTEM, "value": str(order["id"])},
        "status": status,
        "intent": "order",
        "category": [LABORATORY_PROCEDURE],
        "code": labs.lab_test_code(test),
        "subject": {"reference": f"Patient/{patient}"},
    }
    priority = PRIORITY.get(text(order.get("priority")) or "")
    if priority:
        resource["priority"] = priority
    collected = instant(test.get("collection_date"), ctx.timezone)
    if collected:
        resource["occurrencePeriod"] = {"start": collected, "end": collected}
    authored = instant(order.get("created_at"), ctx.timezone)
    if authored:
        resource["authoredOn"] = authored
    requester = reference("Practitioner", order.get("doctor"))
    if requester:
        resource["requester"] = requester
    reasons: list[dict[str, Any]] = []
    for code in record.get("visit", {}).get("icd10_codes") or []:
        raw = text(code.get("code") if isinstance(code, dict) else code)
        if raw:
            reasons.append({"coding": [{"system": ICD10CM, "code": raw}]})
    if reasons:
        resource["reasonCode"] = reasons
    notes = text(order.get("notes"))
    if notes:
        resource["note"] = [{"text": notes}]
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="ServiceRequest",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=LAB_ORDER_CHANGED,
            endpoint="lab_tests",
            transform=transform,
            produces={"category": frozenset({"108252007"})},
            fetch=fetch,
            read=read,
            bulk=bulk_listings.LAB_REQUESTS,
            description="lab tests joined with their lab order summary and visit diagnoses",
        ),
    ),
    search_params=(
        SearchParam("us-core-servicerequest-patient", PatientParam()),
        SearchParam("us-core-servicerequest-id", ById(lambda v: v, "the request's lab test")),
        SearchParam("us-core-servicerequest-category", LocalFilter()),
        SearchParam("us-core-servicerequest-code", LocalFilter()),
        SearchParam("us-core-servicerequest-authored", LocalFilter()),
        SearchParam("us-core-servicerequest-status", LocalFilter()),
    ),
    author_paths=("requester",),
)
