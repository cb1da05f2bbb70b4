"""Practitioner (us-core-practitioner) ← DrChrono /api/doctors, with the doctor's office
address (from /api/offices) as the work address.
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
from mappings.drchrono.fields import (
    DOCTOR_ID_SYSTEM,
    PRACTICE_LIST_UNCHANGED,
    phone,
    text,
    us_address,
)
from mappings.drchrono.practice import first_office
from mappings.valuemaps import NPI_SYSTEM, US_CORE

PROFILE = US_CORE + "us-core-practitioner"


def attach_office(doctors: list[Record], lookups: Lookups, ctx: MappingContext) -> list[Record]:
    offices = list(lookups.get("offices", []))
    return [{**d, "_office": first_office(offices, {str(d["id"])})} for d in doctors]


def transform(record: Record, ctx: MappingContext) -> Resource:
    doctor_id = str(record["id"])
    identifiers: list[dict[str, Any]] = []
    npi = text(record.get("npi_number"))
    if npi:
        identifiers.append({"system": NPI_SYSTEM, "value": npi})
    identifiers.append({"system": DOCTOR_ID_SYSTEM, "value": doctor_id})
    name: dict[str, Any] = {"use": "official", "family": text(record.get("last_name")) or "Unknown"}
    given = text(record.get("first_name"))
    if given:
        name["given"] = [given]
    suffix = text(record.get("suffix"))
    if suffix:
        name["suffix"] = [suffix]
    resource: Resource = {
        "resourceType": "Practitioner",
        "id": doctor_id,
        "meta": {"profile": [PROFILE]},
        "identifier": identifiers,
        "active": not record.get("is_account_suspended", False),
        "name": [name],
    }
    telecom = []
    for field, use in (("office_phone", "work"), ("cell_phone", "mobile"), ("home_phone", "home")):
        number = phone(record.get(field))
        if number:
            telecom.append({"system": "phone", "value": number, "use": use})
    email = text(record.get("email"))
    if email:
        telecom.append({"system": "email", "value": email, "use": "work"})
    if telecom:
        resource["telecom"] = telecom
    office = record.get("_office")
    if office:
        address = us_address(
            office.get("address"),
            office.get("city"),
            office.get("state"),
            office.get("zip_code"),
            use="work",
        )
        if address:
            resource["address"] = [address]
    return resource


def _doctor_id_from_identifier(value: str) -> str | None:
    system, _, code = value.rpartition("|")
    return code if system == DOCTOR_ID_SYSTEM and code.isdigit() else None


MAPPING = ResourceMapping(
    resource_type="Practitioner",
    last_updated=PRACTICE_LIST_UNCHANGED,
    profile=PROFILE,
    endpoint="doctors",
    transform=transform,
    lookups=("offices",),
    derive=attach_office,
    lookup_data=True,
    search_params=(
        SearchParam(
            "us-core-practitioner-id",
            ById(lambda v: v if v.isdigit() else None, "doctor id"),
        ),
        SearchParam(
            "us-core-practitioner-identifier",
            ById(_doctor_id_from_identifier, "urn:drchrono:doctor ids; NPI filtered locally"),
        ),
        SearchParam("us-core-practitioner-name", LocalFilter()),
    ),
)
