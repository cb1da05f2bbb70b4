"""What a client reads when facade refuses or answers: an unknown parameter's 400 lists
every parameter, `_include` and `_revinclude` value served; `_include=CareTeam:participant`
works with or without a target type; a 403 is a sentence naming the access refused."""

from __future__ import annotations

import httpx

from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from tests.tokens import token


def _text(response: httpx.Response) -> str:
    return str(response.json()["issue"][0]["details"]["text"])


async def test_an_unknown_parameter_lists_the_includes_and_revincludes_served(
    warm_fhir: httpx.AsyncClient,
) -> None:
    response = await warm_fhir.get("/fhir/CareTeam?patient=1&favourite-colour=blue")

    assert response.status_code == 400
    text = _text(response)
    supported = text.split("Supported: ", 1)[1]
    for name in ("patient", "status", "role", "_count", "_revinclude=Provenance:target"):
        assert name in supported
    for include in (
        "CareTeam:participant",
        "CareTeam:participant:Practitioner",
        "CareTeam:participant:Patient",
        "CareTeam:participant:RelatedPerson",
    ):
        assert f"_include={include}," in supported or supported.endswith(f"_include={include}.")


async def test_a_type_without_includes_still_lists_its_revinclude(
    warm_fhir: httpx.AsyncClient,
) -> None:
    response = await warm_fhir.get("/fhir/Patient?favourite-colour=blue")

    assert response.status_code == 400
    assert _text(response).endswith("_count, _revinclude=Provenance:target.")


def _included(bundle: dict) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "include"
    }


async def test_include_careteam_participant_without_a_type_adds_every_member(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    child = next(p for p in dataset.endpoint("patients") if p["responsible_party_name"])
    search = f"/fhir/CareTeam?patient={child['id']}&_include="

    untyped = await warm_fhir.get(search + "CareTeam:participant")
    typed = await warm_fhir.get(search + "CareTeam:participant:Practitioner")

    assert untyped.status_code == 200, untyped.text
    everyone = _included(untyped.json())
    assert f"Practitioner/{child['doctor']}" in everyone
    assert f"Patient/{child['id']}" in everyone
    assert f"RelatedPerson/relatedperson-{child['id']}-responsible" in everyone
    assert "_include=CareTeam%3Aparticipant&" in untyped.json()["link"][0]["url"]
    assert typed.status_code == 200, typed.text
    doctors = _included(typed.json())
    assert doctors and all(ref.startswith("Practitioner/") for ref in doctors)
    assert doctors < everyone


async def test_an_include_facade_does_not_serve_is_still_a_400(
    warm_fhir: httpx.AsyncClient,
) -> None:
    response = await warm_fhir.get("/fhir/CareTeam?patient=1&_include=CareTeam:subject")
    assert response.status_code == 400
    assert "CareTeam:participant" in _text(response)


async def test_a_403_names_the_access_refused_in_a_sentence(
    warm_fhir: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    patient = str(dataset.endpoint("patients")[0]["id"])
    patient_token = token(runtime, "patient/Observation.rs", patient_id=patient)
    headers = {"Authorization": f"Bearer {patient_token}"}

    group = await warm_fhir.get("/fhir/Group", headers=headers)
    condition = await warm_fhir.get(f"/fhir/Condition?patient={patient}", headers=headers)

    assert group.status_code == 403
    assert _text(group).startswith(
        "The access token does not grant search access to Group resources: groups are practice data"
    )
    assert condition.status_code == 403
    assert _text(condition) == "The access token does not grant search access to Condition."
