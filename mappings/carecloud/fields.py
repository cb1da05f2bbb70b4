"""Reading CareCloud's value conventions: ISO timestamps with offsets, GUID ids for patients,
appointments and encounters, integer ids for everything else, null for absent. Pure
functions shared by the CareCloud mapping modules; they never call the vendor.

GUIDs in compartment ids: facade's compartment ids are `<source>-<vendor id>[-<part>]` and
are split at the first '-', so a GUID inside one is written as the RFC 4648 base32 text of
its 16 bytes, lower case and unpadded (26 characters, `compact_guid`), and read back with
`expand_guid`. Not the 32 hex digits: a FHIR id holds at most 64 characters, and a
Provenance id is `<type>-<target id>`, so `AllergyIntolerance-allergy-<key>-<row id>` must
fit too. A Patient's own id is the GUID as CareCloud writes it (a FHIR id allows '-').
"""

from __future__ import annotations

import base64
import re
import uuid
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

PATIENT_ID_SYSTEM = "urn:carecloud:patient"
PROVIDER_ID_SYSTEM = "urn:carecloud:provider"
LOCATION_ID_SYSTEM = "urn:carecloud:location"
BUSINESS_ENTITY_ID_SYSTEM = "urn:carecloud:business-entity"
ENCOUNTER_ID_SYSTEM = "urn:carecloud:encounter"
APPOINTMENT_ID_SYSTEM = "urn:carecloud:appointment"
#: CareCloud payer ids (clearinghouse payer ids such as "60054").
PAYER_ID_SYSTEM = "urn:carecloud:payer-id"

#: The endpoints (paths at the vendor root) the mappings read.
PATIENTS = "patients"
ENCOUNTERS = "encounters"
APPOINTMENTS = "appointments"
PROVIDERS = "providers"
LOCATIONS = "locations"
AUTHORIZATION = "authorization"

#: The compartment source of the Conditions an encounter's `diagnoses` list yields
#: (Encounter.diagnosis references them): `Condition/encdx-<encounter key>-<rank>`.
ENCOUNTER_DIAGNOSIS_SOURCE = "encdx"

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_KEY = re.compile(r"[a-z2-7]{26}")


def instant(value: Any, tz: ZoneInfo) -> str | None:
    """A CareCloud timestamp as a FHIR instant. CareCloud writes offsets; a timestamp
    without one (never expected) is read in the practice's time zone rather than dropped."""
    raw = text(value)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.isoformat(timespec="seconds")


def is_guid(value: Any) -> bool:
    raw = text(value)
    return raw is not None and _GUID.fullmatch(raw.lower()) is not None


def compact_guid(value: Any) -> str:
    """A GUID as 26 base32 characters, for use inside compartment ids (which split at '-')."""
    raw = text(value)
    compact = None if raw is None else _compact(raw)
    if compact is None:
        raise ValueError(f"not a CareCloud GUID: {value!r}")
    return compact


@lru_cache(maxsize=65536)
def _compact(raw: str) -> str | None:
    """`compact_guid` of a stripped value, None when it is no GUID. Cached: every resource
    of a chart names its patient's GUID, and an export maps hundreds of thousands."""
    lowered = raw.lower()
    if _GUID.fullmatch(lowered) is None:
        return None
    packed = bytes.fromhex(lowered.replace("-", ""))  # the GUID's 16 bytes, as uuid.UUID's
    return base64.b32encode(packed).decode("ascii").rstrip("=").lower()


def expand_guid(value: str) -> str | None:
    """The GUID behind `compact_guid`'s key (a dashed GUID passes through), or None when
    `value` is neither."""
    if _GUID.fullmatch(value.lower()):
        return value.lower()
    if not _KEY.fullmatch(value):
        return None
    return str(uuid.UUID(bytes=base64.b32decode(value.upper() + "======")))


def guid_id(fhir_id: str) -> str | None:
    """A ResourceMapping's `vendor_id` for GUID-keyed records read by their dashed GUID."""
    return fhir_id.lower() if _GUID.fullmatch(fhir_id.lower()) else None


def integer_id(fhir_id: str) -> str | None:
    """A ResourceMapping's `vendor_id` for integer-keyed records (providers, locations)."""
    return fhir_id if fhir_id.isdigit() else None


def chart_id(source: str, vendor_id: Any, *parts: object) -> str:
    """`<source>-<vendor id>[-<part>...]` with a GUID vendor id (or part) compacted."""
    pieces = [source, _id_piece(vendor_id), *(_id_piece(p) for p in parts)]
    return "-".join(pieces)


def _id_piece(value: object) -> str:
    raw = str(value)
    stripped = text(raw)
    compact = None if stripped is None else _compact(stripped)
    return raw if compact is None else compact


def encounter_diagnosis_id(encounter_id: Any, rank: Any) -> str:
    """The Condition id of an encounter's diagnosis of `rank` (shared by Encounter and the
    Condition source that yields it)."""
    return chart_id(ENCOUNTER_DIAGNOSIS_SOURCE, encounter_id, rank)


def address(
    value: Any, *, use: str | None = None, period_start: str | None = None
) -> dict[str, Any] | None:
    """A FHIR Address from CareCloud's {line1, line2, city, state, zip_code, country_name}."""
    if not isinstance(value, dict):
        return None
    result: dict[str, Any] = {}
    if use:
        result["use"] = use
    lines = [line for key in ("line1", "line2") if (line := text(value.get(key)))]
    if lines:
        result["line"] = lines
    for key, field in (("city", "city"), ("state", "state"), ("postalCode", "zip_code")):
        found = text(value.get(field))
        if found:
            result[key] = found
    if len(result) <= (1 if use else 0):
        return None
    country = text(value.get("country_name"))
    result["country"] = "US" if country in (None, "United States", "USA", "US") else country
    if period_start:
        result["period"] = {"start": period_start}
    return result


def changed(*fields: str) -> ChangeTime:
    """The record's change time: the first of `fields` it holds (timestamps with offsets)."""
    return ChangeTime(fields, instant)


#: Records with an update time, and their creation time when none was written yet.
UPDATED = changed("updated_at", "created_at")
#: The patient record; everything read from it (Coverage, RelatedPerson, payers) changes
#: with it.
PATIENT_RECORD_CHANGED = UPDATED
#: Providers, locations and the business entity: the contract gives them no update or
#: creation time.
PRACTICE_LIST_UNCHANGED = no_change_time(
    "CareCloud providers, locations and the business entity carry no update or creation time."
)


def meta(profile: str, updated_at: Any, ctx: MappingContext) -> dict[str, Any]:
    result: dict[str, Any] = {"profile": [profile]}
    last_updated = instant(updated_at, ctx.timezone)
    if last_updated:
        result["lastUpdated"] = last_updated
    return result
