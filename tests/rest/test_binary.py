"""Scanned documents' files are served as Binary/<document id>: fetched fresh from the
vendor's signed URL (never handed to clients), within the token's patient compartment."""

from __future__ import annotations

import base64

import httpx

from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from tests.tokens import token


async def test_the_attachment_url_resolves_to_the_pdf(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    document = dataset.endpoint("documents")[0]
    reference = (await fhir.get(f"/fhir/DocumentReference/document-{document['id']}")).json()
    url = reference["content"][0]["attachment"]["url"]
    assert url == f"Binary/document-{document['id']}"
    raw = await fhir.get(f"/fhir/{url}")
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/pdf"
    assert raw.content.startswith(b"%PDF")
    wrapped = await fhir.get(f"/fhir/{url}", headers={"Accept": "application/fhir+json"})
    assert wrapped.json()["resourceType"] == "Binary"
    assert base64.b64decode(wrapped.json()["data"]) == raw.content


async def test_another_patients_file_does_not_exist_for_a_patient_token(
    fhir: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    document = dataset.endpoint("documents")[0]
    other = next(p for p in dataset.endpoint("patients") if p["id"] != document["patient"])
    owner_id = str(document["patient"])

    def bearer(scope: str, patient_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(runtime, scope, patient_id=patient_id)}"}

    path = f"/fhir/Binary/document-{document['id']}"
    assert (
        await fhir.get(path, headers=bearer("patient/*.rs", str(other["id"])))
    ).status_code == 404
    assert (await fhir.get(path, headers=bearer("patient/*.rs", owner_id))).status_code == 200
    narrow = bearer("patient/DocumentReference.rs", owner_id)
    assert (await fhir.get(path, headers=narrow)).status_code == 403
    assert (await fhir.get("/fhir/Binary/document-1")).status_code == 404
    assert (await fhir.get("/fhir/Binary/nothing")).status_code == 404
