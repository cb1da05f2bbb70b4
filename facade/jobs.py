"""Exports and the mirror's sync as jobs on procrastinate, a maintained job queue on
PostgreSQL, for deployments of several processes (`FACADE_JOBS=queue`): an API replica
records an export and queues it; `facade worker` processes, on any machine that reaches the
database, run it. With the mirror on, one worker at a time runs its sync (a job that lasts as
long as that worker) and the API replicas serve from the store it fills.

What the queue guarantees, and how:
- One worker runs a job at a time: each export's queue job carries the export's id as its
  procrastinate `lock`, so a second copy (queued again by a restarted worker) waits until
  the first ends, and then finds the export finished and returns.
- A worker that dies (`kill -9`, a lost machine) stops sending heartbeats; after
  STALLED_WORKER_SECONDS the other workers' reaper puts its jobs back in the queue and one
  of them resumes each from the export's checkpoints (ExportRunner), so the files end the
  same as if nothing had happened. Takeover takes at most STALLED_WORKER_SECONDS +
  TEND_EVERY_SECONDS + FETCH_POLL_SECONDS.
- Cancelling is the export's state in facade's database: the runner checks it at every
  checkpoint, whichever process runs it.
- A worker stopped on purpose (SIGTERM) ends its jobs' attempts after SHUTDOWN_SECONDS; the
  other workers queue them again within TEND_EVERY_SECONDS.

The single-process default does not use this module: its in-process worker
(facade/bulk/worker.py) runs the same ExportRunner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Protocol

from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status
from procrastinate.schema import SchemaManager
from sqlalchemy import make_url, text

from facade.store.database import Database

if TYPE_CHECKING:
    from facade.runtime import Runtime

log = logging.getLogger("facade.jobs")

QUEUE = "facade"
EXPORT_TASK = "facade.export"
MIRROR_TASK = "facade.mirror-sync"
#: How often a worker says it is alive.
HEARTBEAT_SECONDS = 2.0
#: A worker silent this long is taken for dead, and its jobs are run by another.
STALLED_WORKER_SECONDS = 10.0
#: How often each worker looks for dead workers' jobs and jobs no queue job runs.
TEND_EVERY_SECONDS = 3.0
#: How long a stopping worker lets its running jobs go on before stopping them.
SHUTDOWN_SECONDS = 5.0
#: How often an idle worker asks for a job when no notification came.
FETCH_POLL_SECONDS = 2.0
#: The advisory lock under which the queue's tables are created (once per database).
_SCHEMA_LOCK = 0x66616361_6A6F  # "facajo"


class JobQueueUnavailable(Exception):
    """The queue needs a PostgreSQL database."""


def queue_database(database_url: str) -> Database:
    """The deployment's database as the queue uses it: its own schema search path dropped,
    so a tenant's processes (whose URL puts its schema first) and the deployment's share one
    queue."""
    url = make_url(database_url)
    database = Database(url.difference_update_query(["options"]).render_as_string(False))
    if not database.shared:
        raise JobQueueUnavailable(
            "FACADE_JOBS=queue needs a PostgreSQL database (FACADE_DATABASE_URL=postgresql+"
            "psycopg://...): the API processes and `facade worker` processes share it."
        )
    return database


def job_app(database: Database) -> App:
    """A procrastinate app on the queue's database (not yet opened)."""
    url = make_url(database.url).set(drivername="postgresql")
    return App(connector=PsycopgConnector(conninfo=url.render_as_string(hide_password=False)))


def ensure_job_schema(database: Database) -> None:
    """Create procrastinate's tables, once per database (processes starting together wait
    for the first)."""
    with database.engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        present = connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar()
        if present is None:
            # Through the driver, without parameters: the schema's SQL has literal '%' signs.
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(SchemaManager.get_schema())


class QueuedExports:
    """The ExportScheduler of an API process in a queue deployment: it queues; workers run.
    `tenant` names the practice whose export it is ("" for a deployment of one)."""

    def __init__(self, database_url: str, tenant: str = ""):
        self._database = queue_database(database_url)
        self._app = job_app(self._database)
        self._tenant = tenant
        self._open = False

    async def start(self) -> None:
        ensure_job_schema(self._database)
        await self._app.open_async()
        self._open = True

    async def submit(self, job_id: str) -> None:
        await defer_export(self._app, job_id, self._tenant)

    def cancel(self, job_id: str) -> None:
        """Nothing to do here: the runner sees the export's cancelled state at its next
        checkpoint, in whichever worker runs it."""

    async def stop(self) -> None:
        if self._open:
            self._open = False
            await self._app.close_async()
        self._database.dispose()


