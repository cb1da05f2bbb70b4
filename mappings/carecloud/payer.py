"""Payer Organizations (us-core-organization) ← the insurances of a CareCloud patient.

CareCloud keeps no payer records an insurance points at: each insurance names its payer
(`payer_id`, `payer_name`). Coverage.payor references
`Organization/payer-<patient key>-<insurance id>`, and this module reads that Organization
back from the patient record. No MAPPING here: the Organization mapping (organization.py)
calls `read_payer` for ids it does not own, and Coverage writes these as export companions.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from facade.core.compartment import FetchContext
from facade.core.mapping import MappingContext, Record, Resource, with_last_updated
from mappings.carecloud.fields import (
    PATIENT_RECORD_CHANGED,
    PAYER_ID_SYSTEM,
    chart_id,
    expand_guid,
    text,
)
from mappings.carecloud.patient_record import patient_detail
from mappings.valuemaps import US_CORE

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

PROFILE = US_CORE + "us-core-organization"
PAYER_TYPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/organization-type",
            "code": "pay",
            "display": "Payer",
        }
    ]
}

_PAYER_ID = re.compile(r"payer-([a-z2-7]{26})-(\d+)")


def payer_id(patient_id: object, insurance_id: object) -> str:
    return chart_id("payer", patient_id, insurance_id)


def payer_patient(fhir_id: str) -> str | None:
    """The patient whose insurance a payer Organization id names (`patient_in_id`)."""
    match = _PAYER_ID.fullmatch(fhir_id)
    return expand_guid(match[1]) if match else None


def insurances(record: Record) -> list[dict[str, Any]]:
    """The patient's insurances that name a payer or a member, by priority."""
    found = [
        plan
        for plan in record.get("insurances") or ()
        if isinstance(plan, dict)
        and plan.get("id") is not None
        and (text(plan.get("payer_name")) or text(plan.get("member_id")))
    ]
    return sorted(found, key=lambda plan: (plan.get("priority") or 99, plan["id"]))


def payer_organization(patient_id: object, plan: dict[str, Any]) -> Resource:
    resource: Resource = {
        "resourceType": "Organization",
        "id": payer_id(patient_id, plan["id"]),
        "meta": {"profile": [PROFILE]},
    }
    payer = text(plan.get("payer_id"))
    if payer:
        resource["identifier"] = [{"system": PAYER_ID_SYSTEM, "value": payer}]
    resource["active"] = True
    resource["type"] = [PAYER_TYPE]
    resource["name"] = text(plan.get("payer_name")) or "Unnamed payer"
    return resource


def payer_organizations(record: Record, _ctx: MappingContext) -> list[Resource]:
    """The payer Organizations of a patient record's insurances (Coverage.payor)."""
    return [payer_organization(record["id"], plan) for plan in insurances(record)]


async def read_payer(
    client: VendorClient, fhir_id: str, context: FetchContext
) -> dict[str, Any] | None:
    """`Organization/payer-<patient key>-<insurance id>`, or None for any other id."""
    match = _PAYER_ID.fullmatch(fhir_id)
    if match is None:
        return None
    record = await patient_detail(client, match[1], context)
    if record is None:
        return None
    for plan in insurances(record):
        if str(plan["id"]) == match[2]:
            found = [payer_organization(record["id"], plan)]
            return with_last_updated(found, record, context.ctx, PATIENT_RECORD_CHANGED)[0]
    return None
