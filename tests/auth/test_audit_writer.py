"""The audit log is written off the request path and loses nothing: an answer does not wait
for its row, rows are written in batches and at shutdown, a full queue makes requests wait
rather than drop rows, reads see every access made so far, while the audit store fails
facade says so loudly, is not ready, and refuses patient data (503) instead of serving it
unrecorded, and rows it still refuses at shutdown are kept for the next start.

Every case runs on SQLite and on PostgreSQL (FACADE_TEST_POSTGRES_URL), through the app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from facade.app import create_app
from facade.auth.audit import FAIL_CLOSED_AFTER, SPILL_FILE
from facade.runtime import Runtime, build_runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import FACADE_BASE
from tests.databases import postgres_database, settings  # noqa: F401  (fixtures)
from tests.tokens import TEST_CLIENT, token


def client_of(app: FastAPI, runtime: Runtime) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=FACADE_BASE,
        headers={"Authorization": f"Bearer {token(runtime)}"},
    )


@pytest.fixture
async def fhir(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(create_app(runtime.settings, runtime), runtime) as client:
        yield client


def first_patient(dataset: SandboxDataset) -> dict[str, object]:
    patient: dict[str, object] = dataset.endpoint("patients")[0]
    return patient


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the audit writer never got there"
        await asyncio.sleep(0.01)


def rename_audit_table(runtime: Runtime, old: str, new: str) -> None:
    """The audit store failing for real: its table is gone (and comes back)."""
    with runtime.database.engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_an_answer_does_not_wait_for_its_audit_row_and_shutdown_writes_it(
    runtime: Runtime,
) -> None:
    runtime.audit.flush_seconds = 3600  # nothing but the shutdown writes
    app = create_app(runtime.settings, runtime)
    # The app's real lifespan (startup, then shutdown), as a server runs it.
    async with app.router.lifespan_context(app), client_of(app, runtime) as fhir:
        response = await fhir.get("/fhir/Patient?_count=5")
        assert response.status_code == 200
        served = sorted(entry["resource"]["id"] for entry in response.json()["entry"])
        assert runtime.audit.log.query(client_id=TEST_CLIENT) == [], "answered first"
        assert runtime.audit.pending == len(served)
    written = runtime.audit.log.query(client_id=TEST_CLIENT)
    assert sorted(r.patient_id for r in written) == served
    assert {(r.interaction, r.resource_type, r.outcome) for r in written} == {
        ("search", "Patient", "success")
    }
    assert runtime.audit.pending == 0


async def test_reading_the_audit_log_sees_accesses_not_yet_written(
    runtime: Runtime, fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    runtime.audit.flush_seconds = 3600
    patient = str(first_patient(dataset)["id"])
    assert (await fhir.get(f"/fhir/Patient/{patient}")).status_code == 200
    assert runtime.audit.pending == 1
    auditor = {"Authorization": f"Bearer {token(runtime, 'system/AuditEvent.rs')}"}
    response = await fhir.get(f"/fhir/AuditEvent?patient={patient}", headers=auditor)
    assert response.status_code == 200
    [event] = [entry["resource"] for entry in response.json()["entry"]]
    assert event["entity"][0]["what"]["reference"] == f"Patient/{patient}"
    assert event["subtype"][0]["code"] == "read"
    assert [r.patient_id for r in runtime.audit.query(patient_id=patient)] == [patient]


async def test_a_failing_audit_store_is_loud_and_refuses_patient_data_until_it_works(
    runtime: Runtime,
    fhir: httpx.AsyncClient,
    dataset: SandboxDataset,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="facade.audit")
    runtime.audit.flush_seconds = 0.02
    patient = first_patient(dataset)
    read = f"/fhir/Patient/{patient['id']}"
    rename_audit_table(runtime, "audit_record", "audit_record_away")

    # Served before the failure is known: its row waits, kept, not dropped.
    assert (await fhir.get(read)).status_code == 200
    await until(lambda: runtime.audit.failures >= FAIL_CLOSED_AFTER)
    refused = await fhir.get(read)
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    issue = refused.json()["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "audit-unavailable"
    assert (await fhir.get("/fhir/Condition", params={"patient": patient["id"]})).status_code == 503
    complaints = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert complaints and "writing the audit log failed" in complaints[0].getMessage()
    assert "refused (503)" in complaints[-1].getMessage()
    for value in (patient["last_name"], patient["first_name"], str(patient["id"])):
        assert str(value) not in caplog.text
    unready = await fhir.get("/health/ready")
    assert unready.status_code == 503, "a load balancer sends patients' apps elsewhere"
    assert unready.json()["checks"]["audit"]["status"] == "fail"

    rename_audit_table(runtime, "audit_record_away", "audit_record")
    await until(lambda: runtime.audit.failures == 0)
    assert [(r.interaction, r.outcome) for r in runtime.audit.log.query()] == [
        ("read", "success")
    ], "the read served before the outage is recorded; the refused ones touched nothing"
    assert (await fhir.get(read)).status_code == 200
    assert "written again" in caplog.text
    assert (await fhir.get("/health/ready")).json()["checks"]["audit"]["status"] == "pass"


async def test_a_burst_waits_for_the_writer_and_loses_no_row(
    runtime: Runtime, fhir: httpx.AsyncClient
) -> None:
    runtime.audit.max_pending_rows = 30
    runtime.audit.batch_rows = 10
    answers = await asyncio.gather(*(fhir.get("/fhir/Patient?_count=12") for _ in range(25)))
    assert {a.status_code for a in answers} == {200}
    served = sum(len(a.json()["entry"]) for a in answers)
    assert served > runtime.audit.max_pending_rows
    assert runtime.audit.waited > 0, "the queue filled up: requests waited for the writer"
    assert runtime.audit.pending <= runtime.audit.max_pending_rows
    written = runtime.audit.query(client_id=TEST_CLIENT, limit=10_000)
    assert len(written) == served


async def test_rows_the_store_refuses_at_shutdown_are_kept_and_written_at_the_next_start(
    runtime: Runtime, fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    runtime.audit.flush_seconds = 3600
    patient = first_patient(dataset)
    assert (await fhir.get(f"/fhir/Patient/{patient['id']}")).status_code == 200
    rename_audit_table(runtime, "audit_record", "audit_record_away")
    await runtime.audit.aclose()  # shutdown: the store refuses every attempt
    spill = runtime.settings.data_dir / SPILL_FILE
    assert stat.S_IMODE(spill.stat().st_mode) == 0o600
    [kept] = [json.loads(line) for line in spill.read_text().splitlines()]
    assert (kept["patient_id"], kept["interaction"], kept["client_id"]) == (
        str(patient["id"]),
        "read",
        TEST_CLIENT,
    )
    assert str(patient["last_name"]) not in spill.read_text()

    rename_audit_table(runtime, "audit_record_away", "audit_record")
    restarted = await build_runtime(runtime.settings, sandbox=sandbox)
    try:
        assert not spill.exists()
        [row] = restarted.audit.query(client_id=TEST_CLIENT)
        assert (row.patient_id, row.interaction, row.outcome) == (
            kept["patient_id"],
            "read",
            "success",
        )
    finally:
        await restarted.aclose()
