"""Location (us-core-location) ← DrChrono /api/offices."""

from __future__ import annotations

from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    Record,
    Resource,
    ResourceMapping,
    SearchParam,
)
from mappings.drchrono.fields import (
    OFFICE_ID_SYSTEM,
    PRACTICE_LIST_UNCHANGED,
    phone,
    text,
    us_address,
)
from mappings.valuemaps import US_CORE

PROFILE = US_CORE + "us-core-location"


def transform(record: Record, ctx: MappingContext) -> Resource:
    office_id = str(record["id"])
    resource: Resource = {
        "resourceType": "Location",
        "id": office_id,
        "meta": {"profile": [PROFILE]},
        "identifier": [{"system": OFFICE_ID_SYSTEM, "value": office_id}],
        "status": "inactive" if record.get("archived") else "active",
        "name": text(record.get("name")) or f"Office {office_id}",
        "mode": "instance",
    }
    telecom = []
    number = phone(record.get("phone_number"))
    if number:
        telecom.append({"system": "phone", "value": number, "use": "work"})
    fax = phone(record.get("fax_number"))
    if fax:
        telecom.append({"system": "fax", "value": fax, "use": "work"})
    if telecom:
        resource["telecom"] = telecom
    address = us_address(
        record.get("address"),
        record.get("city"),
        record.get("state"),
        record.get("zip_code"),
        use="work",
    )
    if address:
        resource["address"] = address
    resource["managingOrganization"] = {"reference": f"Organization/{ctx.practice_group_id}"}
    return resource


MAPPING = ResourceMapping(
    resource_type="Location",
    last_updated=PRACTICE_LIST_UNCHANGED,
    profile=PROFILE,
    endpoint="offices",
    transform=transform,
    lookup_data=True,
    fixed_params={"show_archived": "true"},
    search_params=(
        SearchParam("Resource-id", ById(lambda v: v if v.isdigit() else None, "office id")),
        SearchParam("us-core-location-name", LocalFilter()),
        SearchParam("us-core-location-address", LocalFilter()),
        SearchParam("us-core-location-address-city", LocalFilter()),
        SearchParam("us-core-location-address-state", LocalFilter()),
        SearchParam("us-core-location-address-postalcode", LocalFilter()),
    ),
)
