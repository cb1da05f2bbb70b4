"""PractitionerRole (us-core-practitionerrole) ← CareCloud providers × the locations they work
at (`location_ids`): id `<provider id>-<location id>`. The specialty is CareCloud's NUCC
taxonomy code, in both `code` and `specialty` (US Core binds both to NUCC).

Must-support elements CareCloud has no field for: `endpoint` (CareCloud lists no Direct
addresses or other electronic endpoints).
"""

from __future__ import annotations

from typing import Any

from facade.core.mapping import (
    ById,
    Include,
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
    PROVIDERS,
    phone,
    text,
)
from mappings.carecloud.practitioner import provider_locations
from mappings.valuemaps import NUCC, US_CORE

PROFILE = US_CORE + "us-core-practitionerrole"


def specialty(provider: Record) -> dict[str, Any] | None:
    """The provider's NUCC taxonomy as a concept (text only without a code). CareCloud's
    specialty name is the concept's text, not the coding's display: NUCC's own display of a
    code ("Family Medicine Physician") differs from the specialty's name ("Family Medicine")."""
    value = provider.get("specialty")
    if not isinstance(value, dict):
        return None
    code = text(value.get("taxonomy"))
    name = text(value.get("name"))
    if code is None:
        return {"text": name} if name else None
    concept: dict[str, Any] = {"coding": [{"system": NUCC, "code": code}]}
    if name:
        concept["text"] = name
    return concept


def role_id(provider_id: object, location_id: object) -> str:
    return f"{provider_id}-{location_id}"


def _role_vendor_id(fhir_id: str) -> str | None:
    provider, sep, location = fhir_id.partition("-")
    return fhir_id if sep and provider.isdigit() and location.isdigit() else None


def derive_roles(providers: list[Record], lookups: Lookups, ctx: MappingContext) -> list[Record]:
    locations = list(lookups.get(LOCATIONS, []))
    roles: list[Record] = []
    for provider in sorted(providers, key=lambda p: int(p["id"])):
        for location in provider_locations(provider, locations):
            roles.append({**provider, "_location": location})
    return roles


def transform(record: Record, ctx: MappingContext) -> Resource:
    location: Record = record["_location"]
    resource: Resource = {
        "resourceType": "PractitionerRole",
        "id": role_id(record["id"], location["id"]),
        "meta": {"profile": [PROFILE]},
        "active": True,
        "practitioner": {"reference": f"Practitioner/{record['id']}"},
        "organization": {"reference": f"Organization/{ctx.practice_group_id}"},
    }
    concept = specialty(record)
    if concept:
        resource["code"] = [concept]
        resource["specialty"] = [concept]
    resource["location"] = [{"reference": f"Location/{location['id']}"}]
    telecom = []
    number = phone(record.get("phone_number"))
    if number:
        telecom.append({"system": "phone", "value": number, "use": "work"})
    for entry in location.get("phones") or ():
        main = phone(entry.get("phone_number"))
        if main and main != number:
            telecom.append({"system": "phone", "value": main, "use": "work"})
    email = text(record.get("email"))
    if email:
        telecom.append({"system": "email", "value": email, "use": "work"})
    if telecom:
        resource["telecom"] = telecom
    return resource


MAPPING = ResourceMapping(
    resource_type="PractitionerRole",
    last_updated=PRACTICE_LIST_UNCHANGED,
    profile=PROFILE,
    endpoint=PROVIDERS,
    transform=transform,
    lookups=(LOCATIONS,),
    derive=derive_roles,
    read="scan",
    lookup_data=True,
    vendor_id=_role_vendor_id,
    search_params=(
        SearchParam("Resource-id", ById(_role_vendor_id, "picked from the practice list")),
        SearchParam("us-core-practitionerrole-specialty", LocalFilter()),
        SearchParam("us-core-practitionerrole-practitioner", LocalFilter()),
    ),
    combinations=((("specialty",), "SHALL"), (("practitioner",), "SHALL")),
    includes=(Include("PractitionerRole:practitioner", ("practitioner",), "Practitioner"),),
    notes="Provider × location; CareCloud has no Direct addresses or other endpoints to list"
    " (PractitionerRole:endpoint is not offered).",
)
