"""Payer Organizations (us-core-organization) ← the insurance objects of a DrChrono patient.

DrChrono has no payer records a patient's insurance points at: each insurance object names
its payer (`insurance_company`, `insurance_payer_id`). Coverage.payor references
`Organization/payer-<patient id>-<1|2|3>` (primary, secondary, tertiary), and this module
reads that Organization back from the patient's verbose record. No MAPPING here: the
Organization mapping (practice.py) calls `read_payer` for ids it does not own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from facade.core.compartment import FetchContext
from facade.core.mapping import MappingContext, Record, Resource, with_last_updated
from mappings.drchrono.fields import PATIENT_RECORD_CHANGED, text
from mappings.drchrono.valuemaps import PAYER_ID_SYSTEM
from mappings.valuemaps import US_CORE

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

PROFILE = US_CORE + "us-core-organization"
#: The insurance objects that become Coverage, by Coverage.order.
SLOTS = {1: "primary_insurance", 2: "secondary_insurance", 3: "tertiary_insurance"}
#: The Patient read's own query (insurance is verbose-only), so both share one cached call.
PATIENT_DETAIL_PARAMS = {"show_inactive": "true", "verbose": "true"}

_PAYER_ID = re.compile(r"payer-(\d+)-([123])")


def payer_id(patient_id: object, order: int) -> str:
    return f"payer-{patient_id}-{order}"


def payer_patient(fhir_id: str) -> str | None:
    """The patient whose insurance a payer Organization id names (`patient_in_id`)."""
    match = _PAYER_ID.fullmatch(fhir_id)
    return match[1] if match else None


def insurance(record: Record, order: int) -> dict[str, Any] | None:
    """The patient's insurance object in slot `order`, or None when the slot is empty."""
    value = record.get(SLOTS[order])
    if not isinstance(value, dict):
        return None
    if not (text(value.get("insurance_company")) or text(value.get("insurance_id_number"))):
        return None
    return value


def payer_organization(patient_id: object, order: int, plan: dict[str, Any]) -> Resource:
    resource: Resource = {
        "resourceType": "Organization",
        "id": payer_id(patient_id, order),
        "meta": {"profile": [PROFILE]},
    }
    payer = text(plan.get("insurance_payer_id"))
    if payer:
        resource["identifier"] = [{"system": PAYER_ID_SYSTEM, "value": payer}]
    resource["active"] = True
    resource["type"] = [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                    "code": "pay",
                    "display": "Payer",
                }
            ]
        }
    ]
    resource["name"] = text(plan.get("insurance_company")) or "Unnamed payer"
    return resource


def payer_organizations(record: Record, _ctx: MappingContext) -> list[Resource]:
    """The payer Organizations of a verbose patient record's insurance (Coverage.payor)."""
    return [
        payer_organization(record["id"], order, plan)
        for order in SLOTS
        if (plan := insurance(record, order)) is not None
    ]


async def patient_detail(
    client: VendorClient, patient_id: str, context: FetchContext
) -> Record | None:
    return await client.get_record(
        "patients",
        patient_id,
        dict(PATIENT_DETAIL_PARAMS),
        reason=context.reason,
        cache_ttl=context.cache_ttl,
    )


async def patient_records(
    client: VendorClient, patient_id: str, context: FetchContext
) -> list[Record]:
    """The verbose patient record as a source's records (Coverage and RelatedPerson share
    this one cached vendor call)."""
    record = await patient_detail(client, patient_id, context)
    return [record] if record is not None else []


async def read_payer(
    client: VendorClient, fhir_id: str, context: FetchContext
) -> dict[str, Any] | None:
    """`Organization/payer-<patient id>-<order>`, or None for any other id."""
    match = _PAYER_ID.fullmatch(fhir_id)
    if match is None:
        return None
    patient_id, order = match[1], int(match[2])
    record = await patient_detail(client, patient_id, context)
    plan = insurance(record, order) if record is not None else None
    if plan is None or record is None:
        return None
    found = [payer_organization(patient_id, order, plan)]
    return with_last_updated(found, record, context.ctx, PATIENT_RECORD_CHANGED)[0]
