"""Encounter (us-core-encounter) ← CareCloud /encounters (`encounter-<encounter key>`).

Only documented visits are Encounters: CareCloud opens an encounter when a visit is
documented, and appointments (booked, future, cancelled, no-show) stay appointments; facade
never reads /appointments for Encounter. Status: open → in-progress, signed and amended →
finished. Telehealth visits are class VR, office visits AMB. The type is the visit's E/M
code (CPT, in US Core's encounter type value set). `diagnoses` become Encounter.diagnosis
references to the Conditions the encounter-diagnosis source yields (`encdx-<encounter key>-<rank>`).

Must-support elements CareCloud has no field for: hospitalization and its
dischargeDisposition (ambulatory visits; the discharge-disposition search is refused), and
reasonReference (CareCloud records the reason as text; the coded diagnoses are
Encounter.diagnosis, not the reason for the visit).
"""

from __future__ import annotations

from typing import Any

from facade.core.compartment import CompartmentMapping, Source
from facade.core.mapping import (
    ById,
    Include,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
    Unsupported,
)
from mappings.carecloud.encounter_record import (
    ENCOUNTER_LISTING,
    ENCOUNTER_PARAMS,
    PATIENT_PARAM,
    read_encounter,
)
from mappings.carecloud.fields import (
    ENCOUNTER_ID_SYSTEM,
    ENCOUNTERS,
    UPDATED,
    chart_id,
    encounter_diagnosis_id,
    fhir_date,
    instant,
    meta,
    reference,
    text,
)
from mappings.valuemaps import (
    CPT,
    ENCOUNTER_TYPE,
    HCPCS,
    US_CORE,
    V3_ACT_CODE,
    V3_PARTICIPATION_TYPE,
    ValueMap,
)

PROFILE = US_CORE + "us-core-encounter"
SOURCE_NAME = "encounter"
DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"

AMBULATORY = {"system": V3_ACT_CODE, "code": "AMB", "display": "ambulatory"}
VIRTUAL = {"system": V3_ACT_CODE, "code": "VR", "display": "virtual"}
ATTENDER = {
    "coding": [{"system": V3_PARTICIPATION_TYPE, "code": "ATND", "display": "attender"}],
    "text": "Attending provider",
}
BILLING = {"coding": [{"system": DIAGNOSIS_ROLE, "code": "billing", "display": "Billing"}]}

ENCOUNTER_STATUS = ValueMap(
    name="carecloud-encounter-status",
    source="CareCloud encounter status: open (being documented) → in-progress; signed and"
    " amended (signed, then corrected) → finished",
    entries={"open": "in-progress", "signed": "finished", "amended": "finished"},
    fallback="unknown",
)
_VISIT_CODE_SYSTEMS = {"CPT": CPT, "HCPCS": HCPCS}


def encounter_id(encounter_guid: object) -> str:
    """The FHIR id of a CareCloud encounter (chart types reference it)."""
    return chart_id(SOURCE_NAME, encounter_guid)


def _type(record: Record) -> dict[str, Any]:
    visit = record.get("visit_code")
    visit = visit if isinstance(visit, dict) else {}
    code = text(visit.get("code"))
    system = _VISIT_CODE_SYSTEMS.get(text(visit.get("code_system")) or "")
    description = text(visit.get("description"))
    if code and system:
        coding = {"system": system, "code": code}
        if description:
            coding["display"] = description
        concept: dict[str, Any] = {"coding": [coding]}
    else:
        # US Core requires a type: a visit without an E/M code is a visit for a problem.
        concept = {"coding": [ENCOUNTER_TYPE.fallback]}
    label = description or text(record.get("reason_for_visit"))
    if label:
        concept["text"] = label
    return concept


def _period(record: Record, ctx: MappingContext) -> dict[str, str]:
    start = instant(record.get("start_time"), ctx.timezone)
    end = instant(record.get("end_time"), ctx.timezone)
    period: dict[str, str] = {}
    if start:
        period["start"] = start
        if end and end >= start:
            period["end"] = end
    else:
        day = fhir_date(record.get("date_of_service"))
        if day:
            period["start"] = day
    return period


def _reasons(record: Record) -> list[dict[str, Any]]:
    reasons: list[dict[str, str]] = []
    for field in ("reason_for_visit", "chief_complaint"):
        value = text(record.get(field))
        if value and all(r["text"] != value for r in reasons):
            reasons.append({"text": value})
    return reasons


