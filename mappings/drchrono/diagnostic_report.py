"""DiagnosticReport ← two DrChrono sources: lab tests (us-core-diagnosticreport-lab) and
scanned imaging, EKG and pathology reports (us-core-diagnosticreport-note, see `report_note`).

us-core-diagnosticreport-lab ← one report per DrChrono lab test (an
ordered panel such as a CMP): code = the test's LOINC code, category v2-0074 LAB, results =
the lab result Observations of that test, effective = specimen collection, issued = the
latest results release, performer = the performing lab named by the order summary.

One report per test rather than per order: an order can hold several panels (CMP + A1C) and
a report has exactly one code. Vendor calls: as the lab chart (see `labs`): 1 + 2 per lab
order per patient, shared with Observation/ServiceRequest/Specimen through the cache.

DrChrono clinical notes are visit notes with no report category (no cardiology, radiology or
pathology kind): they are served as DocumentReference only. `category=LAB` costs only the
lab calls; a report category or code only the document list (and exams for an EKG).
"""

from __future__ import annotations

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
from mappings.drchrono import bulk_listings, labs, report_note
from mappings.drchrono.fields import LAB_ORDER_CHANGED, changed, instant, text
from mappings.drchrono.valuemaps import LAB_STATUS
from mappings.valuemaps import US_CORE, V2_0074

PROFILE = US_CORE + "us-core-diagnosticreport-lab"
SOURCE_NAME = "lab"
LAB = {"coding": [{"system": V2_0074, "code": "LAB", "display": "Laboratory"}]}


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    test, order = record["test"], record["order"]
    patient = text(order.get("patient"))
    if patient is None:
        return []
    resource: Resource = {
        "resourceType": "DiagnosticReport",
        "id": fhir_id(SOURCE_NAME, test["id"]),
        "meta": {"profile": [PROFILE]},
        "basedOn": [{"reference": f"ServiceRequest/{fhir_id(SOURCE_NAME, test['id'])}"}],
        "status": LAB_STATUS.get(text(test.get("status"))),
        "category": [LAB],
        "code": labs.lab_test_code(test),
        "subject": {"reference": f"Patient/{patient}"},
    }
    collected = instant(test.get("collection_date"), ctx.timezone)
    if collected:
        resource["effectiveDateTime"] = collected
    released = sorted(
        moment
        for moment in (instant(r.get("results_released"), ctx.timezone) for r in record["results"])
        if moment
    )
    if released:
        resource["issued"] = released[-1]
    lab = text(order.get("lab"))
    if lab:
        resource["performer"] = [{"display": lab}]
    resource["specimen"] = [{"reference": f"Specimen/{fhir_id(SOURCE_NAME, test['id'])}"}]
    if record["results"]:
        resource["result"] = [
            {"reference": f"Observation/{fhir_id(SOURCE_NAME, r['id'])}"} for r in record["results"]
        ]
    notes = text(test.get("report_notes"))
    if notes:
        resource["conclusion"] = notes
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="DiagnosticReport",
    profiles=(PROFILE, report_note.PROFILE),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=LAB_ORDER_CHANGED,
            endpoint="lab_tests",
            transform=transform,
            produces={"category": frozenset({"LAB"})},
            # Lab tests carry any LOINC code, but never a report's document type.
            excludes={"code": report_note.CODES},
            fetch=labs.fetch_tests,
            read=labs.read_test,
            bulk=bulk_listings.LAB_TESTS,
            description="lab tests with their results, joined with their lab order summary",
        ),
        Source(
            name=report_note.SOURCE_NAME,
            last_updated=changed("document.updated_at", "document.created_at"),
            endpoint="documents",
            transform=report_note.transform,
            produces={"category": report_note.CATEGORIES, "code": report_note.CODES},
            fetch=report_note.fetch,
            read=report_note.read,
            bulk=report_note.BULK,
            description="scanned imaging, EKG and pathology reports (with an EKG's exam findings)",
        ),
    ),
    search_params=(
        SearchParam("us-core-diagnosticreport-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the report's lab test or document")),
        SearchParam("us-core-diagnosticreport-category", LocalFilter()),
        SearchParam("us-core-diagnosticreport-code", LocalFilter()),
        SearchParam("us-core-diagnosticreport-date", LocalFilter()),
        SearchParam("us-core-diagnosticreport-status", LocalFilter()),
    ),
    notes="Lab reports (us-core-diagnosticreport-lab) from lab tests; imaging, EKG and pathology"
    " reports (us-core-diagnosticreport-note) from scanned documents, their PDF at the same"
    " Binary URL as the document's DocumentReference. Clinical (visit) notes have no report"
    " category: they are DocumentReferences only.",
)
