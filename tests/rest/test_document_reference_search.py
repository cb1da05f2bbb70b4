"""DocumentReference: a patient's clinical notes and scanned documents, exactly the sandbox's
records; the SHALL combinations; no DrChrono file URL ever leaves facade."""

from __future__ import annotations

import base64

import httpx

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import all_pages

CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"


def expected_ids(dataset: SandboxDataset, patient_id: object) -> list[str]:
    notes = [
        f"note-{n['id']}"
        for n in dataset.endpoint("clinical_notes")
        if str(n["patient"]) == str(patient_id) and not n["archived"]
    ]
    documents = [
        f"document-{d['id']}"
        for d in dataset.endpoint("documents")
        if str(d["patient"]) == str(patient_id)
    ]
    return sorted(notes + documents)


async def test_patient_search_is_exactly_notes_and_documents(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    for patient in dataset.endpoint("patients")[:5]:
        for reference in (str(patient["id"]), f"Patient/{patient['id']}"):
            before = len(sandbox.api_requests())
            found = await all_pages(warm_fhir, f"/fhir/DocumentReference?patient={reference}")
            assert sorted(r["id"] for r in found) == expected_ids(dataset, patient["id"])
            calls = sandbox.api_requests()[before:]
            assert {c.endpoint for c in calls} <= {"clinical_notes", "appointments", "documents"}
            # One page each at most: notes at their largest page (20), the shared appointments.
            assert len(calls) <= 3
            for call in calls:
                assert call.query["patient"] == str(patient["id"])
            for resource in found:
                assert resource["subject"]["reference"] == f"Patient/{patient['id']}"
                for content in resource["content"]:
                    attachment = content["attachment"]
                    assert "data" in attachment or attachment["url"].startswith("Binary/")
                    assert "X-Amz" not in str(attachment)


async def test_note_content_status_and_encounter(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    note = dataset.endpoint("clinical_notes")[0]
    appointment = next(
        a for a in dataset.endpoint("appointments") if str(a["id"]) == str(note["appointment"])
    )
    read = await warm_fhir.get(f"/fhir/DocumentReference/note-{note['id']}")
    assert read.status_code == 200
    body = read.json()
    assert body["docStatus"] == (
        "final" if appointment["clinical_note"]["locked"] else "preliminary"
    )
    assert (
        body["context"]["encounter"][0]["reference"] == f"Encounter/encounter-{appointment['id']}"
    )
    text = base64.b64decode(body["content"][0]["attachment"]["data"]).decode()
    for section in note["clinical_note_sections"]:
        for value in section["values"]:
            if value["value"]:
                assert value["value"] in text
    unlocked = [
        a
        for a in dataset.endpoint("appointments")
        if a["clinical_note"]["pdf"] and not a["clinical_note"]["locked"]
    ]
    assert unlocked, "the sandbox has an unsigned note"
    draft = (await warm_fhir.get(f"/fhir/DocumentReference/note-{unlocked[0]['id']}")).json()
    assert draft["docStatus"] == "preliminary"


async def test_type_category_and_date_combinations(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    patient = dataset.endpoint("patients")[0]
    base = f"/fhir/DocumentReference?patient={patient['id']}"
    everything = await all_pages(warm_fhir, base)
    progress = [r for r in everything if r["type"]["coding"][0]["code"] == "11506-3"]
    for value in ("11506-3", "http://loinc.org|11506-3"):
        found = await all_pages(warm_fhir, f"{base}&type={value}")
        assert sorted(r["id"] for r in found) == sorted(r["id"] for r in progress)
    consult = await all_pages(warm_fhir, f"{base}&type=http://loinc.org|11488-4")
    assert consult and all(r["id"].startswith("document-") for r in consult)
    # A scanned-only type skips the clinical notes: no notes call at all.
    before = len(sandbox.api_requests())
    await all_pages(
        warm_fhir,
        f"/fhir/DocumentReference?patient={dataset.endpoint('patients')[2]['id']}&type=11488-4",
    )
    assert "clinical_notes" not in {c.endpoint for c in sandbox.api_requests()[before:]}
    for value in ("clinical-note", f"{CATEGORY}|clinical-note"):
        found = await all_pages(warm_fhir, f"{base}&category={value}")
        assert len(found) == len(everything)
    assert await all_pages(warm_fhir, f"{base}&category={CATEGORY}|other") == []
    sample = everything[0]["date"][:10]
    for prefix, keep in (
        ("ge", lambda d: d >= sample),
        ("gt", lambda d: d > sample),
        ("le", lambda d: d <= sample),
        ("lt", lambda d: d < sample),
    ):
        found = await all_pages(warm_fhir, f"{base}&category=clinical-note&date={prefix}{sample}")
        assert sorted(r["id"] for r in found) == sorted(
            r["id"] for r in everything if keep(r["date"][:10])
        ), prefix


async def test_read_and_id_search(warm_fhir: httpx.AsyncClient, dataset: SandboxDataset) -> None:
    document = dataset.endpoint("documents")[0]
    read = await warm_fhir.get(f"/fhir/DocumentReference/document-{document['id']}")
    assert read.status_code == 200
    assert read.json()["author"][0]["reference"] == f"Practitioner/{document['doctor']}"
    found = await all_pages(warm_fhir, f"/fhir/DocumentReference?_id=document-{document['id']}")
    assert [r["id"] for r in found] == [f"document-{document['id']}"]
    for missing in ("document-1", "note-1", "encounter-5", "nothing"):
        assert (await warm_fhir.get(f"/fhir/DocumentReference/{missing}")).status_code == 404
