"""Every profile the CapabilityStatement claims has data in the sandbox, as (g)(10) testing
needs (a claimed profile without a resource is a skipped, so failed, test group), over
every vendor's sandbox; and where a vendor serves clinical-note reports, they follow US
Core's clinical notes guidance: all three report categories, each report's presentedForm
also a DocumentReference attachment of the same patient."""

from __future__ import annotations

from typing import Any

import httpx

from mappings.valuemaps import US_CORE
from tests.chart import every_resource, patient_of
from tests.conftest import all_pages
from tests.vendors import VENDORS, per_vendor, registry

#: US Core clinical notes guidance: the report categories a server must have data for.
REPORT_CATEGORIES = {"LP29684-5", "LP29708-2", "LP7839-6"}
NOTE_REPORT = US_CORE + "us-core-diagnosticreport-note"


def serving_note_reports(vendor_name: str) -> list[str]:
    """The clinical-note report profile, if the vendor has such reports to serve it from
    (a vendor without any leaves it unclaimed, and its mapping notes say why)."""
    report = registry(vendor_name).get("DiagnosticReport")
    return [NOTE_REPORT] if NOTE_REPORT in getattr(report, "profiles", ()) else []


async def _provenances(client: httpx.AsyncClient, patient_id: str) -> list[dict[str, Any]]:
    """Provenance is only reachable by _revinclude (it has no search of its own here)."""
    bundle = await all_pages(
        client, f"/fhir/DiagnosticReport?patient={patient_id}&_revinclude=Provenance:target"
    )
    return [r for r in bundle if r["resourceType"] == "Provenance"]


@VENDORS
async def test_every_claimed_profile_has_a_conforming_resource(
    sandbox_fhir: httpx.AsyncClient,
) -> None:
    metadata = (await sandbox_fhir.get("/fhir/metadata")).json()
    patients = [r["id"] for r in await all_pages(sandbox_fhir, "/fhir/Patient?_count=250")]
    without_data: list[str] = []
    for entry in metadata["rest"][0]["resource"]:
        claimed = entry.get("supportedProfile", [])
        if not claimed:
            continue
        if entry["type"] == "Provenance":
            resources = await _provenances(sandbox_fhir, patients[0])
        else:
            resources = await every_resource(sandbox_fhir, entry["type"], patients)
        conforming = {p for r in resources for p in r.get("meta", {}).get("profile", [])}
        without_data += [profile for profile in claimed if profile not in conforming]
    assert without_data == []


@per_vendor("note_profile", serving_note_reports, ids=lambda url: url.rsplit("/", 1)[1])
async def test_reports_cover_every_category_and_share_their_documents_files(
    sandbox_fhir: httpx.AsyncClient, note_profile: str
) -> None:
    patients = [r["id"] for r in await all_pages(sandbox_fhir, "/fhir/Patient?_count=250")]
    reports = [
        r
        for r in await every_resource(sandbox_fhir, "DiagnosticReport", patients)
        if note_profile in r["meta"]["profile"]
    ]
    categories = {c["code"] for r in reports for cat in r["category"] for c in cat["coding"]}
    assert categories >= REPORT_CATEGORIES
    attachments = {
        (patient_of(d), content["attachment"].get("url"))
        for d in await every_resource(sandbox_fhir, "DocumentReference", patients)
        for content in d["content"]
    }
    forms = {(patient_of(r), form["url"]) for r in reports for form in r["presentedForm"]}
    assert forms and forms <= attachments
    binary = await sandbox_fhir.get(f"/fhir/{sorted(forms)[0][1]}")
    assert binary.status_code == 200
    assert binary.headers["content-type"].startswith("application/pdf")
