"""Organization (us-core-organization) ← the DrChrono practice group.

DrChrono has no practice endpoint: the practice is what /api/doctors records share
(practice_group, practice_group_name, group_npi_number), with its first office's address.
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
    PRACTICE_ID_SYSTEM,
    PRACTICE_LIST_UNCHANGED,
    phone,
    text,
    us_address,
)
from mappings.drchrono.payer import payer_patient, read_payer
from mappings.valuemaps import NPI_SYSTEM, US_CORE

PROFILE = US_CORE + "us-core-organization"


def first_office(offices: list[Record], doctor_ids: set[str] | None = None) -> Record | None:
    """The lowest-id unarchived office, owned by one of `doctor_ids` when given."""
    candidates = sorted((o for o in offices if not o.get("archived")), key=lambda o: int(o["id"]))
    if doctor_ids is not None:
        owned = [o for o in candidates if str(o.get("doctor")) in doctor_ids]
        candidates = owned or candidates
    return candidates[0] if candidates else None


def derive_practices(doctors: list[Record], lookups: Lookups, ctx: MappingContext) -> list[Record]:
    practices: dict[str, Record] = {}
    for doctor in sorted(doctors, key=lambda d: int(d["id"])):
        group = text(doctor.get("practice_group")) or ctx.practice_group_id
        practice = practices.setdefault(
            group,
            {
                "id": group,
                "name": text(doctor.get("practice_group_name")) or ctx.practice_name,
                "group_npi_number": None,
                "doctor_ids": set(),
            },
        )
        practice["doctor_ids"].add(str(doctor["id"]))
        if practice["group_npi_number"] is None:
            practice["group_npi_number"] = text(doctor.get("group_npi_number"))
    for practice in practices.values():
        practice["office"] = first_office(list(lookups.get("offices", [])), practice["doctor_ids"])
    return list(practices.values())


def transform(record: Record, ctx: MappingContext) -> Resource:
    identifiers: list[dict[str, Any]] = []
    if record.get("group_npi_number"):
        identifiers.append({"system": NPI_SYSTEM, "value": record["group_npi_number"]})
    identifiers.append({"system": PRACTICE_ID_SYSTEM, "value": str(record["id"])})
    resource: Resource = {
        "resourceType": "Organization",
        "id": str(record["id"]),
        "meta": {"profile": [PROFILE]},
        "identifier": identifiers,
        "active": True,
        "name": record.get("name") or ctx.practice_name,
    }
    office = record.get("office")
    if office:
        telecom = []
        number = phone(office.get("phone_number"))
        if number:
            telecom.append({"system": "phone", "value": number, "use": "work"})
        fax = phone(office.get("fax_number"))
        if fax:
            telecom.append({"system": "fax", "value": fax, "use": "work"})
        if telecom:
            resource["telecom"] = telecom
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


MAPPING = ResourceMapping(
    resource_type="Organization",
    last_updated=PRACTICE_LIST_UNCHANGED,
    profile=PROFILE,
    endpoint="doctors",
    transform=transform,
    lookups=("offices",),
    derive=derive_practices,
    read="scan",
    lookup_data=True,
    vendor_id=lambda fhir_id: fhir_id,
    read_other=read_payer,
    patient_in_id=payer_patient,
    search_params=(
        SearchParam("Resource-id", ById(lambda v: v, "picked from the practice list")),
        SearchParam("us-core-organization-name", LocalFilter()),
        SearchParam("us-core-organization-address", LocalFilter()),
    ),
    notes="One Organization per practice group, derived from /api/doctors and /api/offices.",
)
