"""Encounter (us-core-encounter) ← DrChrono /api/appointments (verbose).

Only visits that happened or are under way become Encounters (shared/research/upstreams.md
§5.6); booked, cancelled, rescheduled and no-show appointments do not. The period comes from
the verbose `status_transitions` (arrival → completion), else the scheduled time + duration.
The list is fetched with `APPOINTMENT_PARAMS`, the query vitals and encounter diagnoses use
too, so one cached vendor page serves all three.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from facade.core.compartment import CompartmentMapping, Source, fhir_id
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
from mappings.drchrono.fields import APPOINTMENT_PARAMS, changed, instant, meta, reference, text
from mappings.drchrono.valuemaps import ENCOUNTER_STATUS
from mappings.valuemaps import ENCOUNTER_TYPE, US_CORE, V3_ACT_CODE, V3_PARTICIPATION_TYPE

PROFILE = US_CORE + "us-core-encounter"
SOURCE_NAME = "encounter"
APPOINTMENT_ID_SYSTEM = "urn:drchrono:appointment"

AMBULATORY = {"system": V3_ACT_CODE, "code": "AMB", "display": "ambulatory"}
VIRTUAL = {"system": V3_ACT_CODE, "code": "VR", "display": "virtual"}
ATTENDER = {
    "coding": [{"system": V3_PARTICIPATION_TYPE, "code": "ATND", "display": "attender"}],
    "text": "Attending provider",
}
_ARRIVAL = ("Arrived", "Checked In", "In Room")


def encounter_id(appointment_id: object) -> str:
    """The FHIR id of the Encounter of an appointment (others reference it)."""
    return fhir_id(SOURCE_NAME, appointment_id)


def _transition(record: Record, statuses: tuple[str, ...]) -> str | None:
    for step in record.get("status_transitions") or []:
        if isinstance(step, dict) and step.get("to_status") in statuses:
            return text(step.get("datetime"))
    return None


def visit_period(record: Record, ctx: MappingContext, finished: bool) -> dict[str, str]:
    """Arrival → completion from the transitions, else scheduled time (+ duration)."""
    scheduled = text(record.get("scheduled_time"))
    start_raw = _transition(record, _ARRIVAL) or _transition(record, ("In Session",)) or scheduled
    end_raw = _transition(record, ("Complete",)) if finished else None
    if finished and end_raw is None and scheduled:
        try:
            minutes = int(record.get("duration") or 0)
            moment = datetime.fromisoformat(scheduled) + timedelta(minutes=minutes)
            end_raw = moment.isoformat(timespec="seconds")
        except (TypeError, ValueError):
            end_raw = None
    period: dict[str, str] = {}
    start = instant(start_raw, ctx.timezone)
    if start:
        period["start"] = start
    end = instant(end_raw, ctx.timezone)
    if end and (not start or end >= start):
        period["end"] = end
    return period


def _session_period(record: Record, ctx: MappingContext, finished: bool) -> dict[str, str]:
    """The doctor's part: In Session → Complete, else the whole visit."""
    session = instant(_transition(record, ("In Session",)), ctx.timezone)
    if not session:
        return visit_period(record, ctx, finished)
    period = {"start": session}
    end = instant(_transition(record, ("Complete",)), ctx.timezone) if finished else None
    if end and end >= session:
        period["end"] = end
    return period


def _is_virtual(record: Record) -> bool:
    # DrChrono marks telehealth visits by an appointment profile or a reason naming it.
    reason = (text(record.get("reason")) or "").lower()
    return "telehealth" in reason or "video visit" in reason


def _encounter_type(reason: str | None) -> dict[str, Any]:
    key = (reason or "").lower()
    coding = next(
        (v for k, v in ENCOUNTER_TYPE.entries.items() if key.startswith(k)), ENCOUNTER_TYPE.fallback
    )
    concept: dict[str, Any] = {"coding": [coding]}
    if reason:
        concept["text"] = reason
    return concept


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    if record.get("appt_is_break") or not text(record.get("patient")):
        return []
    status = (
        "entered-in-error"
        if record.get("deleted_flag")
        else ENCOUNTER_STATUS.get(text(record.get("status")))
    )
    if status is None:
        return []
    finished = status == "finished"
    reason = text(record.get("reason"))
    resource: Resource = {
        "resourceType": "Encounter",
        "id": encounter_id(record["id"]),
        "meta": meta(PROFILE, record.get("extended_updated_at") or record.get("updated_at"), ctx),
        "identifier": [{"system": APPOINTMENT_ID_SYSTEM, "value": str(record["id"])}],
        "status": status,
        "class": VIRTUAL if _is_virtual(record) else AMBULATORY,
        "type": [_encounter_type(reason)],
        "subject": {"reference": f"Patient/{record['patient']}"},
    }
    doctor = reference("Practitioner", record.get("doctor"))
    if doctor:
        resource["participant"] = [
            {
                "type": [ATTENDER],
                "period": _session_period(record, ctx, finished),
                "individual": doctor,
            }
        ]
    period = visit_period(record, ctx, finished)
    if period:
        resource["period"] = period
    if reason:
        resource["reasonCode"] = [{"text": reason}]
    office = reference("Location", record.get("office"))
    if office:
        resource["location"] = [{"location": office}]
    resource["serviceProvider"] = {"reference": f"Organization/{ctx.practice_group_id}"}
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="Encounter",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=changed("extended_updated_at", "updated_at", "created_at"),
            endpoint="appointments",
            transform=transform,
            fixed_params=APPOINTMENT_PARAMS,
            needs_detail=lambda _ctx: True,
            produces={"class": frozenset({"AMB", "VR"})},
            description="appointments (verbose: status transitions), shared with vitals",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-encounter-patient", PatientParam()),
        SearchParam("us-core-encounter-id", ById(lambda v: v, "the appointment")),
        SearchParam("us-core-encounter-date", LocalFilter()),
        SearchParam("us-core-encounter-status", LocalFilter()),
        SearchParam("us-core-encounter-class", LocalFilter()),
        SearchParam("us-core-encounter-type", LocalFilter()),
        SearchParam("us-core-encounter-identifier", LocalFilter()),
        SearchParam("us-core-encounter-location", LocalFilter()),
        SearchParam(
            "us-core-encounter-discharge-disposition",
            Unsupported(
                "DrChrono appointments record no discharge disposition (ambulatory visits)"
            ),
        ),
    ),
    includes=(
        Include("Encounter:patient", ("subject",), "Patient"),
        Include("Encounter:practitioner", ("participant.individual",), "Practitioner"),
        Include("Encounter:location", ("location.location",), "Location"),
        Include("Encounter:service-provider", ("serviceProvider",), "Organization"),
    ),
    author_paths=("participant.individual",),
    notes="One Encounter per appointment that happened or is under way. identifier is"
    " filtered within a patient's visits (the planner reads _id values only as FHIR ids).",
)
