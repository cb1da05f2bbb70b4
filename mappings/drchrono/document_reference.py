"""DocumentReference (us-core-documentreference) ← DrChrono scanned documents
(/api/documents), clinical notes (/api/clinical_notes joined with their appointment) and the
patient's C-CDA (/api/patients/<id>/ccda, generated on demand by `$docref`).

Attachments never carry DrChrono's file URLs: they are pre-signed S3 links that expire an
hour after the vendor answered, so a stored or cached DocumentReference would point at a dead
link. What facade can build without a file download is inline `data`: a clinical note's
sections as text/plain, the C-CDA's XML. A scanned document's PDF is named by a relative
`url` (`Binary/document-<id>`, resolved like a reference against facade's base), which facade
answers by asking DrChrono for a fresh signed link.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from facade.core.compartment import (
    BinaryContent,
    CompartmentMapping,
    FetchContext,
    Source,
    fhir_id,
)
from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
    no_change_time,
)
from mappings.drchrono import bulk_listings
from mappings.drchrono.docref import CCD_SOURCE, ccd_transform, docref, read_ccd
from mappings.drchrono.encounter import encounter_id, visit_period
from mappings.drchrono.fields import (
    APPOINTMENT_PARAMS,
    UPDATED,
    changed,
    fhir_date,
    instant,
    meta,
    reference,
    text,
)
from mappings.drchrono.valuemaps import ENCOUNTER_STATUS
from mappings.valuemaps import DOCUMENT_TYPE, IHE_FORMAT_CODE, US_CORE, US_CORE_DOCUMENT_CATEGORY

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

PROFILE = US_CORE + "us-core-documentreference"
DOCUMENT_SOURCE = "document"
NOTE_SOURCE = "note"
DOCUMENT_ID_SYSTEM = "urn:drchrono:document"
NOTE_ID_SYSTEM = "urn:drchrono:clinical-note"

CLINICAL_NOTE = {
    "coding": [
        {"system": US_CORE_DOCUMENT_CATEGORY, "code": "clinical-note", "display": "Clinical Note"}
    ]
}
#: "The mime type alone is enough to process the document" (IHE formatcode).
MIME_TYPE_SUFFICIENT = {
    "system": IHE_FORMAT_CODE,
    "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
    "display": "mimeType Sufficient",
}
PROGRESS_NOTE = DOCUMENT_TYPE.entries["progress note"]
#: Clinical notes are listed `since` the epoch (the endpoint requires a date filter) with
#: their field values (verbose), at the endpoint's largest page (20).
NOTE_PARAMS = {"since": "1970-01-01T00:00:00", "verbose": "true", "page_size": "20"}


def _custodian(ctx: MappingContext) -> dict[str, str]:
    return {"reference": f"Organization/{ctx.practice_group_id}"}


def document_type(record: Record) -> dict[str, Any]:
    """The LOINC type named by a metatag (or the description's start), else `unknown`."""
    names = [text(tag) for tag in record.get("metatags") or []]
    description = text(record.get("description")) or ""
    coding = None
    for name in names:
        if name and name.lower() in DOCUMENT_TYPE.entries:
            coding = DOCUMENT_TYPE.entries[name.lower()]
            break
    if coding is None:
        coding = next(
            (c for k, c in DOCUMENT_TYPE.entries.items() if description.lower().startswith(k)),
            DOCUMENT_TYPE.fallback,
        )
    concept: dict[str, Any] = {"coding": [coding]}
    if description:
        concept["text"] = description
    return concept


def document_transform(record: Record, ctx: MappingContext) -> list[Resource]:
    document_id = str(record["id"])
    resource: Resource = {
        "resourceType": "DocumentReference",
        "id": fhir_id(DOCUMENT_SOURCE, document_id),
        "meta": meta(PROFILE, record.get("updated_at"), ctx),
        "identifier": [{"system": DOCUMENT_ID_SYSTEM, "value": document_id}],
        "status": "entered-in-error" if record.get("archived") else "current",
        "type": document_type(record),
        "category": [CLINICAL_NOTE],
        "subject": {"reference": f"Patient/{record['patient']}"},
    }
    moment = instant(record.get("updated_at"), ctx.timezone)
    if moment:
        resource["date"] = moment
    doctor = reference("Practitioner", record.get("doctor"))
    if doctor:
        resource["author"] = [doctor]
    resource["custodian"] = _custodian(ctx)
    description = text(record.get("description"))
    attachment: dict[str, Any] = {
        "contentType": "application/pdf",
        "url": f"Binary/{resource['id']}",
    }
    if description:
        attachment["title"] = description
    resource["content"] = [{"attachment": attachment, "format": MIME_TYPE_SUFFICIENT}]
    day = fhir_date(record.get("date"))
    if day:
        resource["context"] = {"period": {"start": day}}
    return [resource]


def note_text(record: Record) -> str:
    """The note's sections as plain text: a heading per section, one line per value."""
    lines: list[str] = []
    for section in record.get("clinical_note_sections") or []:
        values = [text(v.get("value")) for v in section.get("values") or [] if isinstance(v, dict)]
        values = [v for v in values if v]
        if not values:
            continue
        lines.append(f"{text(section.get('name')) or 'Note'}:")
        lines.extend(f"  {value}" for value in values)
    return "\n".join(lines) + ("\n" if lines else "")


def note_transform(record: Record, ctx: MappingContext) -> list[Resource]:
    """A clinical note, joined (by the fetch) with its verbose appointment in `_appointment`."""
    appointment: Record = record.get("_appointment") or {}
    note_id = str(record["id"])
    note = appointment.get("clinical_note") or {}
    signed = note.get("locked")
    if signed is None:
        signed = bool((record.get("signee") or {}).get("locked_by"))
    resource: Resource = {
        "resourceType": "DocumentReference",
        "id": fhir_id(NOTE_SOURCE, note_id),
        "meta": meta(PROFILE, note.get("updated_at") or appointment.get("updated_at"), ctx),
        "identifier": [{"system": NOTE_ID_SYSTEM, "value": note_id}],
        "status": "entered-in-error" if record.get("archived") else "current",
        "docStatus": "final" if signed else "preliminary",
        "type": {"coding": [PROGRESS_NOTE], "text": "Progress note"},
        "category": [CLINICAL_NOTE],
        "subject": {"reference": f"Patient/{record['patient']}"},
    }
    moment = instant(note.get("updated_at") or appointment.get("updated_at"), ctx.timezone)
    if moment:
        resource["date"] = moment
    doctor = reference("Practitioner", appointment.get("doctor"))
    if doctor:
        resource["author"] = [doctor]
    resource["custodian"] = _custodian(ctx)
    body = note_text(record)
    attachment: dict[str, Any] = {
        "contentType": "text/plain; charset=utf-8",
        "language": "en-US",
        "data": base64.b64encode(body.encode()).decode("ascii"),
    }
    reason = text(appointment.get("reason"))
    day = fhir_date(appointment.get("scheduled_time"))
    attachment["title"] = " ".join(p for p in ("Progress note", day, reason and f"({reason})") if p)
    resource["content"] = [{"attachment": attachment, "format": MIME_TYPE_SUFFICIENT}]
    context: dict[str, Any] = {}
    status = ENCOUNTER_STATUS.get(text(appointment.get("status")))
    if status is not None and appointment.get("id") is not None:
        context["encounter"] = [{"reference": f"Encounter/{encounter_id(appointment['id'])}"}]
    if appointment:
        period = visit_period(appointment, ctx, status == "finished")
        if period:
            context["period"] = period
    if context:
        resource["context"] = context
    return [resource]


async def fetch_notes(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    """A patient's clinical notes, each with its appointment (the list Encounter shares)."""
    notes = await client.list_all(
        "clinical_notes",
        {"patient": patient_id, **NOTE_PARAMS},
        reason=fc.reason,
        cache_ttl=fc.cache_ttl,
    )
    if not notes:
        return []
    appointments = await client.list_all(
        "appointments",
        {"patient": patient_id, **APPOINTMENT_PARAMS},
        reason=fc.reason,
        cache_ttl=fc.cache_ttl,
    )
    by_id = {str(a["id"]): a for a in appointments}
    return [{**note, "_appointment": by_id.get(str(note.get("appointment")))} for note in notes]


async def read_note(client: VendorClient, note_id: str, fc: FetchContext) -> list[Record]:
    note = await client.get_record(
        "clinical_notes", note_id, {"verbose": "true"}, reason=fc.reason, cache_ttl=fc.cache_ttl
    )
    if note is None:
        return []
    appointment = await client.get_record(
        "appointments",
        str(note.get("appointment") or note_id),
        {"verbose": "true"},
        reason=fc.reason,
        cache_ttl=fc.cache_ttl,
    )
    return [{**note, "_appointment": appointment}]


async def read_document_file(
    client: VendorClient, document_id: str, fc: FetchContext
) -> BinaryContent | None:
    """The scanned document's file. DrChrono's URL is pre-signed and expires within the
    hour, so it is fetched fresh from the record each time and never handed to clients."""
    record = await client.get_record(
        "documents", document_id, reason=fc.reason, cache_ttl=fc.cache_ttl
    )
    url = text(record.get("document")) if record else None
    if record is None or url is None:
        return None
    content_type, data = await client.fetch_file(url)
    return BinaryContent(content_type, data, str(record["patient"]))


async def _no_stored_ccd(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    """Searches list stored documents only; the C-CDA is generated on demand by $docref."""
    return []


MAPPING = CompartmentMapping(
    resource_type="DocumentReference",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=NOTE_SOURCE,
            last_updated=changed(
                "_appointment.clinical_note.updated_at", "_appointment.updated_at"
            ),
            endpoint="clinical_notes",
            transform=note_transform,
            fetch=fetch_notes,
            read=read_note,
            bulk=bulk_listings.CLINICAL_NOTES,
            produces={"type": frozenset({"11506-3"})},
            description="clinical notes (verbose) joined with their appointments",
        ),
        Source(
            name=DOCUMENT_SOURCE,
            last_updated=UPDATED,
            endpoint="documents",
            transform=document_transform,
            produces={
                "type": frozenset(c["code"] for c in DOCUMENT_TYPE.entries.values())
                | {DOCUMENT_TYPE.fallback["code"]},
            },
            description="scanned documents",
        ),
        Source(
            name=CCD_SOURCE,
            last_updated=no_change_time(
                "C-CDA documents are generated on request from the whole chart; none has a "
                "change time of its own."
            ),
            endpoint="patients",
            transform=ccd_transform,
            fetch=_no_stored_ccd,
            read=read_ccd,
            bulk=bulk_listings.NOTHING,
            produces={"type": frozenset({"34133-9"})},
            description="the C-CDA, generated on demand ($docref); readable by its id",
        ),
    ),
    binaries={DOCUMENT_SOURCE: read_document_file},
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-documentreference-patient", PatientParam()),
        SearchParam("us-core-documentreference-id", ById(lambda v: v, "the vendor record")),
        SearchParam("us-core-documentreference-type", LocalFilter()),
        SearchParam("us-core-documentreference-category", LocalFilter()),
        SearchParam("us-core-documentreference-date", LocalFilter()),
        SearchParam("us-core-documentreference-period", LocalFilter()),
        SearchParam("us-core-documentreference-status", LocalFilter()),
    ),
    author_paths=("author",),
    operations={"docref": docref},
    notes="Clinical notes (text inline), scanned documents (PDF by a facade URL) and, through"
    " $docref, the patient's C-CDA (XML inline).",
)
