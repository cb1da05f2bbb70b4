"""PractitionerRole (us-core-practitionerrole) ← DrChrono doctors × the offices they own
(else the practice's first office): id `<doctor id>-<office id>`. The specialty is DrChrono's
free text, coded by a curated NUCC taxonomy table; unknown specialties stay text.
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
from mappings.drchrono.fields import PRACTICE_LIST_UNCHANGED, phone, text
from mappings.drchrono.practice import first_office
from mappings.drchrono.valuemaps import NUCC_SPECIALTY
from mappings.valuemaps import NUCC, US_CORE

PROFILE = US_CORE + "us-core-practitionerrole"


def specialty(doctor: Record) -> dict[str, Any] | None:
    """The doctor's specialty as a NUCC concept (text only when the table lacks it)."""
    raw = text(doctor.get("specialty"))
    if raw is None:
        return None
    mapped = NUCC_SPECIALTY.get(raw.lower())
    concept: dict[str, Any] = {"text": raw}
    if mapped:
        concept = {"coding": [{"system": NUCC, **mapped}], "text": raw}
    return concept


def role_id(doctor_id: object, office_id: object) -> str:
    return f"{doctor_id}-{office_id}"


def derive_roles(doctors: list[Record], lookups: Lookups, ctx: MappingContext) -> list[Record]:
    offices = [o for o in lookups.get("offices", []) if not o.get("archived")]
    roles: list[Record] = []
    for doctor in sorted(doctors, key=lambda d: int(d["id"])):
        owned = sorted(
            (o for o in offices if str(o.get("doctor")) == str(doctor["id"])),
            key=lambda o: int(o["id"]),
        )
        fallback = first_office(list(offices))
        for office in owned or ([fallback] if fallback else []):
            roles.append({**doctor, "_office": office})
    return roles


def transform(record: Record, ctx: MappingContext) -> Resource:
    office: Record = record["_office"]
    resource: Resource = {
        "resourceType": "PractitionerRole",
        "id": role_id(record["id"], office["id"]),
        "meta": {"profile": [PROFILE]},
        "active": not record.get("is_account_suspended", False),
        "practitioner": {"reference": f"Practitioner/{record['id']}"},
        "organization": {"reference": f"Organization/{ctx.practice_group_id}"},
    }
    concept = specialty(record)
    job = text(record.get("job_title"))
    if concept and "coding" in concept:
        resource["code"] = [{"coding": concept["coding"], "text": job or concept["text"]}]
    elif job:
        resource["code"] = [{"text": job}]
    if concept:
        resource["specialty"] = [concept]
    resource["location"] = [{"reference": f"Location/{office['id']}"}]
    telecom = []
    number = phone(office.get("phone_number")) or phone(record.get("office_phone"))
    if number:
        telecom.append({"system": "phone", "value": number, "use": "work"})
    fax = phone(office.get("fax_number"))
    if fax:
        telecom.append({"system": "fax", "value": fax, "use": "work"})
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
    endpoint="doctors",
    transform=transform,
    lookups=("offices",),
    derive=derive_roles,
    read="scan",
    lookup_data=True,
    vendor_id=lambda fhir_id: fhir_id,
    search_params=(
        SearchParam("Resource-id", ById(lambda v: v, "picked from the practice list")),
        SearchParam("us-core-practitionerrole-specialty", LocalFilter()),
        SearchParam("us-core-practitionerrole-practitioner", LocalFilter()),
    ),
    includes=(Include("PractitionerRole:practitioner", ("practitioner",), "Practitioner"),),
    notes="Doctor × office; DrChrono has no Direct addresses or other endpoints to list.",
)
