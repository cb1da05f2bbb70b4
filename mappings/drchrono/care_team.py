"""CareTeam (us-core-careteam) ← one team per patient (`careteam-<patient id>`): the primary
doctor on the patient record, the doctors of the patient's visits (the appointment list
Encounter shares), the patient, and the responsible party (a RelatedPerson) if there is one.
Doctors' roles are their specialties (NUCC, from the practice's cached doctor list).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facade.core.compartment import CompartmentMapping, FetchContext, Source, fhir_id
from facade.core.mapping import (
    ById,
    Include,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
)
from mappings.drchrono import bulk_listings
from mappings.drchrono.fields import APPOINTMENT_PARAMS, PATIENT_RECORD_CHANGED, meta, text
from mappings.drchrono.payer import patient_detail
from mappings.drchrono.practitioner_role import specialty
from mappings.drchrono.related_person import related_person_id
from mappings.drchrono.valuemaps import ENCOUNTER_STATUS
from mappings.valuemaps import SNOMED, US_CORE

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

PROFILE = US_CORE + "us-core-careteam"
SOURCE_NAME = "careteam"
PATIENT_ROLE = {"coding": [{"system": SNOMED, "code": "116154003", "display": "Patient"}]}
CAREGIVER_ROLE = {"coding": [{"system": SNOMED, "code": "133932002", "display": "Caregiver"}]}
HEALTHCARE_PROFESSIONAL = {
    "coding": [{"system": SNOMED, "code": "223366009", "display": "Healthcare professional"}]
}


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    """The patient record, joined by the fetch with `_doctor_ids` (primary first) and
    `_doctors` (the practice's doctors by id)."""
    patient_id = str(record["id"])
    doctors: dict[str, Record] = record.get("_doctors") or {}
    participants: list[dict[str, Any]] = []
    for doctor_id in record.get("_doctor_ids") or []:
        concept = specialty(doctors.get(doctor_id, {}))
        role = concept if concept and "coding" in concept else HEALTHCARE_PROFESSIONAL
        participants.append(
            {
                "role": [role],
                "member": {"reference": f"Practitioner/{doctor_id}"},
                "onBehalfOf": {"reference": f"Organization/{ctx.practice_group_id}"},
            }
        )
    participants.append({"role": [PATIENT_ROLE], "member": {"reference": f"Patient/{patient_id}"}})
    if text(record.get("responsible_party_name")):
        participants.append(
            {
                "role": [CAREGIVER_ROLE],
                "member": {
                    "reference": f"RelatedPerson/{related_person_id(patient_id, 'responsible')}"
                },
            }
        )
    inactive = record.get("patient_status") in ("I", "D")
    return [
        {
            "resourceType": "CareTeam",
            "id": fhir_id(SOURCE_NAME, patient_id),
            "meta": meta(PROFILE, record.get("updated_at"), ctx),
            "status": "inactive" if inactive else "active",
            "name": f"{ctx.practice_name} care team",
            "subject": {"reference": f"Patient/{patient_id}"},
            "participant": participants,
            "managingOrganization": [{"reference": f"Organization/{ctx.practice_group_id}"}],
        }
    ]


async def fetch_team(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    patient = await patient_detail(client, patient_id, fc)
    if patient is None:
        return []
    appointments = await client.list_all(
        "appointments",
        {"patient": patient_id, **APPOINTMENT_PARAMS},
        reason=fc.reason,
        cache_ttl=fc.cache_ttl,
    )
    doctor_ids = [str(d) for d in [patient.get("doctor")] if text(d)]
    for appointment in appointments:
        seen = ENCOUNTER_STATUS.get(text(appointment.get("status"))) is not None
        doctor = text(appointment.get("doctor"))
        if seen and doctor and doctor not in doctor_ids:
            doctor_ids.append(doctor)
    doctors = await client.list_all("doctors", {}, reason=fc.reason, cache_ttl=fc.cache_ttl)
    by_id = {str(d["id"]): d for d in doctors}
    return [{**patient, "_doctor_ids": doctor_ids, "_doctors": by_id}]


MAPPING = CompartmentMapping(
    resource_type="CareTeam",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=PATIENT_RECORD_CHANGED,
            endpoint="patients",
            transform=transform,
            fetch=fetch_team,
            read=fetch_team,
            bulk=bulk_listings.CARE_TEAMS,
            produces={"status": frozenset({"active", "inactive"})},
            description="the patient's doctors (record + visits), the patient, the caregiver",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-careteam-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the patient's team")),
        SearchParam("us-core-careteam-status", LocalFilter()),
        SearchParam("us-core-careteam-role", LocalFilter()),
    ),
    includes=(
        # US Core's CareTeam-participant SearchParameter: with a target type, or without
        # one for every participant type (facade serves all the members it references).
        Include("CareTeam:participant", ("participant.member",), ""),
        Include("CareTeam:participant:Practitioner", ("participant.member",), "Practitioner"),
        Include("CareTeam:participant:Patient", ("participant.member",), "Patient"),
        Include("CareTeam:participant:RelatedPerson", ("participant.member",), "RelatedPerson"),
    ),
    author_paths=("participant.member",),
    notes="role searches need a patient (one team per patient).",
)
