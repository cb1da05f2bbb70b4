"""Location (us-core-location) ← CareCloud /locations.

The type is the CMS place-of-service code CareCloud records for claims. CareCloud locations
carry no status, so each is active. Must-support elements all have a field.
"""

from __future__ import annotations

from typing import Any

from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    Record,
    Resource,
    ResourceMapping,
    SearchParam,
)
from mappings.carecloud.fields import (
    LOCATION_ID_SYSTEM,
    LOCATIONS,
    PRACTICE_LIST_UNCHANGED,
    address,
    integer_id,
    phone,
    text,
)
from mappings.valuemaps import US_CORE, ValueMap

PROFILE = US_CORE + "us-core-location"
POS_SYSTEM = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"

PLACE_OF_SERVICE = ValueMap(
    name="place-of-service",
    source="CMS Place of Service Code Set (the ambulatory codes a practice location uses)",
    entries={
        "02": "Telehealth Provided Other than in Patient's Home",
        "10": "Telehealth Provided in Patient's Home",
        "11": "Office",
        "19": "Off Campus-Outpatient Hospital",
        "22": "On Campus-Outpatient Hospital",
        "49": "Independent Clinic",
        "50": "Federally Qualified Health Center",
        "71": "Public Health Clinic",
        "72": "Rural Health Clinic",
    },
    fallback=None,
)


def _type(record: Record) -> dict[str, Any] | None:
    code = text(record.get("place_of_service_code"))
    if code is None:
        return None
    coding = {"system": POS_SYSTEM, "code": code}
    display = PLACE_OF_SERVICE.get(code)
    if display:
        coding["display"] = display
    return {"coding": [coding], **({"text": display} if display else {})}


def transform(record: Record, ctx: MappingContext) -> Resource:
    location_id = str(record["id"])
    resource: Resource = {
        "resourceType": "Location",
        "id": location_id,
        "meta": {"profile": [PROFILE]},
        "identifier": [{"system": LOCATION_ID_SYSTEM, "value": location_id}],
        "status": "active",
        "name": text(record.get("name")) or f"Location {location_id}",
        "mode": "instance",
    }
    kind = _type(record)
    if kind:
        resource["type"] = [kind]
    telecom = []
    for entry in record.get("phones") or ():
        number = phone(entry.get("phone_number"))
        if number:
            telecom.append({"system": "phone", "value": number, "use": "work"})
    if telecom:
        resource["telecom"] = telecom
    work = address(record.get("address"), use="work")
    if work:
        resource["address"] = work
    resource["managingOrganization"] = {"reference": f"Organization/{ctx.practice_group_id}"}
    return resource


MAPPING = ResourceMapping(
    resource_type="Location",
    last_updated=PRACTICE_LIST_UNCHANGED,
    profile=PROFILE,
    endpoint=LOCATIONS,
    transform=transform,
    lookup_data=True,
    vendor_id=integer_id,
    search_params=(
        SearchParam("Resource-id", ById(integer_id, "location id")),
        SearchParam("us-core-location-name", LocalFilter()),
        SearchParam("us-core-location-address", LocalFilter()),
        SearchParam("us-core-location-address-city", LocalFilter()),
        SearchParam("us-core-location-address-state", LocalFilter()),
        SearchParam("us-core-location-address-postalcode", LocalFilter()),
    ),
    combinations=((("name",), "SHALL"), (("address",), "SHALL")),
    notes="Every CareCloud location; the practice list is read whole and cached.",
)