def _diagnoses(record: Record) -> list[dict[str, Any]]:
    found = []
    for entry in sorted(
        (d for d in record.get("diagnoses") or () if isinstance(d, dict) and d.get("rank")),
        key=lambda d: int(d["rank"]),
    ):
        found.append(
            {
                "condition": {
                    "reference": "Condition/" + encounter_diagnosis_id(record["id"], entry["rank"]),
                    **({"display": d} if (d := text(entry.get("description"))) else {}),
                },
                "use": BILLING,
                "rank": int(entry["rank"]),
            }
        )
    return found


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    if not text(record.get("patient_id")):
        return []
    resource: Resource = {
        "resourceType": "Encounter",
        "id": encounter_id(record["id"]),
        "meta": meta(PROFILE, record.get("updated_at") or record.get("created_at"), ctx),
        "identifier": [{"system": ENCOUNTER_ID_SYSTEM, "value": str(record["id"])}],
        "status": ENCOUNTER_STATUS.get(text(record.get("status"))),
        "class": VIRTUAL if text(record.get("type")) == "telehealth" else AMBULATORY,
        "type": [_type(record)],
        "subject": {"reference": f"Patient/{record['patient_id']}"},
    }
    period = _period(record, ctx)
    provider = reference("Practitioner", record.get("provider_id"))
    if provider:
        participant: dict[str, Any] = {"type": [ATTENDER]}
        if period:
            participant["period"] = period
        participant["individual"] = provider
        resource["participant"] = [participant]
    if period:
        resource["period"] = period
    reasons = _reasons(record)
    if reasons:
        resource["reasonCode"] = reasons
    diagnoses = _diagnoses(record)
    if diagnoses:
        resource["diagnosis"] = diagnoses
    location = reference("Location", record.get("location_id"))
    if location:
        resource["location"] = [{"location": location}]
    resource["serviceProvider"] = {"reference": f"Organization/{ctx.practice_group_id}"}
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="Encounter",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=UPDATED,
            endpoint=ENCOUNTERS,
            patient_param=PATIENT_PARAM,
            fixed_params=ENCOUNTER_PARAMS,
            transform=transform,
            read=read_encounter,
            bulk=ENCOUNTER_LISTING,
            produces={"class": frozenset({"AMB", "VR"})},
            description="the patient's encounters (one unpaged list holds the whole chart)",
        ),
    ),
    search_params=(
        SearchParam(
            "Resource-lastUpdated",
            LocalFilter("filtered locally: CareCloud has no updated-since filter"),
        ),
        SearchParam("us-core-encounter-patient", PatientParam()),
        SearchParam("us-core-encounter-id", ById(lambda v: v, "GET /encounters/{id}")),
        SearchParam(
            "us-core-encounter-date",
            LocalFilter(
                "filtered locally within the patient's encounters (one list call serves the"
                " whole chart)"
            ),
        ),
        SearchParam("us-core-encounter-status", LocalFilter()),
        SearchParam("us-core-encounter-class", LocalFilter()),
        SearchParam("us-core-encounter-type", LocalFilter()),
        SearchParam("us-core-encounter-identifier", LocalFilter()),
        SearchParam("us-core-encounter-location", LocalFilter()),
        SearchParam(
            "us-core-encounter-discharge-disposition",
            Unsupported("CareCloud encounters record no discharge disposition (ambulatory)"),
        ),
    ),
    combinations=(
        (("patient",), "SHALL"),
        (("_id",), "SHALL"),
        (("date", "patient"), "SHALL"),
        (("identifier",), "SHOULD"),
        (("patient", "type"), "SHOULD"),
        (("class", "patient"), "SHOULD"),
        (("patient", "status"), "SHOULD"),
        (("patient", "location"), "SHOULD"),
    ),
    includes=(
        Include("Encounter:patient", ("subject",), "Patient"),
        Include("Encounter:practitioner", ("participant.individual",), "Practitioner"),
        Include("Encounter:location", ("location.location",), "Location"),
        Include("Encounter:service-provider", ("serviceProvider",), "Organization"),
    ),
    author_paths=("participant.individual",),
    notes="One Encounter per CareCloud encounter (documented visits); appointments are not"
    " Encounters. identifier is filtered within a patient's visits.",
)
