"""The CareCloud chart: every clinical item nests in the encounter that recorded it
(`GET /encounters?patient_id=<guid>`, unpaged), so each chart type is a source over the
encounters list whose transform maps the nested items of one encounter. A helper module of
the chart mappings: it defines no MAPPING and does no I/O beyond the reads it declares.

Vendor calls. Every chart source lists `encounters` with exactly `{"patient_id": <guid>}`, so
Condition, AllergyIntolerance, MedicationRequest, Immunization, Observation, DiagnosticReport,
DocumentReference (note) and Procedure of one patient share ONE vendor call through the
client's page cache. A read costs one call too: the FHIR id names the encounter,
`<source>-<encounter key>-<row>`, so it is GET /encounters/<guid>. The encounter GUID is
written as its 26-character base32 key (`fields.compact_guid`) because a compartment id's
vendor part ends at the first `-` (`facade.core.compartment.split_fhir_id`) and a
Provenance id (`<type>-<id>`) must fit 64 characters; clinical row ids are integers.

Change time: an item changes only inside its encounter (it appears in no other), so the
encounter's `updated_at` is a time at or after every change of every item in it; items' own
`recorded_at`/`resulted_at` say when they were recorded or resulted, not when they last
changed (a problem resolved later keeps its recorded_at), so they are not used.

Search parameters are all filtered locally (or read by id): `/encounters` filters only by
`date_of_service`, and pushing a date search down would both cost a call of its own (the
shared, cached list would not serve it) and drop items whose date is not the visit's (a
problem's onset, a result that came back days later). There is no updated-since filter, so
`_lastUpdated` compares the encounter's `updated_at`.

Bulk: CareCloud has no practice-wide clinical listing (`/encounters` refuses a list without
`patient_id`), so every chart source is read per patient in an export, all of them from the
same one call per patient; see `BULK`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from facade.core.compartment import ManyTransform, Source
from facade.core.mapping import MappingContext, Record, Resource
from mappings.carecloud.encounter import encounter_id
from mappings.carecloud.encounter_record import (
    ENCOUNTER_LISTING,
    ENCOUNTER_PARAMS,
    PATIENT_PARAM,
    read_encounter,
)
from mappings.carecloud.fields import ENCOUNTERS, UPDATED, chart_id, is_guid, reference, text


def number(value: Any) -> float | int | None:
    """A numeric vendor value ("138", "98.6") as a JSON number, keeping "1.0" a decimal."""
    raw = text(value)
    if raw is None:
        return None
    try:
        parsed = float(raw)
    except ValueError:
        return None
    return int(parsed) if parsed.is_integer() and "." not in raw else parsed


def item_id(source: str, encounter: Record, *parts: object) -> str:
    """`<source>-<encounter key>[-<part>...]`: the id of a resource mapped from an item."""
    return chart_id(source, encounter["id"], *parts)


def encounter_reference(encounter: Record) -> dict[str, str]:
    return {"reference": f"Encounter/{encounter_id(encounter['id'])}"}


def patient_reference(encounter: Record) -> dict[str, str]:
    return {"reference": f"Patient/{encounter['patient_id']}"}


def practitioner_reference(provider_id: Any) -> dict[str, str] | None:
    return reference("Practitioner", provider_id)


def items(encounter: Record, key: str) -> list[Record]:
    """The encounter's nested items of one kind (an absent or null list is empty)."""
    found = encounter.get(key)
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def profiled(resource_type: str, resource_id: str, *profiles: str) -> Resource:
    return {"resourceType": resource_type, "id": resource_id, "meta": {"profile": list(profiles)}}


def mapped(encounter: Record) -> bool:
    """Whether an encounter record can be mapped at all (a GUID id and a patient)."""
    return is_guid(encounter.get("id")) and text(encounter.get("patient_id")) is not None


def each_item(
    key: str, build: Callable[[Record, Record, MappingContext], Resource]
) -> ManyTransform:
    """A source's transform: `build(item, encounter, ctx)` for each `key` item of an
    encounter that can be mapped at all."""

    def transform(encounter: Record, ctx: MappingContext) -> list[Resource]:
        if not mapped(encounter):
            return []
        return [build(item, encounter, ctx) for item in items(encounter, key)]

    return transform


# -- reads, change time, bulk --------------------------------------------------------------


#: The encounter's update time (see the module docstring), else its creation: the change
#: time Encounter itself declares.
ENCOUNTER_CHANGED = UPDATED

#: How an export reads a chart source: as Encounter does. CareCloud refuses `/encounters`
#: without a patient, so there is no practice-wide listing: an export reads each of its
#: patients' encounters (one call per patient, shared by every chart type and Encounter).
BULK = ENCOUNTER_LISTING


def chart_source(
    name: str,
    transform: ManyTransform,
    description: str,
    *,
    produces: Mapping[str, frozenset[str]] | None = None,
    excludes: Mapping[str, frozenset[str]] | None = None,
) -> Source:
    """A source over one patient's encounters: the shared list, the one-call read by id,
    the encounter's change time and the per-patient bulk listing."""
    return Source(
        name=name,
        endpoint=ENCOUNTERS,
        transform=transform,
        patient_param=PATIENT_PARAM,
        fixed_params=ENCOUNTER_PARAMS,
        produces=produces or {},
        excludes=excludes or {},
        read=read_encounter,
        bulk=BULK,
        last_updated=ENCOUNTER_CHANGED,
        description=description,
    )
