"""DiagnosticReport (us-core-diagnosticreport-note) ← DrChrono scanned documents that are
reports: imaging (LOINC 18748-4 → category Radiology LP29684-5), EKG (11524-6 → Cardiology
LP29708-2) and pathology studies (11526-1 → Pathology LP7839-6), by the document type the
DocumentReference reads from the metatags (REPORT_CATEGORY). A helper module of
`diagnostic_report`: it defines no MAPPING.

Each report is also its DocumentReference (same id, `document-<id>`), and its presentedForm
names the same file by the same URL (`Binary/document-<id>`), as US Core's clinical notes
guidance asks. Other documents and clinical notes are notes, not reports: DocumentReference
only. A cardiology report's results are the physical exam findings DrChrono recorded for the
patient on the report's day (Observation `exam-<id>`); DrChrono documents carry no other link
to results, and no appointment (so no encounter).

Vendor calls: the patient's document list (shared with DocumentReference through the cache),
plus the patient's physical exams (shared with Observation) only when a cardiology report is
among the documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facade.core.compartment import BulkListing, FetchContext, LookupTables, fhir_id
from facade.core.mapping import MappingContext, Record, Resource
from mappings.drchrono import observation_exam
from mappings.drchrono.document_reference import DOCUMENT_SOURCE, document_type
from mappings.drchrono.fields import fhir_date, instant, meta, reference, text
from mappings.valuemaps import REPORT_CATEGORY, US_CORE

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

PROFILE = US_CORE + "us-core-diagnosticreport-note"
#: Same prefix as the DocumentReference of the same document.
SOURCE_NAME = DOCUMENT_SOURCE
CARDIOLOGY = "LP29708-2"
CATEGORIES = frozenset(c["code"] for c in REPORT_CATEGORY.entries.values())
CODES = frozenset(REPORT_CATEGORY.entries)
EXAMS = observation_exam.ENDPOINT


def report_category(document: Record) -> dict[str, str] | None:
    """The US Core report category of a document, or None when it is not a report."""
    category: dict[str, str] | None = REPORT_CATEGORY.get(
        document_type(document)["coding"][0]["code"]
    )
    return category


def _needs_exams(documents: list[Record]) -> bool:
    return any((report_category(d) or {}).get("code") == CARDIOLOGY for d in documents)


async def _exams(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    return await client.list_all(
        EXAMS, {"patient": patient_id}, reason=fc.reason, cache_ttl=fc.cache_ttl
    )


async def fetch(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    """The patient's documents, with the patient's exams when one of them is an EKG."""
    documents = await client.list_all(
        "documents", {"patient": patient_id}, reason=fc.reason, cache_ttl=fc.cache_ttl
    )
    exams = await _exams(client, patient_id, fc) if _needs_exams(documents) else []
    return [{"document": d, "exams": exams} for d in documents]


async def read(client: VendorClient, vendor_id: str, fc: FetchContext) -> list[Record]:
    document = await client.get_record(
        "documents", vendor_id, reason=fc.reason, cache_ttl=fc.cache_ttl
    )
    if document is None or text(document.get("patient")) is None:
        return []
    exams = await _exams(client, str(document["patient"]), fc) if _needs_exams([document]) else []
    return [{"document": document, "exams": exams}]


def _join(record: Record, lookups: LookupTables) -> Record | None:
    exams = lookups.find(EXAMS, "patient", record.get("patient")) if _needs_exams([record]) else []
    return {"document": record, "exams": exams}


#: Listed like DocumentReference's documents (no `since`), so one export lists them once.
BULK = BulkListing("documents", lookups=(EXAMS,), join=_join, since_param=None)


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    document: Record = record["document"]
    category = report_category(document)
    patient = text(document.get("patient"))
    if category is None or patient is None:
        return []
    resource_id = fhir_id(SOURCE_NAME, document["id"])
    resource: Resource = {
        "resourceType": "DiagnosticReport",
        "id": resource_id,
        "meta": meta(PROFILE, document.get("updated_at"), ctx),
        "status": "entered-in-error" if document.get("archived") else "final",
        "category": [{"coding": [category], "text": category["display"]}],
        "code": document_type(document),
        "subject": {"reference": f"Patient/{patient}"},
    }
    day = fhir_date(document.get("date"))
    if day:
        resource["effectiveDateTime"] = day
    issued = instant(document.get("updated_at"), ctx.timezone)
    if issued:
        resource["issued"] = issued
    doctor = reference("Practitioner", document.get("doctor"))
    if doctor:
        resource["performer"] = [doctor]
    if category["code"] == CARDIOLOGY and day:
        findings = [
            {"reference": f"Observation/{observation['id']}"}
            for exam in record.get("exams") or []
            if str(exam.get("patient")) == patient and fhir_date(exam.get("effective_time")) == day
            for observation in observation_exam.transform(exam, ctx)
        ]
        if findings:
            resource["result"] = findings
    form: dict[str, Any] = {"contentType": "application/pdf", "url": f"Binary/{resource_id}"}
    description = text(document.get("description"))
    if description:
        form["title"] = description
    resource["presentedForm"] = [form]
    return [resource]
