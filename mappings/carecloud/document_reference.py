"""DocumentReference (us-core-documentreference) ← the signed note of each CareCloud
encounter (`note`, null while the encounter is open) and the patient's C-CDA
(`GET /patients/<guid>/ccda`, generated on demand by `$docref`; see `docref`).

A note is a clinical note of type Progress note (LOINC 11506-3), category clinical-note,
docStatus final (amended when the encounter was amended after signing), author and
authenticator the signing provider, context = its encounter and the visit's period. Its text
is not inlined: the attachment names `Binary/note-<encounter key>-<note id>` (same id as the
DocumentReference), which facade answers from the encounter as text/plain.

Must-support elements CareCloud has no field for: none for notes. The CCD has no
`context.encounter` (it summarizes the whole record, not one visit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facade.core.compartment import (
    BinaryContent,
    BulkListing,
    CompartmentMapping,
    FetchContext,
    Source,
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
from mappings.carecloud.chart import (
    chart_source,
    encounter_reference,
    item_id,
    mapped,
    patient_reference,
    practitioner_reference,
    profiled,
)
from mappings.carecloud.docref import CCD_SOURCE, ccd_transform, docref, no_stored_ccd, read_ccd
from mappings.carecloud.encounter_record import read_encounter
from mappings.carecloud.fields import PATIENTS, expand_guid, instant, text
from mappings.ccda import CLINICAL_NOTE
from mappings.valuemaps import DOCUMENT_TYPE, IHE_FORMAT_CODE, US_CORE

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

PROFILE = US_CORE + "us-core-documentreference"
NOTE_SOURCE = "note"
NOTE_ID_SYSTEM = "urn:carecloud:note"
NOTE_CONTENT_TYPE = "text/plain; charset=utf-8"
PROGRESS_NOTE = DOCUMENT_TYPE.entries["progress note"]
#: "The mime type alone is enough to process the document" (IHE formatcode).
MIME_TYPE_SUFFICIENT = {
    "system": IHE_FORMAT_CODE,
    "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
    "display": "mimeType Sufficient",
}


def _note(encounter: Record) -> Record | None:
    note = encounter.get("note")
    return note if isinstance(note, dict) and text(note.get("id")) else None


def note_transform(encounter: Record, ctx: MappingContext) -> list[Resource]:
    note = _note(encounter)
    if not mapped(encounter) or note is None:
        return []
    resource = profiled("DocumentReference", item_id(NOTE_SOURCE, encounter, note["id"]), PROFILE)
    resource["identifier"] = [{"system": NOTE_ID_SYSTEM, "value": str(note["id"])}]
    resource["status"] = "current"
    resource["docStatus"] = "amended" if text(encounter.get("status")) == "amended" else "final"
    resource["type"] = {"coding": [PROGRESS_NOTE], "text": "Progress note"}
    resource["category"] = [CLINICAL_NOTE]
    resource["subject"] = patient_reference(encounter)
    signed = instant(note.get("signed_at"), ctx.timezone)
    if signed:
        resource["date"] = signed
    signer = practitioner_reference(note.get("signed_by"))
    if signer:
        resource["author"] = [signer]
        resource["authenticator"] = signer
    resource["custodian"] = {"reference": f"Organization/{ctx.practice_group_id}"}
    day = text(encounter.get("date_of_service"))
    reason = text(encounter.get("reason_for_visit")) or text(encounter.get("chief_complaint"))
    title = " ".join(p for p in ("Progress note", day, reason and f"({reason})") if p)
    attachment: dict[str, Any] = {
        "contentType": NOTE_CONTENT_TYPE,
        "language": "en-US",
        "url": f"Binary/{resource['id']}",
        "title": title,
    }
    if signed:
        attachment["creation"] = signed
    resource["content"] = [{"attachment": attachment, "format": MIME_TYPE_SUFFICIENT}]
    context: dict[str, Any] = {"encounter": [encounter_reference(encounter)]}
    period = {
        key: moment
        for key, field in (("start", "start_time"), ("end", "end_time"))
        if (moment := instant(encounter.get(field), ctx.timezone))
    }
    if period:
        context["period"] = period
    resource["context"] = context
    return [resource]


async def read_note_text(client: VendorClient, key: str, fc: FetchContext) -> BinaryContent | None:
    """The note's text, from its encounter (the read the DocumentReference made is cached)."""
    for encounter in await read_encounter(client, key, fc):
        note = _note(encounter)
        body = text(note.get("text")) if note else None
        if body is not None:
            data = (body + "\n").encode("utf-8")
            return BinaryContent(NOTE_CONTENT_TYPE, data, str(encounter["patient_id"]))
    return None


MAPPING = CompartmentMapping(
    resource_type="DocumentReference",
    profiles=(PROFILE,),
    sources=(
        chart_source(
            NOTE_SOURCE,
            note_transform,
            "encounters' signed notes (progress notes)",
            produces={"type": frozenset({PROGRESS_NOTE["code"]})},
        ),
        Source(
            name=CCD_SOURCE,
            endpoint=PATIENTS,
            transform=ccd_transform,
            vendor_key=expand_guid,
            patient_param="patient_id",
            fetch=no_stored_ccd,
            read=read_ccd,
            # Nothing stored: the CCD is generated on request, never exported.
            bulk=BulkListing(""),
            produces={"type": frozenset({"34133-9"})},
            last_updated=no_change_time(
                "The C-CDA is generated on request from the whole chart; it has no change"
                " time of its own."
            ),
            description="the C-CDA, generated on demand ($docref); readable by its id",
        ),
    ),
    binaries={NOTE_SOURCE: read_note_text},
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-documentreference-patient", PatientParam()),
        SearchParam(
            "us-core-documentreference-id", ById(lambda v: v, "the encounter or the patient")
        ),
        SearchParam("us-core-documentreference-type", LocalFilter()),
        SearchParam("us-core-documentreference-category", LocalFilter()),
        SearchParam("us-core-documentreference-date", LocalFilter()),
        SearchParam("us-core-documentreference-period", LocalFilter()),
        SearchParam("us-core-documentreference-status", LocalFilter()),
    ),
    author_paths=("author",),
    operations={"docref": docref},
    notes="Signed encounter notes (text by a facade Binary URL) from the encounters list (one"
    " call per patient) and, through $docref, the patient's C-CDA (XML inline, the whole"
    " record: CareCloud's CCD takes no date range, so start/end do not narrow it).",
)
