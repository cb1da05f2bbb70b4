"""The audit log: every FHIR interaction and authorization event, by ids only.

Records hold who (client, user), which patient, what (type, interaction, id), how many
results and vendor calls, and the outcome. Never names, values or tokens. Operators read
them with `facade audit` or as FHIR AuditEvent with a system scope. The server writes them
in batches off the request path (AuditWriter) and refuses to serve when it cannot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import col, select

from facade.clock import Clock
from facade.errors import AuditUnavailable
from facade.store.database import Database
from facade.store.models import AuditRecord
from facade.store.private_files import open_private

log = logging.getLogger("facade.audit")


@dataclass
class AuditEntry:
    """What a request records, filled in as it goes (routes set it on request.state)."""

    interaction: str
    resource_type: str = ""
    resource_id: str = ""
    patient_ids: list[str] = field(default_factory=list)
    result_count: int = 0
    client_id: str = ""
    username: str = ""


class AuditLog:
    """The audit table: rows written and read synchronously (operator commands use it as is;
    the server writes through an AuditWriter, off the request path)."""

    def __init__(self, database: Database, clock: Clock):
        self._database = database
        self._clock = clock

    def rows(
        self, entry: AuditEntry, *, outcome: str, vendor_calls: int, source_ip: str = ""
    ) -> list[dict[str, Any]]:
        """One row per patient touched, so `facade audit --patient X` finds every access to X."""
        now = self._clock.now()
        return [
            {
                "recorded_at": now,
                "interaction": entry.interaction,
                "client_id": entry.client_id,
                "username": entry.username,
                "patient_id": patient,
                "resource_type": entry.resource_type,
                "resource_id": entry.resource_id,
                "result_count": entry.result_count,
                "vendor_calls": vendor_calls,
                "outcome": outcome,
                "source_ip": source_ip,
            }
            for patient in entry.patient_ids or [""]
        ]

    def write(self, rows: list[dict[str, Any]]) -> None:
        # One executemany in one transaction: a 100-patient page is one statement.
        with self._database.engine.begin() as connection:
            connection.execute(insert(AuditRecord), rows)

    def record(
        self, entry: AuditEntry, *, outcome: str, vendor_calls: int, source_ip: str = ""
    ) -> None:
        self.write(
            self.rows(entry, outcome=outcome, vendor_calls=vendor_calls, source_ip=source_ip)
        )

    def query(
        self,
        *,
        patient_id: str | None = None,
        client_id: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[AuditRecord]:
        statement = select(AuditRecord)
        if patient_id:
            statement = statement.where(AuditRecord.patient_id == patient_id)
        if client_id:
            statement = statement.where(AuditRecord.client_id == client_id)
        if since is not None:
            statement = statement.where(col(AuditRecord.recorded_at) >= since)
        statement = statement.order_by(col(AuditRecord.id)).offset(offset).limit(limit)
        with self._database.session() as session:
            return list(session.exec(statement).all())


#: Rows wait at most this long before they are written (and `facade audit`, another process,
#: sees them); a request's own answer never waits for its audit row.
FLUSH_SECONDS = 0.2
#: Written at once when this many rows wait (a 100-patient page is 100 rows).
BATCH_ROWS = 1000
#: The most rows kept waiting: beyond it a request waits for the writer (backpressure), it
#: never drops a row.
MAX_PENDING_ROWS = 20_000
#: Consecutive failed writes after which the audit store counts as failing: FHIR requests
#: are then refused (503 audit-unavailable) until a write succeeds again.
FAIL_CLOSED_AFTER = 3
#: Waits between retries of a failed write: doubling from the first to the last.
RETRY_SECONDS = (0.05, 2.0)
#: In the data directory: rows the audit store refused until shutdown, written at next start.
SPILL_FILE = "audit-unwritten.jsonl"


class AuditWriter:
    """Writes the server's audit rows off the request path, batched, and never loses one.

    A request appends its rows to a bounded queue and answers; a background task writes the
    queue every FLUSH_SECONDS (sooner when BATCH_ROWS wait) in one transaction, in a worker
    thread so a slow database does not stall the event loop. Rows leave the queue only once
    written: a failed write keeps them, is logged as an error (exception class and driver
    error code only: a database message may quote row values) and retried with backoff.
    After FAIL_CLOSED_AFTER failures in a row facade fails closed: `refuse_if_failing` turns
    FHIR requests away with 503 rather than serve data it cannot record. Reads (`query`)
    write what waits first, and the app's shutdown drains the queue; rows the store still
    refuses then are kept in the `spill` file (owner-only, ids only) and written at the next
    start.
    """

    def __init__(
        self,
        log: AuditLog,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        batch_rows: int = BATCH_ROWS,
        max_pending_rows: int = MAX_PENDING_ROWS,
        spill: Path | None = None,
    ):
        self.log = log
        self.spill = spill
        self.flush_seconds = flush_seconds
        self.batch_rows = batch_rows
        self.max_pending_rows = max_pending_rows
        #: Consecutive failed writes (0: the store is healthy).
        self.failures = 0
        #: Times a request waited for room in a full queue (backpressure at work).
        self.waited = 0
        self._pending: list[dict[str, Any]] = []
        self._pending_lock = threading.Lock()
        #: Held while rows are written: one writer at a time, so rows keep their order.
        self._write_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def refuse_if_failing(self) -> None:
        """Fail closed: no patient data is served while accesses cannot be recorded."""
        if self.failures >= FAIL_CLOSED_AFTER:
            raise AuditUnavailable(self._retry_delay())

    async def record(
        self, entry: AuditEntry, *, outcome: str, vendor_calls: int, source_ip: str = ""
    ) -> None:
        """Queue a request's rows; waits (never drops) while the queue is full."""
        rows = self.log.rows(entry, outcome=outcome, vendor_calls=vendor_calls, source_ip=source_ip)
        if not self._closed:
            self._ensure_running()
        while not self._closed and self._pending and self._full_with(rows):
            self.waited += 1
            self._space.clear()
            self._write_soon()
            await self._space.wait()
        with self._pending_lock:
            self._pending.extend(rows)
        if self._closed:  # a request finishing during shutdown: its rows are written now
            await self.drain(attempts=1)
        elif len(self._pending) >= self.batch_rows:
            self._write_soon()

    def flush(self) -> None:
        """Write every waiting row now (from any thread); AuditUnavailable if that fails."""
        try:
            self._drain()
        except Exception as exc:
            self._failed(exc)
            raise AuditUnavailable(self._retry_delay()) from None
        self._succeeded()

    def query(self, **criteria: Any) -> list[AuditRecord]:
        """Audit records, after writing what waits: a read sees every access made so far."""
        self.flush()
        return self.log.query(**criteria)

    async def drain(self, attempts: int = 5) -> None:
        """Write every waiting row, retrying a failing store a few times (at shutdown); what
        still cannot be written goes to the spill file, reported as critical."""
        for attempt in range(attempts):
            try:
                await asyncio.to_thread(self._drain)
            except Exception as exc:
                self._failed(exc)
                if attempt + 1 < attempts:
                    await asyncio.sleep(self._retry_delay())
            else:
                self._succeeded()
                return
        self._keep_for_next_start()

    def recover(self) -> int:
        """Write the rows a previous run kept in the spill file (at start-up); how many."""
        if self.spill is None:
            return 0
        claimed = self.spill.with_name(f"{self.spill.name}.{os.getpid()}")
        try:
            self.spill.rename(claimed)  # one process imports it, even with several starting
        except FileNotFoundError:
            return 0
        rows = [json.loads(line) for line in claimed.read_text().splitlines() if line]
        for row in rows:
            row["recorded_at"] = datetime.fromisoformat(row["recorded_at"])
        try:
            self.log.write(rows)
        except Exception:
            claimed.rename(self.spill)
            raise
        claimed.unlink()
        log.warning("audit: %d rows a previous run could not write are now written", len(rows))
        return len(rows)

    async def aclose(self) -> None:
        """Stop the background writer and write what waits."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and self._loop is asyncio.get_running_loop():
            # Told to stop rather than cancelled: a write under way finishes first.
            self._wake.set()
            self._space.set()
            await task
        if self._pending:
            await self.drain()

    # -- the background writer -------------------------------------------------------------

    def _write_soon(self) -> None:
        # Not while failing: the retries keep their backoff rather than follow the requests.
        if not self.failures:
            self._wake.set()

    def _full_with(self, rows: list[dict[str, Any]]) -> bool:
        return len(self._pending) + len(rows) > self.max_pending_rows

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (tests run several)
            self._loop = loop
            self._wake = asyncio.Event()
            self._space = asyncio.Event()
            self._task = None
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="facade audit writer")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            # A timer sets the same event a full batch or a close does: no wait_for, whose
            # cancellation races (Python < 3.12) could leave this loop running after close.
            delay = self._retry_delay() if self.failures else self.flush_seconds
            timer = loop.call_later(delay, self._wake.set)
            await self._wake.wait()
            timer.cancel()
            self._wake.clear()
            if self._pending:
                try:
                    await asyncio.to_thread(self._drain)
                except Exception as exc:
                    self._failed(exc)
                else:
                    self._succeeded()
            self._space.set()

    def _drain(self) -> None:
        with self._write_lock:
            while True:
                with self._pending_lock:
                    batch = self._pending[: self.batch_rows]
                if not batch:
                    return
                self.log.write(batch)
                # Only the holder of the write lock removes rows, always from the front.
                with self._pending_lock:
                    del self._pending[: len(batch)]

    def _keep_for_next_start(self) -> None:
        with self._write_lock, self._pending_lock:
            rows, self._pending = self._pending, []
        if not rows:
            return
        if self.spill is None:
            log.critical("audit: %d rows could not be written to the audit log", len(rows))
            return
        with open_private(self.spill, "a", encoding="utf-8") as spill:
            for row in rows:
                spill.write(json.dumps({**row, "recorded_at": row["recorded_at"].isoformat()}))
                spill.write("\n")
        log.critical(
            "audit: %d rows could not be written to the audit log; kept in %s and written at"
            " the next start",
            len(rows),
            self.spill.name,
        )

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        log.error(
            "audit: writing the audit log failed (%s), attempt %d; %d rows kept and retried"
            " in %.2f s%s",
            _failure_kind(exc),
            self.failures,
            self.pending,
            self._retry_delay(),
            "; FHIR requests are refused (503) until it works"
            if self.failures >= FAIL_CLOSED_AFTER
            else "",
        )

    def _succeeded(self) -> None:
        if self.failures:
            log.warning("audit: the audit log is written again after %d failures", self.failures)
        self.failures = 0

    def _retry_delay(self) -> float:
        first, most = RETRY_SECONDS
        return min(most, first * 2.0 ** max(0, self.failures - 1))


def _failure_kind(exc: Exception) -> str:
    """What failed, without the database's message (it may quote row values): the exception
    classes and the driver's error code (SQLite's name, PostgreSQL's SQLSTATE)."""
    cause = getattr(exc, "orig", None)
    if cause is None:
        return type(exc).__name__
    code = getattr(cause, "sqlite_errorname", None) or getattr(cause, "sqlstate", None)
    return f"{type(exc).__name__} / {type(cause).__name__}" + (f" {code}" if code else "")


