"""Organization (us-core-organization) ← the CareCloud business entity (the practice), from
`GET /authorization`; and the payers a patient's insurances name (payer.py, read by id).

The practice's id is the business entity GUID (also the context's practice id, which every
managingOrganization and serviceProvider references). CareCloud's /authorization answers one
object, not a list: the client hands it over as a one-record list, and `derive` takes the
business entity out of it. Must-support elements all have a field.
"""

from __future__ import annotations

from typing import Any

from facade.core.mapping import (
    ById,
    LocalFilter,
    Lookups,
    MappingContext,
    Record,
    Resource,
    ResourceMapping,
    SearchParam,
)
from mappings.carecloud.fields import (
    AUTHORIZATION,
    BUSINESS_ENTITY_ID_SYSTEM,
    PRACTICE_LIST_UNCHANGED,
    address,
    phone,
    text,
)
from mappings.carecloud.payer import payer_patient, read_payer
from mappings.valuemaps import NPI_SYSTEM, US_CORE

PROFILE = US_CORE + "us-core-organization"


def business_entities(
    records: list[Record], _lookups: Lookups, ctx: MappingContext
) -> list[Record]:
    """The business entity of each /authorization answer (or a business entity as is)."""
    found: list[Record] = []
    for record in records:
        entity = record.get("business_entity", record)
        if isinstance(entity, dict) and text(entity.get("id")):
            found.append(entity)
    return found


def transform(record: Record, ctx: MappingContext) -> Resource:
    entity_id = str(record["id"])
    identifiers: list[dict[str, Any]] = []
    npi = text(record.get("npi"))
    if npi:
        identifiers.append({"system": NPI_SYSTEM, "value": npi})
    identifiers.append({"system": BUSINESS_ENTITY_ID_SYSTEM, "value": entity_id})
    resource: Resource = {
        "resourceType": "Organization",
        "id": entity_id,
        "meta": {"profile": [PROFILE]},
        "identifier": identifiers,
        "active": True,
        "name": text(record.get("name")) or ctx.practice_name,
    }
    number = phone(record.get("phone_number"))
    if number:
        resource["telecom"] = [{"system": "phone", "value": number, "use": "work"}]
    work = address(record.get("address"), use="work")
    if work:
        resource["address"] = [work]
    return resource


MAPPING = ResourceMapping(
    resource_type="Organization",
    last_updated=PRACTICE_LIST_UNCHANGED,
    profile=PROFILE,
    endpoint=AUTHORIZATION,
    transform=transform,
    derive=business_entities,
    read="scan",
    lookup_data=True,
    vendor_id=lambda fhir_id: fhir_id,
    read_other=read_payer,
    patient_in_id=payer_patient,
    search_params=(
        SearchParam("Resource-id", ById(lambda v: v, "the business entity")),
        SearchParam("us-core-organization-name", LocalFilter()),
        SearchParam("us-core-organization-address", LocalFilter()),
    ),
    notes="The practice (CareCloud business entity). Payer Organizations are read by id and"
    " exported beside the Coverage that names them; they are not listed by a search.",
)
