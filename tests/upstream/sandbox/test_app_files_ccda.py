"""Pre-signed file URLs (documents, clinical note PDFs) and the patient C-CDA."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.upstream.sandbox.app_harness import BASE_URL, make_state, sandbox_client

V3 = "{urn:hl7-org:v3}"


async def test_document_urls_are_absolute_signed_and_fetchable_without_a_token() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        document = (await client.get("/api/documents/1000")).json()["document"]
    async with sandbox_client(state, authorized=False) as anonymous:
        response = await anonymous.get(document)
    url = urlsplit(document)
    query = parse_qs(url.query)
    assert document.startswith(f"{BASE_URL}/files/documents/1000.pdf?")
    assert query["X-Amz-Expires"] == ["3600"] and query["X-Amz-Signature"][0]
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-") and response.content.rstrip().endswith(b"%%EOF")


async def test_nested_file_references_are_signed_too() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        appointment = (await client.get("/api/appointments/500?verbose=true")).json()
        patient = (await client.get("/api/patients/100?verbose=true")).json()
    assert "X-Amz-Signature=" in appointment["clinical_note"]["pdf"]
    photo_url = patient["primary_insurance"]["photo_front"]
    async with sandbox_client(state, authorized=False) as anonymous:
        photo = await anonymous.get(photo_url)
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/png"
    assert photo.content.startswith(b"\x89PNG")


async def test_signed_url_expires_after_an_hour() -> None:
    state, clock = make_state()
    async with sandbox_client(state) as client:
        document = (await client.get("/api/documents/1000")).json()["document"]
        clock.advance(3600)
        still = await client.get(document)
        clock.advance(1)
        expired = await client.get(document)
    assert still.status_code == 200
    assert expired.status_code == 403
    assert b"expired" in expired.content


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace("1000.pdf", "1001.pdf"),
        lambda url: url.replace("X-Amz-Expires=3600", "X-Amz-Expires=999999"),
        lambda url: url.split("?")[0],
    ],
)
async def test_tampered_or_unsigned_file_urls_are_forbidden(tamper: Callable[[str], str]) -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        document = (await client.get("/api/documents/1000")).json()["document"]
        response = await client.get(tamper(document))
    assert response.status_code == 403


async def test_ccda_is_a_ccd_with_the_patients_name_and_sections() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        response = await client.get("/api/patients/100/ccda")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{V3}ClinicalDocument"
    templates = {t.get("root") for t in root.findall(f"{V3}templateId")}
    assert {"2.16.840.1.113883.10.20.22.1.1", "2.16.840.1.113883.10.20.22.1.2"} <= templates
    name = root.find(f"{V3}recordTarget/{V3}patientRole/{V3}patient/{V3}name")
    assert name is not None
    assert name.findtext(f"{V3}given") == "Jane" and name.findtext(f"{V3}family") == "Doe"
    sections = {
        s.find(f"{V3}code").get("code"): s  # type: ignore[union-attr]
        for s in root.iter(f"{V3}section")
    }
    assert set(sections) == {"48765-2", "10160-0", "11450-4", "30954-2", "8716-3", "11369-6"}
    codes = {c.get("code") for c in root.iter(f"{V3}code")} | {
        t.get("code") for t in root.iter(f"{V3}translation")
    }
    # Jane's hypertension (I10), lisinopril (314076), glucose (2345-7), COVID vaccine (208),
    # penicillin allergy (7980), height from her appointment's vitals (8302-2).
    assert {"I10", "314076", "2345-7", "208", "7980", "8302-2"} <= codes
    assert "J45.909" not in codes  # John's asthma is not in Jane's document


async def test_ccda_date_range_keeps_only_entries_in_the_window() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        response = await client.get("/api/patients/100/ccda?date_range=2024-01-01/2024-06-01")
    codes = {c.get("code") for c in ET.fromstring(response.content).iter(f"{V3}code")}
    assert "2345-7" in codes  # glucose, 2024-03-04
    assert "208" not in codes  # COVID vaccine, 2021


async def test_ccda_for_an_unknown_patient_is_404() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        response = await client.get("/api/patients/999/ccda")
    assert response.status_code == 404
    assert state.api_requests()[0].endpoint == "patients.ccda"
