"""Groups: the vendor's (a doctor's panel, an office's patients) and the operator's, read and
searched over FHIR, created with POST /Group by a backend service allowed to, and by the
operator with `facade group add|list`. Members must be patients the vendor knows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facade.bulk.client import add_group, list_groups
from facade.bulk.groups import UnknownMembers
from facade.cli import main
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.generator import generate
from tests.conftest import FHIR_BASE
from tests.tokens import token


def bearer(runtime: Runtime, scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(runtime, scope)}"}


def group_body(name: str, *members: str, group_id: str | None = None) -> dict:
    body: dict = {
        "resourceType": "Group",
        "type": "person",
        "actual": True,
        "name": name,
        "member": [{"entity": {"reference": m}} for m in members],
    }
    if group_id:
        body["id"] = group_id
    return body


def patient_ids(runtime: Runtime) -> list[str]:
    return [str(p["id"]) for p in runtime.sandbox.dataset.endpoint("patients")]


def members_of(resource: dict) -> list[str]:
    return [m["entity"]["reference"] for m in resource.get("member", [])]


async def test_group_search_lists_vendor_and_operator_groups(fhir, runtime: Runtime):
    chosen = patient_ids(runtime)[:2]
    await add_group(runtime, "Attribution", chosen)
    response = await fhir.get("/fhir/Group")
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    found = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    assert bundle["total"] == len(found)
    data = runtime.sandbox.dataset
    doctors = {f"doctor-{d['id']}" for d in data.endpoint("doctors")}
    offices = {f"office-{o['id']}" for o in data.endpoint("offices")}
    assert set(found) == doctors | offices | {"Attribution"}
    assert members_of(found["Attribution"]) == [f"Patient/{p}" for p in chosen]
    assert all(e["fullUrl"] == f"{FHIR_BASE}/Group/{e['resource']['id']}" for e in bundle["entry"])


async def test_group_read_of_a_doctors_panel_lists_exactly_that_doctors_patients(
    fhir, runtime: Runtime
):
    data = runtime.sandbox.dataset
    doctor = data.endpoint("doctors")[0]["id"]
    response = await fhir.get(f"/fhir/Group/doctor-{doctor}")
    assert response.status_code == 200
    group = response.json()
    expected = {str(p["id"]) for p in data.endpoint("patients") if p.get("doctor") == doctor}
    assert {m.rpartition("/")[2] for m in members_of(group)} == expected
    assert group["quantity"] == len(expected) and group["actual"] is True


async def test_group_read_of_an_unknown_group_is_404(fhir):
    for missing in ("no-such-group", "doctor-999999"):
        response = await fhir.get(f"/fhir/Group/{missing}")
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("scope", ["system/Group.c", "system/Group.cruds"])
async def test_post_group_with_a_create_scope_defines_it(fhir, runtime: Runtime, scope: str):
    chosen = patient_ids(runtime)[2:5]
    body = group_body("Payer list", *(f"Patient/{p}" for p in chosen), group_id="payer-1")
    response = await fhir.post("/fhir/Group", json=body, headers=bearer(runtime, scope))
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{FHIR_BASE}/Group/payer-1"
    assert members_of(response.json()) == [f"Patient/{p}" for p in chosen]
    read = await fhir.get("/fhir/Group/payer-1")
    assert read.status_code == 200 and read.json()["name"] == "Payer list"
    assert members_of(read.json()) == [f"Patient/{p}" for p in chosen]


async def test_post_group_with_unknown_members_is_400_listing_them(fhir, runtime: Runtime):
    known = patient_ids(runtime)[0]
    body = group_body("Bad", f"Patient/{known}", "Patient/999999991", "Practitioner/1")
    response = await fhir.post("/fhir/Group", json=body, headers=bearer(runtime, "system/Group.c"))
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    text = json.dumps(outcome)
    assert "Patient/999999991" in text and "Practitioner/1" in text
    assert f"Patient/{known}" not in text
    assert (await fhir.get("/fhir/Group/Bad")).status_code == 404


@pytest.mark.parametrize("scope", ["system/*.rs", "system/Group.rs", "user/Group.cruds"])
async def test_post_group_without_a_backend_create_scope_is_403(fhir, runtime: Runtime, scope: str):
    body = group_body("Nope", f"Patient/{patient_ids(runtime)[0]}")
    response = await fhir.post("/fhir/Group", json=body, headers=bearer(runtime, scope))
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"
    assert (await fhir.get("/fhir/Group/Nope")).status_code == 404


async def test_add_group_refuses_unknown_members_and_lists_them(runtime: Runtime):
    known = patient_ids(runtime)[0]
    with pytest.raises(UnknownMembers, match=r"Patient/424242, Patient/434343"):
        await add_group(runtime, "Mixed", [known, "424242", "434343"])
    assert "Mixed" not in {g["id"] for g in await list_groups(runtime)}


# -- the operator's command line ---------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(__import__("os").environ):
        if name.startswith("FACADE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FACADE_SANDBOX_PATIENTS", "6")
    monkeypatch.setenv("FACADE_SANDBOX_SEED", "3")
    monkeypatch.setenv("FACADE_LOG_LEVEL", "warning")
    return tmp_path / "state"


def test_cli_group_add_then_list(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [str(p["id"]) for p in generate(patients=6, seed=3).endpoint("patients")]
    argv = ["group", "add", "--name", "Care team A", "--member", ids[0], "--member", ids[1]]
    assert main([*argv, "--data-dir", str(cli_env)]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added == {
        "id": "Care-team-A",
        "name": "Care team A",
        "members": [f"Patient/{ids[0]}", f"Patient/{ids[1]}"],
    }
    assert main(["group", "list", "--data-dir", str(cli_env)]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed[0] == added
    assert any(g["id"].startswith("doctor-") for g in listed[1:])


def test_cli_group_add_with_unknown_members_fails_naming_them(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [str(p["id"]) for p in generate(patients=6, seed=3).endpoint("patients")]
    argv = ["group", "add", "--name", "X", "--member", ids[0], "--member", "777777777"]
    assert main([*argv, "--data-dir", str(cli_env)]) == 1
    captured = capsys.readouterr()
    assert "Patient/777777777" in captured.err and captured.out == ""
    assert f"Patient/{ids[0]}" not in captured.err
    assert main(["group", "list", "--data-dir", str(cli_env)]) == 0
    assert all(json.loads(line)["id"] != "X" for line in capsys.readouterr().out.splitlines())
