"""Kick-off: headers, parameters and access, for system, Patient and Group exports."""

from __future__ import annotations

from typing import Any

import pytest

from facade.runtime import Runtime
from tests.bulk.conftest import KICKOFF_HEADERS, export, job_id_of, kick_off
from tests.tokens import token
from tests.vendors import VENDORS, patient_ids, practice_group

pytestmark = VENDORS

LEVELS = ["$export", "Patient/$export", "Group/{group}/$export"]


def _path(runtime: Runtime, level: str) -> str:
    assert runtime.sandbox is not None
    return level.format(group=practice_group(runtime.sandbox)[0])


@pytest.mark.parametrize("level", LEVELS)
async def test_prefer_header_must_be_respond_async(fhir, runtime, exports, level):
    response = await fhir.get(
        f"/fhir/{_path(runtime, level)}", headers={"Accept": "application/fhir+json"}
    )
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("level", LEVELS)
async def test_accept_header_must_be_fhir_json(fhir, runtime, exports, level):
    response = await fhir.get(f"/fhir/{_path(runtime, level)}", headers={"Prefer": "respond-async"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("level", LEVELS)
async def test_success_is_202_with_absolute_content_location(fhir, runtime, exports, level):
    response = await kick_off(fhir, _path(runtime, level))
    assert response.status_code == 202
    assert response.headers["content-location"].startswith(
        "http://facade.test/fhir/$export-status/"
    )


@pytest.mark.parametrize("fmt", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
async def test_output_formats_accepted(fhir, exports, fmt):
    response = await kick_off(fhir, "$export", params={"_outputFormat": fmt})
    assert response.status_code == 202


@pytest.mark.parametrize(
    "params",
    [
        {"_outputFormat": "text/csv"},
        {"_type": "Banana"},
        {"_since": "yesterday"},
        {"_typeFilter": "Observation?flavour=sweet"},
        {"_typeFilter": "Observation?category=laboratory", "_type": "Patient"},
        {"_elements": "id"},
    ],
)
async def test_bad_parameters_are_refused(fhir, exports, params):
    response = await kick_off(fhir, "$export", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_patient_parameter_only_by_post(fhir, exports):
    response = await kick_off(fhir, "Patient/$export", params={"patient": "Patient/1"})
    assert response.status_code == 400


async def test_post_with_parameters_body(fhir, runtime, exports):
    patient = patient_ids(runtime.sandbox)[0]
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Patient,AllergyIntolerance"},
            {"name": "patient", "valueReference": {"reference": f"Patient/{patient}"}},
        ],
    }
    manifest = await export(fhir, exports, "Patient/$export", body=body)
    assert {o["type"] for o in manifest["output"]} <= {"Patient", "AllergyIntolerance"}
    assert manifest["requiresAccessToken"] is True


def _parameters(*parameter: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parameter)}


@pytest.mark.parametrize(
    ("body", "element", "says"),
    [
        (
            _parameters({"name": "_since", "valueInstant": "yesterday"}),
            "Parameters.parameter[0].valueInstant",
            "is not a valid FHIR instant",
        ),
        (
            _parameters(
                {"name": "_type", "valueString": "Patient"},
                {"name": "_type", "valueString": "Patient", "valueCode": "Patient"},
            ),
            "Parameters.parameter[1]",
            "has more than one value[x]",
        ),
        (
            _parameters({"name": "_type", "valueStrin": "Patient"}),
            "Parameters.parameter[0].valueStrin",
            "is not an element",
        ),
        (
            _parameters({"valueString": "Patient"}),
            "Parameters.parameter[0].name",
            "is required",
        ),
        (
            _parameters({"name": "patient", "valueReference": "Patient/1"}),
            "Parameters.parameter[0].valueReference",
            "must be a JSON object",
        ),
        (
            _parameters({"name": "patient", "valueString": "Patient/1"}),
            "Parameters.parameter[0].valueReference",
            "patient takes a Reference",
        ),
        ({"resourceType": "Parameters", "parameter": True}, "Parameters.parameter", "a list"),
    ],
)
async def test_a_malformed_parameters_body_is_400_naming_the_element(
    fhir, exports, body, element, says
):
    response = await kick_off(fhir, "Patient/$export", body=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"][0] == element
    assert element in issue["details"]["text"] and says in issue["details"]["text"]
    assert issue["code"] in ("invalid", "value")


async def test_without_token_401(runtime, exports):
    import httpx

    from facade.app import create_app

    app = create_app(runtime.settings, runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://facade.test"
    ) as bare:
        response = await bare.get("/fhir/$export", headers=KICKOFF_HEADERS)
    assert response.status_code == 401


async def test_only_backend_tokens_with_system_scopes(fhir, runtime, exports):
    patient = patient_ids(runtime.sandbox)[0]
    user = token(runtime, "patient/*.rs", patient_id=patient)
    response = await kick_off(fhir, "$export", headers={"Authorization": f"Bearer {user}"})
    assert response.status_code == 403


async def test_only_granted_types(fhir, runtime, exports):
    narrow = token(runtime, "system/Patient.rs")
    response = await kick_off(
        fhir,
        "$export",
        params={"_type": "Observation"},
        headers={"Authorization": f"Bearer {narrow}"},
    )
    assert response.status_code == 403
    job = job_id_of(await kick_off(fhir, "$export", headers={"Authorization": f"Bearer {narrow}"}))
    await exports.worker.wait(job)
    status = await fhir.get(
        f"/fhir/$export-status/{job}", headers={"Authorization": f"Bearer {narrow}"}
    )
    assert {o["type"] for o in status.json()["output"]} == {"Patient"}


async def test_too_many_running_exports_429_but_polling_never(fhir, runtime, exports):
    await exports.worker.stop()  # nothing finishes: every job stays queued
    ids = [job_id_of(await kick_off(fhir, "$export")) for _ in range(exports.limits.max_running)]
    refused = await kick_off(fhir, "$export")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    for job in ids:
        poll = await fhir.get(f"/fhir/$export-status/{job}")
        assert poll.status_code == 202
        assert "X-Progress" in poll.headers and int(poll.headers["retry-after"]) >= 1
