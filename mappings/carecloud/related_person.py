"""RelatedPerson (us-core-relatedperson) ← the emergency contact on a CareCloud patient record
(`contact-<patient key>`).

Read from the patient record itself (`GET /patients/{id}`, the Patient read's own call).
CareCloud's contact has a name, a relationship code and one phone number; it has no address
(a must-support element of the profile, omitted). The contract does not name the
relationship's code system: HL7 v3 RoleCode personal relationships (SPS, MTH, ...) are read as
such, X12 individual relationship codes (01 spouse, 19 child, ...) are translated, and
anything else is kept as text.
"""

from __future__ import annotations

from typing import Any

from facade.core.compartment import CompartmentMapping, Source
from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
)
from mappings.carecloud.fields import (
    PATIENT_RECORD_CHANGED,
    PATIENTS,
    chart_id,
    expand_guid,
    meta,
    phone,
    text,
)
from mappings.carecloud.patient_record import PATIENT_FIELD, PATIENT_LISTING, patient_records
from mappings.valuemaps import US_CORE, V2_0131, V3_ROLE_CODE, ValueMap

PROFILE = US_CORE + "us-core-relatedperson"
SOURCE_NAME = "contact"
EMERGENCY_CONTACT = {"system": V2_0131, "code": "C", "display": "Emergency Contact"}
#: What CareCloud's relationship code says the contact is to the patient.
RELATIONSHIP = ValueMap(
    name="carecloud-contact-relationship",
    source="HL7 v3 RoleCode _PersonalRelationshipRoleType (code → display); the codes a"
    " practice records for an emergency contact",
    entries={
        "SPS": "spouse",
        "WIFE": "wife",
        "HUSB": "husband",
        "DOMPART": "domestic partner",
        "MTH": "mother",
        "FTH": "father",
        "PRN": "parent",
        "DAU": "natural daughter",
        "SON": "natural son",
        "CHILD": "child",
        "SIS": "sister",
        "BRO": "brother",
        "SIB": "sibling",
        "GRMTH": "grandmother",
        "GRFTH": "grandfather",
        "GRPRN": "grandparent",
        "FRND": "unrelated friend",
        "NBOR": "neighbor",
        "GUARD": "guardian",
    },
    fallback=None,
)
#: X12 individual relationship code (what the contact is to the patient) → v3 RoleCode.
_X12_TO_ROLE = {"01": "SPS", "19": "CHILD", "32": "MTH", "33": "FTH", "53": "DOMPART"}


def related_person_id(patient_id: object) -> str:
    """The emergency contact's id (short: its Provenance id must fit 64 characters too)."""
    return chart_id(SOURCE_NAME, patient_id)


def emergency_contact(record: Record) -> dict[str, Any] | None:
    """The emergency contact object, or None when CareCloud has none (or an empty one)."""
    contact = record.get("emergency_contact")
    if not isinstance(contact, dict):
        return None
    if not (text(contact.get("name")) or phone(contact.get("phone_number"))):
        return None
    return contact


def relationship_concepts(contact: dict[str, Any]) -> list[dict[str, Any]]:
    """The contact's relationship to the patient as a v3 RoleCode concept (text when the
    code is in neither known system), or nothing."""
    raw = text(contact.get("relationship_code"))
    if raw is None:
        return []
    code = _X12_TO_ROLE.get(raw, raw.upper())
    display = RELATIONSHIP.get(code)
    if display is None:
        return [{"text": raw}]
    return [{"coding": [{"system": V3_ROLE_CODE, "code": code, "display": display}]}]


def _name(full: str) -> dict[str, Any]:
    parts = full.split()
    name: dict[str, Any] = {"text": full}
    if len(parts) > 1:
        name["family"] = parts[-1]
        name["given"] = parts[:-1]
    return name


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    contact = emergency_contact(record)
    if contact is None:
        return []
    patient_id = str(record["id"])
    resource: Resource = {
        "resourceType": "RelatedPerson",
        "id": related_person_id(patient_id),
        "meta": meta(PROFILE, record.get("updated_at") or record.get("created_at"), ctx),
        "active": True,
        "patient": {"reference": f"Patient/{patient_id}"},
        "relationship": [{"coding": [EMERGENCY_CONTACT]}, *relationship_concepts(contact)],
    }
    name = text(contact.get("name"))
    if name:
        resource["name"] = [_name(name)]
    number = phone(contact.get("phone_number"))
    if number:
        resource["telecom"] = [{"system": "phone", "value": number}]
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="RelatedPerson",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=PATIENT_RECORD_CHANGED,
            transform=transform,
            endpoint=PATIENTS,
            patient_param=PATIENT_FIELD,
            vendor_key=expand_guid,
            fetch=patient_records,
            read=patient_records,
            bulk=PATIENT_LISTING,
            description="the patient's emergency contact (patient record)",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-relatedperson-patient", PatientParam()),
        SearchParam("us-core-relatedperson-id", ById(lambda v: v, "the patient's record")),
        SearchParam("us-core-relatedperson-name", LocalFilter()),
    ),
    notes="The emergency contact only: CareCloud insurances name their subscriber but keep no"
    " record of them beyond name and birth date.",
)
