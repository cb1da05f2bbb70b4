"""Reading DrChrono's value conventions: "" for absent, naive local timestamps, free-text
addresses and phones. Pure functions shared by the DrChrono mapping modules.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from facade.core.mapping import ChangeTime, MappingContext, no_change_time

# The vendor-neutral readers, offered here with this vendor's own (re-exported).
from mappings.datatypes import concept as concept
from mappings.datatypes import fhir_date as fhir_date
from mappings.datatypes import phone as phone
from mappings.datatypes import reference as reference
from mappings.datatypes import text as text
from mappings.drchrono.valuemaps import CODE_SYSTEM

PATIENT_ID_SYSTEM = "urn:drchrono:patient"
CHART_ID_SYSTEM = "urn:drchrono:chart"
DOCTOR_ID_SYSTEM = "urn:drchrono:doctor"
PRACTICE_ID_SYSTEM = "urn:drchrono:practice-group"
OFFICE_ID_SYSTEM = "urn:drchrono:office"


#: Every source built on /api/appointments lists a patient's appointments with exactly these
#: parameters (plus `patient`), so Encounter, vitals and encounter diagnoses share one vendor
#: page through the client's cache. DrChrono refuses appointment lists without a date filter;
#: `since` the epoch selects them all. `verbose` brings vitals, transitions and the note.
APPOINTMENT_PARAMS = {"since": "1970-01-01T00:00:00", "verbose": "true"}


def instant(value: Any, tz: ZoneInfo) -> str | None:
    """A naive DrChrono timestamp in the practice's time zone, as a FHIR instant."""
    raw = text(value)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        return moment.isoformat(timespec="seconds")
    # The zone's offset only changes on the hour, so it is looked up once per hour.
    offset = _utc_offset(tz, moment.replace(minute=0, second=0, microsecond=0))
    return moment.isoformat(timespec="seconds") + offset


@lru_cache(maxsize=65536)
def _utc_offset(tz: ZoneInfo, hour: datetime) -> str:
    return hour.replace(tzinfo=tz).isoformat(timespec="seconds")[19:]


def address_lines(value: Any) -> list[str]:
    raw = text(value)
    if raw is None:
        return []
    return [line.strip() for line in raw.splitlines() if line.strip()]


def us_address(
    street: Any, city: Any, state: Any, postal_code: Any, *, use: str | None = None
) -> dict[str, Any] | None:
    address: dict[str, Any] = {}
    if use:
        address["use"] = use
    lines = address_lines(street)
    if lines:
        address["line"] = lines
    for key, value in (("city", city), ("state", state), ("postalCode", postal_code)):
        if text(value):
            address[key] = text(value)
    if len(address) <= (1 if use else 0):
        return None
    address["country"] = "US"
    return address


def changed(*fields: str) -> ChangeTime:
    """The record's change time: the first of `fields` it holds, a naive DrChrono timestamp
    in the practice's time zone."""
    return ChangeTime(fields, instant)


#: Records with an update time, and their creation time when none was written yet.
UPDATED = changed("updated_at", "created_at")
#: The patient record; everything read from it (Coverage, RelatedPerson, CareTeam) changes
#: with it.
PATIENT_RECORD_CHANGED = UPDATED
#: Doctors and offices: DrChrono's contract lists neither an update nor a creation time.
PRACTICE_LIST_UNCHANGED = no_change_time(
    "DrChrono doctors and offices carry no update or creation time."
)
#: Lab orders, tests, results and specimens: the lab order's update time. Tests and results
#: keep no time of their own (only collection and result times), and DrChrono updates the
#: order when its results arrive.
LAB_ORDER_CHANGED = changed("order.updated_at", "order.created_at")


def meta(profile: str, updated_at: Any, ctx: MappingContext) -> dict[str, Any]:
    result: dict[str, Any] = {"profile": [profile]}
    last_updated = instant(updated_at, ctx.timezone)
    if last_updated:
        result["lastUpdated"] = last_updated
    return result


def coded_concept(code: Any, code_system: Any, name: Any) -> dict[str, Any] | None:
    """A CodeableConcept from DrChrono's (code, code_system, name) triple (risk assessments,
    physical exams), or None when all three are empty. A code in a system facade does not
    know keeps only its text."""
    return concept(CODE_SYSTEM.get(text(code_system)), text(code), text(name))
