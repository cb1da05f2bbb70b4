"""RelatedPerson (us-core-relatedperson) ← the people on a DrChrono patient record: the
emergency contact, the responsible party and each insurance's subscriber when that is not the
patient (`relatedperson-<patient id>-<emergency|responsible|subscriber[2|3]>`).

All come from one `GET /api/patients/<id>` (verbose: the insurances). A contact and a
subscriber with the same name are one person, so the subscriber's address and birth date
complete the contact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facade.core.compartment import CompartmentMapping, Source, fhir_id
from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
)
from mappings.drchrono import bulk_listings
from mappings.drchrono.fields import (
    PATIENT_RECORD_CHANGED,
    fhir_date,
    meta,
    phone,
    text,
    us_address,
)
from mappings.drchrono.payer import patient_records
from mappings.drchrono.valuemaps import ADMINISTRATIVE_GENDER, PERSONAL_RELATIONSHIP
from mappings.valuemaps import US_CORE, V2_0131, V3_ROLE_CODE

if TYPE_CHECKING:
    pass

PROFILE = US_CORE + "us-core-relatedperson"
SOURCE_NAME = "relatedperson"
#: The patient record as RelatedPerson and CareTeam read it (verbose: insurances).
INSURANCES = (
    ("primary_insurance", "subscriber"),
    ("secondary_insurance", "subscriber2"),
    ("tertiary_insurance", "subscriber3"),
)
EMERGENCY_CONTACT = {"system": V2_0131, "code": "C", "display": "Emergency Contact"}
POLICY_HOLDER = {"system": V3_ROLE_CODE, "code": "POLHOLD", "display": "policy holder"}
#: X12 patient-to-subscriber code → what the subscriber is to the patient (v3 RoleCode).
SUBSCRIBER_IS = {"01": "spouse", "19": "parent"}


def related_person_id(patient_id: object, role: str) -> str:
    return fhir_id(SOURCE_NAME, patient_id, role)


def _family(relation: str | None) -> list[dict[str, Any]]:
    mapped = PERSONAL_RELATIONSHIP.get((relation or "").strip().lower() or None)
    concept: dict[str, Any] = {}
    if mapped:
        concept["coding"] = [{"system": V3_ROLE_CODE, "code": mapped[0], "display": mapped[1]}]
    if relation:
        concept["text"] = relation
    return [concept] if concept else []


def _name(full: str) -> dict[str, Any]:
    parts = full.split()
    name: dict[str, Any] = {"text": full}
    if len(parts) > 1:
        name["family"] = parts[-1]
        name["given"] = parts[:-1]
    return name


def _subscribers(record: Record) -> list[tuple[str, Record, str]]:
    found = []
    for key, role in INSURANCES:
        insurance = record.get(key)
        if not isinstance(insurance, dict) or insurance.get("is_subscriber_the_patient", True):
            continue
        name = " ".join(
            p
            for p in (
                text(insurance.get("subscriber_first_name")),
                text(insurance.get("subscriber_middle_name")),
                text(insurance.get("subscriber_last_name")),
            )
            if p
        )
        if name and text(insurance.get("insurance_company")):
            found.append((role, insurance, name))
    return found


def _person_details(insurance: Record | None) -> dict[str, Any]:
    if not insurance:
        return {}
    details: dict[str, Any] = {}
    gender = text(insurance.get("subscriber_gender"))
    if gender:
        details["gender"] = ADMINISTRATIVE_GENDER.get(gender)
    birth = fhir_date(insurance.get("subscriber_date_of_birth"))
    if birth:
        details["birthDate"] = birth
    address = us_address(
        insurance.get("subscriber_address"),
        insurance.get("subscriber_city"),
        insurance.get("subscriber_state"),
        insurance.get("subscriber_zip_code"),
        use="home",
    )
    if address:
        details["address"] = [address]
    return details


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    patient_id = str(record["id"])
    subscribers = _subscribers(record)
    by_name = {name.lower(): insurance for _, insurance, name in subscribers}
    base_meta = meta(PROFILE, record.get("updated_at"), ctx)

    def person(role: str, name: str, relationship: list[dict[str, Any]]) -> Resource:
        return {
            "resourceType": "RelatedPerson",
            "id": related_person_id(patient_id, role),
            "meta": base_meta,
            "active": True,
            "patient": {"reference": f"Patient/{patient_id}"},
            "relationship": relationship,
            "name": [_name(name)],
        }

    resources: list[Resource] = []
    emergency = text(record.get("emergency_contact_name"))
    if emergency:
        resource = person(
            "emergency",
            emergency,
            [
                {"coding": [EMERGENCY_CONTACT]},
                *_family(text(record.get("emergency_contact_relation"))),
            ],
        )
        number = phone(record.get("emergency_contact_phone"))
        if number:
            resource["telecom"] = [{"system": "phone", "value": number}]
        resource.update(_person_details(by_name.get(emergency.lower())))
        resources.append(resource)
    responsible = text(record.get("responsible_party_name"))
    if responsible:
        relation = text(record.get("responsible_party_relation"))
        relationship = _family(relation) or [{"text": "Responsible party"}]
        relationship[0] = {
            **relationship[0],
            "text": f"Responsible party ({relation})" if relation else "Responsible party",
        }
        resource = person("responsible", responsible, relationship)
        telecom = []
        number = phone(record.get("responsible_party_phone"))
        if number:
            telecom.append({"system": "phone", "value": number})
        email = text(record.get("responsible_party_email"))
        if email:
            telecom.append({"system": "email", "value": email})
        if telecom:
            resource["telecom"] = telecom
        resource.update(_person_details(by_name.get(responsible.lower())))
        resources.append(resource)
    for role, insurance, name in subscribers:
        relation = SUBSCRIBER_IS.get(
            text(insurance.get("patient_relationship_to_subscriber")) or ""
        )
        relationship = [{"coding": [POLICY_HOLDER], "text": "Insurance subscriber"}]
        relationship += _family(relation)
        resource = person(role, name, relationship)
        resource.update(_person_details(insurance))
        resources.append(resource)
    return resources


MAPPING = CompartmentMapping(
    resource_type="RelatedPerson",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=PATIENT_RECORD_CHANGED,
            endpoint="patients",
            transform=transform,
            fetch=patient_records,
            read=patient_records,
            bulk=bulk_listings.PATIENTS_VERBOSE,
            description="the patient record's contacts and insurance subscribers",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-relatedperson-patient", PatientParam()),
        SearchParam("us-core-relatedperson-id", ById(lambda v: v, "the patient record")),
        SearchParam("us-core-relatedperson-name", LocalFilter()),
    ),
    notes="name searches need a patient: DrChrono cannot search contacts across patients.",
)
