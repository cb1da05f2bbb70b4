"""GET /patients/{id}/ccda: a well-formed CCD whose sections (by LOINC code) hold the
patient's allergies, medications, problems, results, vitals, immunizations and smoking status.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx

from facade.upstream.carecloud.sandbox.state import SandboxState

NS = {"cda": "urn:hl7-org:v3"}
SECTIONS = {
    "48765-2": "allergies",
    "10160-0": "medications",
    "11450-4": "problems",
    "30954-2": "lab_results",
    "8716-3": "vitals",
    "11369-6": "immunizations",
}


async def test_the_ccd_carries_every_chart_section_of_the_patient(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    adult = state.dataset.patients[0]

    response = await api.get(f"/patients/{adult['id']}/ccda")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    doc = ET.fromstring(response.content)
    assert doc.find("cda:code", NS).get("code") == "34133-9"  # type: ignore[union-attr]
    patient = doc.find("cda:recordTarget/cda:patientRole/cda:patient", NS)
    assert patient is not None
    assert patient.find("cda:name/cda:family", NS).text == adult["last_name"]  # type: ignore[union-attr]
    sections = {
        s.find("cda:code", NS).get("code"): s  # type: ignore[union-attr]
        for s in doc.iterfind(".//cda:section", NS)
    }
    assert set(SECTIONS) | {"29762-2"} == set(sections)
    encounters = state.dataset.encounters_of(adult["id"])
    for code, key in SECTIONS.items():
        ids = {str(row["id"]) for e in encounters for row in e[key]}
        found = {
            node.get("extension")
            for node in sections[code].iterfind(".//cda:id", NS)
            if node.get("extension") in ids
        }
        assert found == ids, code


async def test_medications_are_coded_in_rxnorm_with_the_ndc_as_translation(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    adult = state.dataset.patients[0]

    doc = ET.fromstring((await api.get(f"/patients/{adult['id']}/ccda")).content)

    codes = doc.findall(
        ".//cda:manufacturedMaterial/cda:code[@codeSystem='2.16.840.1.113883.6.88']", NS
    )
    assert {c.get("code") for c in codes} >= {"861007", "617310"}
    translations = [c.find("cda:translation", NS) for c in codes]
    assert all(
        t is not None and t.get("codeSystem") == "2.16.840.1.113883.6.69" for t in translations
    )


async def test_the_ccd_of_an_unknown_patient_is_a_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/patients/nope/ccda")

    assert response.status_code == 404
    assert response.json() == {"error": "Patient not found"}


async def test_every_patients_ccd_is_well_formed(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    for patient in state.dataset.patients:
        response = await api.get(f"/patients/{patient['id']}/ccda")
        patient_id = ET.fromstring(response.content).find(
            "cda:recordTarget/cda:patientRole/cda:id", NS
        )
        assert patient_id is not None
        assert patient_id.get("extension") == patient["id"]