async def defer_export(app: App, job_id: str, tenant: str = "") -> None:
    """Queue the export (at most once while it waits in the queue)."""
    await _defer(app, EXPORT_TASK, job_id, job_id=job_id, tenant=tenant)


async def _queued(app: App, lock: str) -> bool:
    """Whether a queue job for `lock` waits or runs."""
    for status in ("todo", "doing"):
        if list(await app.job_manager.list_jobs_async(queue=QUEUE, lock=lock, status=status)):
            return True
    return False


async def _defer(app: App, task: str, lock: str, **arguments: Any) -> None:
    """Queue `task`, locked by `lock` (one runs at a time), unless a copy already waits."""
    deferrer = app.configure_task(task, queue=QUEUE, lock=lock, queueing_lock=lock)
    with contextlib.suppress(AlreadyEnqueued):
        await deferrer.defer_async(**arguments)


class Practices(Protocol):
    """What a worker runs jobs for: the deployment's practice (""), or each of its tenants."""

    def names(self) -> list[str]: ...
    async def runtime(self, tenant: str) -> Runtime: ...


async def run_worker(database: Database, practices: Practices, concurrency: int) -> None:
    """Run exports (and each practice's mirror sync, where the mirror is on) from the queue
    until stopped. SIGINT or SIGTERM give running jobs SHUTDOWN_SECONDS, then stop them
    where they are: their checkpoints let any worker resume them, and the surviving workers
    queue them again."""
    app = job_app(database)

    @app.task(name=EXPORT_TASK, queue=QUEUE)
    async def export(job_id: str, tenant: str = "") -> None:
        exports = (await practices.runtime(tenant)).exports
        assert exports is not None
        await exports.runner.run(job_id)

    @app.task(name=MIRROR_TASK, queue=QUEUE)
    async def sync_mirror(connection: str, tenant: str = "") -> None:
        """A practice's mirror scheduler, for as long as this worker runs it (one worker at
        a time: the job is locked by the practice and connection)."""
        mirror = (await practices.runtime(tenant)).mirror
        if mirror is None:
            return
        await mirror.scheduler.start()
        try:
            await asyncio.Event().wait()
        finally:
            await mirror.scheduler.stop()

    ensure_job_schema(database)
    mirrors = 0
    for tenant in practices.names():
        mirrors += (await practices.runtime(tenant)).mirror is not None
    async with app.open_async():
        tending = asyncio.create_task(_tend(app, practices))
        try:
            await app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency + mirrors,
                update_heartbeat_interval=HEARTBEAT_SECONDS,
                stalled_worker_timeout=STALLED_WORKER_SECONDS,
                fetch_job_polling_interval=FETCH_POLL_SECONDS,
                shutdown_graceful_timeout=SHUTDOWN_SECONDS,
            )
        finally:
            tending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tending


async def _tend(app: App, practices: Practices) -> None:
    """Keep every job that should run in the queue: put the jobs of workers that stopped
    sending heartbeats back, and queue each unfinished export (and each mirror's sync) that
    no queue job waits for or runs (its worker stopped it on shutdown, or it was recorded
    while no worker ran)."""
    while True:
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                queue=QUEUE, seconds_since_heartbeat=STALLED_WORKER_SECONDS
            )
            for job in stalled:
                # Ended (which frees its lock), then queued anew: a copy queued meanwhile
                # (two workers tending at once) is then the one that runs.
                log.warning("job %s: its worker stopped; queued again", job.id)
                await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)
                await _defer(app, job.task_name, job.lock or "", **job.task_kwargs)
            for tenant in practices.names():
                runtime = await practices.runtime(tenant)
                assert runtime.exports is not None
                for export in runtime.exports.store.active_jobs():
                    if not await _queued(app, export.id):
                        await defer_export(app, export.id, tenant)
                if runtime.mirror is not None:
                    connection = runtime.mirror.connection
                    lock = f"mirror:{tenant}:{connection}" if tenant else f"mirror:{connection}"
                    if not await _queued(app, lock):
                        await _defer(app, MIRROR_TASK, lock, connection=connection, tenant=tenant)
        except Exception as error:  # a database hiccup must not end the worker
            log.warning("tending the job queue failed: %s", type(error).__name__)
        await asyncio.sleep(TEND_EVERY_SECONDS)
