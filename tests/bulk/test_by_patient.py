"""An export of an endpoint the vendor lists only patient by patient (CareCloud's encounters,
which hold the whole chart): one call per patient of the export, shared by every type read
from it, checkpointed per patient; `_since` checked by facade on the answer; never the C-CDA.

CareCloud only: it is the vendor whose chart has no practice-wide listing. Its floor for a
system export is the patient list's pages (ceil(N / 50)), one encounters call per patient,
and each practice list (authorization, providers, locations) once.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest

from facade.clock import FakeClock
from tests.bulk.conftest import download, export, finished, job_id_of, kick_off
from tests.vendors import generated, patient_ids, practice_group, sandbox_state, vendor_calls

pytestmark = pytest.mark.parametrize("vendor_name", ["carecloud"], indirect=True)

#: More patients than one page of CareCloud's patient list (50) holds.
PATIENTS = 60
PATIENT_PAGE = 50
PRACTICE_LISTS = ("authorization", "providers", "locations")


@pytest.fixture
def sandbox(vendor_name: str, clock: FakeClock) -> Any:
    return sandbox_state(vendor_name, generated(vendor_name, PATIENTS), clock)


def encounter_calls(sandbox: Any) -> Counter[str]:
    """Encounters calls by the patient they asked for."""
    return Counter(e.query["patient_id"] for e in vendor_calls(sandbox) if e.path == "/encounters")


async def test_a_system_export_costs_the_floor_one_encounters_call_per_patient(
    fhir, exports, sandbox
):
    manifest = await export(fhir, exports, "$export")

    calls = Counter(e.endpoint for e in vendor_calls(sandbox))
    patients = patient_ids(sandbox)
    floor = math.ceil(len(patients) / PATIENT_PAGE) + len(patients) + len(PRACTICE_LISTS)
    assert sum(calls.values()) == floor, calls
    assert calls["patients"] == math.ceil(len(patients) / PATIENT_PAGE) == 2
    assert {p.lower() for p in encounter_calls(sandbox)} == set(patients)
    assert set(encounter_calls(sandbox).values()) == {1}
    assert all(calls[name] == 1 for name in PRACTICE_LISTS), calls
    exported = {o["type"] for o in manifest["output"]}
    assert {"Encounter", "Condition", "Observation", "DocumentReference"} <= exported
    assert "error" not in manifest or not manifest["error"]


async def test_the_c_cda_is_never_exported(fhir, exports, sandbox):
    got = await download(fhir, await export(fhir, exports, "$export"))

    assert got["DocumentReference"]
    assert all(not r["id"].startswith("ccd-") for r in got["DocumentReference"])
    assert not [e for e in vendor_calls(sandbox) if e.path.endswith("/ccda")]


async def test_since_is_checked_on_each_patients_answer(fhir, exports, sandbox):
    whole = await download(
        fhir, await export(fhir, exports, "$export", params={"_type": "Encounter"})
    )
    times = sorted(r["meta"]["lastUpdated"] for r in whole["Encounter"])
    since = times[len(times) // 2]
    sandbox.request_log.clear()

    manifest = await export(
        fhir, exports, "$export", params={"_type": "Encounter,Condition", "_since": since}
    )

    got = await download(fhir, manifest)
    assert sorted(r["id"] for r in got["Encounter"]) == sorted(
        r["id"] for r in whole["Encounter"] if r["meta"]["lastUpdated"] > since
    )
    assert all(r["meta"]["lastUpdated"] > since for r in got.get("Condition", []))
    # No updated-since filter exists: every patient's encounters are asked for, whole.
    assert set(encounter_calls(sandbox).values()) == {1}
    assert len(encounter_calls(sandbox)) == len(patient_ids(sandbox))
    assert all(
        set(e.query) == {"patient_id"} for e in vendor_calls(sandbox) if e.path == "/encounters"
    )


@pytest.mark.parametrize("threshold", [0, 100], ids=["by-patient", "patients"])
async def test_a_patient_confined_export_reads_only_its_patients_once_each(
    fhir, exports, sandbox, threshold
):
    exports.runner.limits = exports.limits = type(exports.limits)(per_patient_threshold=threshold)
    chosen = patient_ids(sandbox)[:12]
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "valueReference": {"reference": f"Patient/{p}"}} for p in chosen
        ],
    }
    job = job_id_of(await kick_off(fhir, "Patient/$export", body=body))
    got = await download(fhir, await finished(fhir, exports, job))

    assert {p.lower() for p in encounter_calls(sandbox)} == set(chosen)
    assert set(encounter_calls(sandbox).values()) == {1}
    assert {r["subject"]["reference"] for r in got["Encounter"]} <= {f"Patient/{p}" for p in chosen}
    modes = {p.mode for p in exports.store.parts(job)}
    assert ("by-patient" in modes) == (threshold == 0), modes


async def test_a_group_export_reads_each_member_once(fhir, exports, sandbox):
    exports.runner.limits = exports.limits = type(exports.limits)(per_patient_threshold=0)
    group_id, members = practice_group(sandbox)
    job = job_id_of(await kick_off(fhir, f"Group/{group_id}/$export"))
    got = await download(fhir, await finished(fhir, exports, job))

    assert {p.lower() for p in encounter_calls(sandbox)} == members
    assert set(encounter_calls(sandbox).values()) == {1}
    assert {r["subject"]["reference"] for r in got["Encounter"]} <= {
        f"Patient/{p}" for p in members
    }
    assert "by-patient" in {p.mode for p in exports.store.parts(job)}


class Crash(BaseException):
    """The process dies here (nothing below the worker catches it)."""


async def test_a_crash_resumes_at_the_next_patient_without_asking_for_finished_ones(
    fhir, runtime, exports, sandbox
):
    reference = await download(fhir, await export(fhir, exports, "$export"))

    def crash(point: str, part: int, patients: int) -> None:
        if exports.store.parts(job)[part - 1].mode == "by-patient" and patients == 20:
            raise Crash()  # the 20th patient's lines are written, not checkpointed

    sandbox.request_log.clear()
    exports.runner.hook = crash
    job = job_id_of(await kick_off(fhir, "$export"))
    await exports.worker.wait(job)
    assert exports.store.job(job).state == "running"  # died mid-export
    await exports.worker.stop()
    exports.runner.hook = None
    await exports.worker.start()
    got = await download(fhir, await finished(fhir, exports, job))

    assert {t: sorted(json.dumps(r) for r in v) for t, v in got.items()} == {
        t: sorted(json.dumps(r) for r in v) for t, v in reference.items()
    }
    asked = encounter_calls(sandbox)
    assert len(asked) == len(patient_ids(sandbox))
    # Only the patient the crash interrupted is asked for twice.
    assert sorted(asked.values()) == [1] * (len(asked) - 1) + [2]
    assert Counter(e.endpoint for e in vendor_calls(sandbox))["patients"] == 2  # once, spilled


async def test_the_capability_statement_says_since_is_checked_by_facade(fhir):
    statement = (await fhir.get("/fhir/metadata")).json()
    [export_operation] = [o for o in statement["rest"][0]["operation"] if o["name"] == "export"]
    note = export_operation["documentation"]
    assert "Encounter" in note and "only patient by patient" in note
    assert "checks `_since` itself" in note
