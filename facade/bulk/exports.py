"""Bulk $export as plain operations: kick off, report status, cancel, find a file, expire.

Routes call these with a Grant and plain data and turn the answers into HTTP. A job is only
ever visible to the client that started it; to anyone else it does not exist.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facade.auth.grant import Grant
from facade.auth.scopes import READ
from facade.bulk.files import ExportFiles
from facade.bulk.groups import GroupDirectory, may_see_groups
from facade.bulk.models import ExportJob
from facade.bulk.request import ExportRequest, build_request
from facade.bulk.runner import ExportLimits, ExportRunner, build_plan
from facade.bulk.store import ACTIVE_STATES, JobStore
from facade.bulk.worker import ExportScheduler, ExportWorker
from facade.clock import Clock
from facade.core.service import FhirService
from facade.core.vendor import PracticeGroups, VendorClient
from facade.errors import Forbidden, RateLimited, ResourceNotFound
from facade.upstream.budget import WaitCause

#: Retry-After while the quota allows calls: polls this often are cheap and timely.
POLL_SECONDS = 2
#: Retry-After for a kick-off refused because too many exports are running.
EXPORT_RETRY_SECONDS = 60


@dataclass
class Status:
    state: str
    #: While running: the X-Progress text and Retry-After seconds.
    progress: str = ""
    retry_after: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)


class BulkExports:
    def __init__(
        self,
        store: JobStore,
        files: ExportFiles,
        service: FhirService,
        client: VendorClient,
        groups: GroupDirectory,
        clock: Clock,
        limits: ExportLimits,
        scheduler: Callable[[ExportRunner], ExportScheduler] | None = None,
    ):
        """`scheduler` makes who runs the exports from the runner; by default this process's
        ExportWorker."""
        self.store = store
        self.files = files
        self.service = service
        self.client = client
        self.groups = groups
        self.clock = clock
        self.limits = limits
        self.runner = ExportRunner(store, service, client, files, clock, limits)
        self.worker: ExportScheduler = (
            scheduler(self.runner)
            if scheduler
            else ExportWorker(store, self.runner, limits.concurrency)
        )

    async def kick_off(
        self,
        level: str,
        parameters: dict[str, list[str]],
        grant: Grant,
        request_url: str,
        *,
        group_id: str = "",
        from_post: bool = False,
    ) -> ExportJob:
        if not grant.backend:
            raise Forbidden("Bulk export is for backend services (client credentials) only.")
        if level == "group" and not may_see_groups(grant, READ):
            # Exporting a group discloses its members, as reading it would.
            raise Forbidden("A Group export needs a scope that grants read on Group.")
        self.expire()
        request = build_request(
            level, parameters, self.service.registry, grant, group_id=group_id, from_post=from_post
        )
        if level == "group":
            group = await self.groups.get(group_id)
            members = group.members
            if request.patients:
                members = [m for m in members if m in request.patients]
            request = ExportRequest(**{**request.__dict__, "patients": tuple(members)})
        running = len(self.store.active_jobs())
        if running >= self.limits.max_running:
            raise RateLimited(EXPORT_RETRY_SECONDS)
        ctx = await self.service.context()
        now = self.clock.now()
        job = ExportJob(
            id=secrets.token_hex(12),
            client_id=grant.client_id,
            level=level,
            group_id=group_id,
            request_url=request_url,
            parameters=request.to_json(),
            granted_types=grant.scopes.text,
            transaction_time=now,
            created_at=now,
            updated_at=now,
        )
        parts = build_plan(job, request, self.service, ctx, self.store, self.limits)
        self.store.add_job(job, parts)
        await self.worker.submit(job.id)
        return job

    def _own(self, job_id: str, grant: Grant) -> ExportJob:
        job = self.store.job(job_id)
        if job is None or job.client_id != grant.client_id or job.state == "cancelled":
            raise ResourceNotFound("There is no such export.")
        return job

    def status(self, job_id: str, grant: Grant, base_url: str) -> Status:
        self.expire()
        job = self._own(job_id, grant)
        if job.state == "expired":
            raise ResourceNotFound("This export's files have expired and were deleted.")
        if job.state in ACTIVE_STATES:
            return Status(job.state, self._progress(job), self._retry_after(job))
        if job.state == "failed":
            return Status("failed", manifest={"failure": job.failure})
        return Status("completed", manifest=self._manifest(job, base_url))

    def cancel(self, job_id: str, grant: Grant) -> None:
        job = self._own(job_id, grant)
        job.state = "cancelled"
        job.updated_at = self.clock.now()
        self.store.save_job(job)
        self.worker.cancel(job.id)
        self.files.delete_job(job.id)

    def file(self, job_id: str, name: str, grant: Grant) -> Path | Iterator[bytes]:
        """The file to serve: a path on disk, or its bytes from the object store."""
        self.expire()
        job = self._own(job_id, grant)
        known = {f.name for f in self.store.files(job.id)}
        source = None
        if job.state == "completed" and name in known:
            source = self.files.source(job.id, name)
        if source is None:
            raise ResourceNotFound("There is no such export file (it may have expired).")
        return source

    def expire(self) -> None:
        for job in self.store.jobs_expiring_before(self.clock.now()):
            self.files.delete_job(job.id)
            job.state = "expired"
            self.store.save_job(job)

    # -- answers -------------------------------------------------------------------------

    def _progress(self, job: ExportJob) -> str:
        estimate = self._estimate(job)
        percent = min(99, math.floor(100 * job.calls_spent / estimate))
        phase = self._pause_phase() if job.state == "paused" else job.phase
        if job.state == "queued":
            phase = "queued"
        remaining = max(estimate - job.calls_spent, 0)
        minutes = math.ceil(self._seconds_for(remaining) / 60)
        return (
            f"{phase}: {percent}%, {job.calls_spent}/~{estimate} vendor calls, ~{minutes} min left"
        )[:99]

    def _pause_phase(self) -> str:
        """Whose limit holds a paused export: the EHR's stated wait after a 429, or facade's
        own hourly budget (which turns with the hour)."""
        cause = self.client.budget.next_call().cause
        if cause is WaitCause.VENDOR:
            return "paused (the EHR asked to wait)"
        if cause is WaitCause.HOURLY_BUDGET:
            return "paused (hourly vendor budget spent)"
        return "paused"

    def _estimate(self, job: ExportJob) -> int:
        """The job's vendor calls in all. The plan's figure comes from the last export's page
        counts; a listing never exported before is planned at one call. Once the job has spent
        its plan, the calls so far are extrapolated over the parts still to run."""
        estimate = max(job.estimated_calls, 1)
        if job.calls_spent < estimate:
            return estimate
        parts = self.store.parts(job.id)
        finished = sum(1 for part in parts if part.state != "pending")
        if not parts or finished >= len(parts):
            return max(estimate, job.calls_spent + 1)
        progressed = finished + 0.5  # the running part, half done
        return max(estimate, math.ceil(job.calls_spent * len(parts) / progressed))

    def _seconds_for(self, calls: int) -> float:
        budget = self.client.budget
        if calls <= budget.remaining:
            return calls * 0.2
        hours_after = (calls - budget.remaining) / max(budget.hourly_limit, 1)
        return budget.seconds_until_reset() + hours_after * 3600

    def _retry_after(self, job: ExportJob) -> int:
        if job.state == "paused" and job.resume_at is not None:
            return max(1, math.ceil((job.resume_at - self.clock.now()).total_seconds()))
        if self.client.budget.remaining == 0:
            return max(1, math.ceil(self.client.budget.seconds_until_reset()))
        return POLL_SECONDS

    def _manifest(self, job: ExportJob, base_url: str) -> dict[str, Any]:
        files = self.store.files(job.id)

        def entry(f: Any) -> dict[str, Any]:
            return {
                "type": f.resource_type,
                "url": f"{base_url}/$export-file/{job.id}/{f.name}",
                "count": f.count,
            }

        return {
            "transactionTime": job.transaction_time.isoformat(timespec="seconds"),
            "request": job.request_url,
            "requiresAccessToken": True,
            "output": [entry(f) for f in files if f.kind == "output"],
            "error": [entry(f) for f in files if f.kind == "error"],
        }


def build_exports(
    settings: Any,
    database: Any,
    service: FhirService,
    client: VendorClient,
    clock: Clock,
    practice_groups: PracticeGroups,
    tenant: str = "",
) -> BulkExports:
    """The export machinery for a runtime, from settings (its worker is started by the app)."""
    from facade.bulk.groups import GroupDirectory
    from facade.bulk.store import GroupStore, SqlJobStore

    limits = ExportLimits(
        file_size_bound=settings.bulk_file_size_bytes,
        file_expiry_seconds=settings.bulk_file_expiry_seconds,
        max_running=settings.bulk_max_running_exports,
        concurrency=settings.bulk_worker_concurrency,
        per_patient_threshold=settings.bulk_per_patient_threshold,
        max_call_wait_seconds=settings.upstream_max_wait_seconds,
    )
    scheduler = None
    if settings.jobs == "queue":
        from facade.jobs import QueuedExports

        def scheduler(_runner: ExportRunner) -> ExportScheduler:
            return QueuedExports(settings.database_url, tenant)

    store = None
    if settings.export_store:
        from facade.store.objects import ObjectStore

        store = ObjectStore(settings.export_store, settings.s3_endpoint_url)
    return BulkExports(
        SqlJobStore(database),
        ExportFiles(settings.data_dir / "exports", store),
        service,
        client,
        GroupDirectory(service, GroupStore(database), practice_groups),
        clock,
        limits,
        scheduler,
    )
