"""Practitioner (us-core-practitioner) ← CareCloud /providers, with the address of the
provider's first location (from /locations) as the work address.

CareCloud providers carry no status, so every provider is active; their `credentials`
("MD") are the name's suffix. Must-support elements all have a field.
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
    LOCATIONS,
    PRACTICE_LIST_UNCHANGED,
    PROVIDER_ID_SYSTEM,
    PROVIDERS,
    address,
    integer_id,
    phone,
    text,
)
from mappings.valuemaps import NPI_SYSTEM, US_CORE

PROFILE = US_CORE + "us-core-practitioner"


def provider_locations(provider: Record, locations: list[Record]) -> list[Record]:
    """The locations a provider works at, in the provider's order (unknown ids skipped)."""
    by_id = {str(location.get("id")): location for location in locations}
    found = (by_id.get(str(i)) for i in provider.get("location_ids") or ())
    return [location for location in found if location is not None]


def attach_location(providers: list[Record], lookups: Lookups, ctx: MappingContext) -> list[Record]:
    locations = list(lookups.get(LOCATIONS, []))
    attached = []
    for provider in providers:
        mine = provider_locations(provider, locations)
        attached.append({**provider, "_location": mine[0] if mine else None})
    return attached


def transform(record: Record, ctx: MappingContext) -> Resource:
    provider_id = str(record["id"])
    identifiers: list[dict[str, Any]] = []
    npi = text(record.get("npi"))
    if npi:
        identifiers.append({"system": NPI_SYSTEM, "value": npi})
    identifiers.append({"system": PROVIDER_ID_SYSTEM, "value": provider_id})
    name: dict[str, Any] = {"use": "official", "family": text(record.get("last_name")) or "Unknown"}
    given = text(record.get("first_name"))
    if given:
        name["given"] = [given]
    credentials = text(record.get("credentials"))
    if credentials:
        name["suffix"] = [credentials]
    resource: Resource = {
        "resourceType": "Practitioner",
        "id": provider_id,
        "meta": {"profile": [PROFILE]},
        "identifier": identifiers,
        "active": True,
        "name": [name],
    }
    telecom = []
    number = phone(record.get("phone_number"))
    if number:
        telecom.append({"system": "phone", "value": number, "use": "work"})
    email = text(record.get("email"))
    if email:
        telecom.append({"system": "email", "value": email, "use": "work"})
    if telecom:
        resource["telecom"] = telecom
    location = record.get("_location")
    if isinstance(location, dict):
        work = address(location.get("address"), use="work")
        if work:
            resource["address"] = [work]
    return resource


def _provider_id_from_identifier(value: str) -> str | None:
    system, _, code = value.rpartition("|")
    return code if system == PROVIDER_ID_SYSTEM and code.isdigit() else None


MAPPING = ResourceMapping(
    resource_type="Practitioner",
    last_updated=PRACTICE_LIST_UNCHANGED,
    profile=PROFILE,
    endpoint=PROVIDERS,
    transform=transform,
    lookups=(LOCATIONS,),
    derive=attach_location,
    lookup_data=True,
    vendor_id=integer_id,
    search_params=(
        SearchParam("us-core-practitioner-id", ById(integer_id, "provider id")),
        SearchParam(
            "us-core-practitioner-identifier",
            ById(_provider_id_from_identifier, f"{PROVIDER_ID_SYSTEM} ids; NPI filtered locally"),
        ),
        SearchParam("us-core-practitioner-name", LocalFilter()),
    ),
    combinations=((("name",), "SHALL"), (("identifier",), "SHALL"), (("_id",), "SHOULD")),
    notes="Every CareCloud provider; the practice list is read whole and cached.",
)