_ACTION = {"read": "R", "search": "E", "operation": "E", "export": "E"}


def audit_event(record: AuditRecord) -> dict[str, Any]:
    """An AuditRecord as a FHIR R4 AuditEvent (RESTful operation)."""
    recorded = record.recorded_at
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(record.id),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [
            {
                "system": "http://hl7.org/fhir/restful-interaction",
                "code": "search-type" if record.interaction == "search" else record.interaction,
            }
        ]
        if record.interaction in ("read", "search")
        else [{"system": "urn:facade:audit-interaction", "code": record.interaction}],
        "action": _ACTION.get(record.interaction, "E"),
        "recorded": (recorded if recorded.tzinfo else recorded.replace(tzinfo=UTC)).isoformat(),
        "outcome": "0" if record.outcome == "success" else "4",
        "outcomeDesc": record.outcome,
        "agent": [
            {
                "who": {
                    "identifier": {"system": "urn:facade:client", "value": record.client_id or "-"}
                },
                "requestor": True,
            }
        ],
        "source": {"observer": {"display": "facade"}},
    }
    if record.username:
        event["agent"].append(
            {
                "who": {"identifier": {"system": "urn:facade:user", "value": record.username}},
                "requestor": False,
            }
        )
    if record.source_ip:
        event["agent"][0]["network"] = {"address": record.source_ip, "type": "2"}
    entities: list[dict[str, Any]] = []
    if record.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{record.patient_id}"},
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            }
        )
    if record.resource_type:
        what = f"{record.resource_type}/{record.resource_id}" if record.resource_id else None
        entity: dict[str, Any] = {
            "type": {"system": "http://hl7.org/fhir/resource-types", "code": record.resource_type},
            "detail": [
                {"type": "result-count", "valueString": str(record.result_count)},
                {"type": "vendor-calls", "valueString": str(record.vendor_calls)},
            ],
        }
        if what:
            entity["what"] = {"reference": what}
        entities.append(entity)
    if entities:
        event["entity"] = entities
    return event
