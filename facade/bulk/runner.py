"""The export body: runs one job's parts, page by page, checkpointing after each page.

It knows FHIR (transforms, checks, Provenance) and the vendor client; the job's state
machine lives in the JobStore. A vendor 429 parks the job for the wait the vendor named (until
the hour turns only when facade's own hourly budget is spent); a vendor failure that outlasts
the client's retries ends that part with an OperationOutcome in the error file and the export
goes on. It never logs record content.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson

from facade.auth.grant import Grant
from facade.auth.scopes import ScopeSet
from facade.bulk.files import ExportFiles
from facade.bulk.models import ExportFile, ExportJob, ExportPart
from facade.bulk.planner import BY_PATIENT, Consumer, Listing, plan_export
from facade.bulk.references import (
    REFERENCES,
    collect_references,
    local_reference,
    reference_types,
    write_referenced,
)
from facade.bulk.request import ExportRequest, TypeSelection, select_types
from facade.bulk.spill import LookupSpill, canonical, list_name, parse_list_name
from facade.bulk.store import ACTIVE_STATES, JobStore
from facade.bulk.writer import ExportStreams, StreamState, ensure_private_directory
from facade.clock import Clock
from facade.core.compartment import FetchContext
from facade.core.mapping import MappingContext, Record, ResourceMapping
from facade.core.provenance import provenance_for
from facade.core.service import FhirService
from facade.core.vendor import VendorClient, VendorPage
from facade.errors import FacadeError, UpstreamError, UpstreamThrottled, operation_outcome
from facade.fhir.dates import parse_date_range
from facade.upstream.budget import metered

log = logging.getLogger("facade.bulk")

#: How often, at most, pages that cost no vendor call are checkpointed (seconds of work a
#: crash may make the export redo, at no vendor cost).
CHEAP_CHECKPOINT_SECONDS = 1.0


class _Durability:
    """When a listing's progress is checkpointed: after every page (or patient) that cost a
    vendor call, so a crash never spends those calls again; after those that cost none (the
    mirror's, the page cache's) at most every CHEAP_CHECKPOINT_SECONDS, since an fsync per
    page would be most of an export from the mirror and redoing a second of it is free."""

    def __init__(self, meter: Any):
        self._meter = meter
        self._calls = meter.count
        self._at = time.monotonic()
        #: Progress made since the last checkpoint that is not yet durable.
        self.behind = False

    def due(self) -> bool:
        due = self._meter.count != self._calls or (
            time.monotonic() - self._at >= CHEAP_CHECKPOINT_SECONDS
        )
        self.behind = not due
        return due

    def saved(self) -> None:
        self._calls, self._at, self.behind = self._meter.count, time.monotonic(), False


#: Called at named points ("page-written", part seq, pages so far; "lookup-page-spilled", 0,
#: records on the page): tests inject crashes.
FaultHook = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ExportLimits:
    file_size_bound: int = 64 * 1024 * 1024
    file_expiry_seconds: float = 24 * 3600.0
    max_running: int = 4
    concurrency: int = 2
    per_patient_threshold: int = 10
    #: The longest one vendor call may wait for the quota before the job is parked.
    max_call_wait_seconds: float = 5.0


class JobCancelled(Exception):
    """The job was cancelled (or deleted) while it ran."""


def build_plan(
    job: ExportJob,
    request: ExportRequest,
    service: FhirService,
    ctx: MappingContext,
    store: JobStore,
    limits: ExportLimits,
) -> list[ExportPart]:
    """The job's parts, each with its listing descriptor (decided once, at kick-off)."""
    grant = grant_of(job)
    selections = select_types(request, service.registry, ctx, grant)
    confined = request.level == "group" or bool(request.patients)

    def estimate(key: str) -> int | None:
        found = store.statistic(key)
        return found.pages if found else None

    plan = plan_export(
        request,
        service.registry,
        selections,
        ctx,
        member_count=len(request.patients) if confined else None,
        per_patient_threshold=limits.per_patient_threshold,
        estimate=estimate,
        wire=service.client.wire,
    )
    parts: list[ExportPart] = []
    for seq, listing in enumerate(plan.listings, start=1):
        descriptor = {
            "mode": listing.mode,
            "endpoint": listing.endpoint,
            "params": listing.params,
            "lookups": list(listing.lookups),
            "detail": listing.detail,
            "key": listing.key,
            "patient_param": listing.patient_param,
            "patient_list": listing.patient_list,
            "consumers": [
                [c.resource_type, c.source.name if c.source else "", *(["silent"] * c.silent)]
                for c in listing.consumers
            ],
            "error": listing.error,
        }
        parts.append(
            ExportPart(
                job_id=job.id,
                seq=seq,
                resource_type=",".join(listing.resource_types)[:64],
                source=listing.endpoint[:64],
                mode=listing.mode,
                estimated_calls=listing.estimated_calls,
                state="skipped" if listing.mode == "skipped" else "pending",
                checkpoint=json.dumps({"listing": descriptor}),
                error=listing.error,
            )
        )
    job.estimated_calls = plan.estimated_calls
    return parts


def grant_of(job: ExportJob) -> Grant:
    return Grant(client_id=job.client_id, scopes=ScopeSet.parse(job.granted_types), backend=True)


class ExportRunner:
    def __init__(
        self,
        store: JobStore,
        service: FhirService,
        client: VendorClient,
        files: ExportFiles,
        clock: Clock,
        limits: ExportLimits,
        hook: FaultHook | None = None,
    ):
        self.store = store
        self.service = service
        self.client = client
        self.files = files
        self.clock = clock
        self.limits = limits
        self.hook = hook

    async def run(self, job_id: str) -> None:
        job = self.store.job(job_id)
        if job is None or job.state not in ACTIVE_STATES:
            return
        self._set(job, state="running", phase="exporting")
        request = ExportRequest.from_json(job.parameters)
        directory = self.files.job_dir(job.id)
        ensure_private_directory(directory)
        spill = LookupSpill(directory, self.client.wire.paging_params)
        finished = False
        with metered() as meter:
            base_calls = job.calls_spent
            try:
                ctx = await self._vendor(job, self.service.context)
                selections = select_types(request, self.service.registry, ctx, grant_of(job))
                for part in self.store.parts(job.id):
                    if part.state != "pending":
                        continue
                    self._check_active(job.id)
                    await self._run_part(
                        job, request, part, ctx, selections, spill, meter, base_calls
                    )
                self._complete(job, request)
                finished = True
            except JobCancelled:
                finished = True
            except FacadeError as error:
                log.warning("export %s failed: %s", job.id, error.code)
                self._set(job, state="failed", failure=error.message)
                finished = True
            except Exception as error:
                # A fault of this server (a full disk, a bug): the job ends failed rather than
                # showing progress forever. The log names the error and where it happened but
                # not its message, which may quote a record.
                log.error(
                    "export %s stopped on an internal error: %s at %s",
                    job.id,
                    type(error).__name__,
                    where(error),
                )
                self._set(
                    job,
                    state="failed",
                    failure=f"The export stopped on an internal error ({type(error).__name__}); "
                    "start a new export.",
                )
                finished = True
            finally:
                job.calls_spent = base_calls + meter.count
                # Kept across a crash or shutdown (the restarted job resumes from it).
                spill.delete() if finished else spill.close()

    # -- parts ---------------------------------------------------------------------------

    async def _run_part(
        self,
        job: ExportJob,
        request: ExportRequest,
        part: ExportPart,
        ctx: MappingContext,
        selections: dict[str, TypeSelection],
        spill: LookupSpill,
        meter: Any,
        base_calls: int,
    ) -> None:
        checkpoint = json.loads(part.checkpoint)
        listing = self._listing(checkpoint["listing"], selections)
        resume = checkpoint.get("resume", {})
        streams = ExportStreams(self.files.job_dir(job.id), self.limits.file_size_bound)
        streams.open(self._streams_state(job, part.seq))
        members = set(request.patients) if _confined(request) else None
        since = parse_date_range(request.since).low if request.since else None
        tracked = referenced_in(request, self.service)
        writer = _Writer(streams, ctx, members, since, selections, tracked)
        writer.references.update(resume.get("references", []))
        try:
            if listing.mode == "practice":
                await self._run_practice(
                    job, part, listing, checkpoint, resume, writer, spill, meter, base_calls
                )
            elif listing.mode in ("lookup", REFERENCES):
                if listing.mode == REFERENCES:
                    await self._run_references(job, part, listing, ctx, writer)
                else:
                    await self._run_lookup(job, listing, ctx, writer)
                self._save(job, part, checkpoint, writer.checkpoint(), meter, base_calls, writer)
            elif listing.mode == BY_PATIENT:
                await self._run_by_patient(
                    job,
                    part,
                    listing,
                    checkpoint,
                    resume,
                    writer,
                    spill,
                    request,
                    meter,
                    base_calls,
                )
            else:
                await self._run_patients(
                    job, part, listing, checkpoint, resume, writer, ctx, request, meter, base_calls
                )
            part.state = "done"
        except UpstreamError as error:
            # Lines after the last checkpoint are dropped: the part ends at a page boundary.
            part.state = "failed"
            part.error = f"{listing.endpoint}: {error.message}"
            log.warning("export %s part %d failed: %s", job.id, part.seq, error.code)
        finally:
            streams.close()
        self.store.save_part(part)
        if part.state == "failed":
            truncate = ExportStreams(self.files.job_dir(job.id), 1)
            truncate.open(self._streams_state(job, part.seq))
            truncate.close()

    def _streams_state(self, job: ExportJob, upto: int | None = None) -> StreamState:
        """The export's files as the last checkpoint of the parts up to `upto` (all if None)
        left them: parts run in order and share the files, so the latest checkpoint holds
        the lines of every part before it."""
        for part in reversed(self.store.parts(job.id)):
            if upto is not None and part.seq > upto:
                continue
            streams = json.loads(part.checkpoint).get("resume", {}).get("streams")
            if streams is not None:
                return dict(streams)
        return {}

    async def _run_practice(
        self,
        job: ExportJob,
        part: ExportPart,
        listing: Listing,
        checkpoint: dict[str, Any],
        resume: dict[str, Any],
        writer: _Writer,
        spill: LookupSpill,
        meter: Any,
        base_calls: int,
    ) -> None:
        reason = f"bulk export {listing.endpoint}"

        def spent() -> None:  # a long fill shows in X-Progress as it goes
            self._save_calls(job, meter, base_calls)

        for name in listing.lookups:
            await self._fill(job, spill, name, self._page_length(name), reason, spent)
        own = list_name(listing.endpoint, listing.params, self.client.wire.paging_params)
        replay = self._is_lookup(job, own) or spill.progress(own) is not None
        if replay:
            # Another listing joins this list in: it is read once, into the spill, and both
            # use that copy.
            await self._fill(job, spill, own, listing.page_length, reason, spent)
        pages = int(resume.get("pages", 0))
        records = int(resume.get("records", 0))
        source = self._pages(job, spill, listing, own if replay else None, resume, reason)
        durable = _Durability(meter)
        async with aclosing(source):
            async for results, position in source:
                for record in results:
                    for consumer in listing.consumers:
                        joined = consumer.join(record, spill) if consumer.join else record
                        if joined is not None:
                            writer.consume_record(consumer, joined)
                pages += 1
                records += len(results)
                if self.hook:
                    self.hook("page-written", part.seq, pages)
                state = {**position, "pages": pages, "records": records}
                if durable.due():
                    self._checkpoint(job, part, checkpoint, state, meter, base_calls, writer)
                    durable.saved()
            if durable.behind:  # the listing's last pages: durable before the part ends
                self._checkpoint(job, part, checkpoint, state, meter, base_calls, writer)
        self.store.save_statistic(
            str(checkpoint["listing"]["key"]), records, pages, self.clock.now()
        )

    async def _pages(
        self,
        job: ExportJob,
        spill: LookupSpill,
        listing: Listing,
        spilled: str | None,
        resume: dict[str, Any],
        reason: str,
    ) -> AsyncGenerator[tuple[list[Record], dict[str, Any]], None]:
        """The listing's pages, each with where to resume after it: from the spill when the
        list is there (`spilled` names it), otherwise from the vendor."""
        if spilled is not None:
            start = int(resume.get("spilled", 0))
            while results := spill.records(spilled, start, listing.page_length):
                start += len(results)
                yield results, {"spilled": start}
            return
        url = (
            resume["url"]
            if "url" in resume
            else self.client.list_url(listing.endpoint, listing.params)
        )
        while url is not None:
            page = await self._fetch_page(job, url, reason)
            url = page.next_url
            yield page.results, {"url": url}

    async def _run_lookup(
        self, job: ExportJob, listing: Listing, ctx: MappingContext, writer: _Writer
    ) -> None:
        consumer = listing.consumers[0]
        assert consumer.mapping is not None
        mapping = consumer.mapping
        resources = await self._vendor(job, lambda: self.service.lookup_resources(mapping, ctx))
        writer.consume(consumer, resources)

    async def _run_references(
        self,
        job: ExportJob,
        part: ExportPart,
        listing: Listing,
        ctx: MappingContext,
        writer: _Writer,
    ) -> None:
        """The practice resources the other parts' lines reference, each written once."""
        wanted: set[str] = set()
        for other in self.store.parts(job.id):
            if other.seq != part.seq:
                resume = json.loads(other.checkpoint).get("resume", {})
                wanted.update(resume.get("references", []))

        async def load(mapping: ResourceMapping) -> list[Record]:
            found: list[Record] = await self._vendor(
                job, partial(self.service.lookup_resources, mapping, ctx)
            )
            return found

        await write_referenced(wanted, listing.consumers, load, writer)

    async def _run_patients(
        self,
        job: ExportJob,
        part: ExportPart,
        listing: Listing,
        checkpoint: dict[str, Any],
        resume: dict[str, Any],
        writer: _Writer,
        ctx: MappingContext,
        request: ExportRequest,
        meter: Any,
        base_calls: int,
    ) -> None:
        start = int(resume.get("patient_index", 0))
        fc = FetchContext(
            ctx=ctx,
            cache_ttl=self.service.limits.page_cache_seconds,
            reason="bulk export, one patient",
        )
        for index in range(start, len(request.patients)):
            patient_id = request.patients[index]
            for consumer in listing.consumers:
                records = await self._vendor(
                    job, partial(self._patient_records, consumer, patient_id, fc)
                )
                for record in records:
                    writer.consume_record(consumer, record)
            if self.hook:
                self.hook("page-written", part.seq, index + 1)
            progress = {"patient_index": index + 1}
            self._checkpoint(job, part, checkpoint, progress, meter, base_calls, writer)

    async def _run_by_patient(
        self,
        job: ExportJob,
        part: ExportPart,
        listing: Listing,
        checkpoint: dict[str, Any],
        resume: dict[str, Any],
        writer: _Writer,
        spill: LookupSpill,
        request: ExportRequest,
        meter: Any,
        base_calls: int,
    ) -> None:
        """One endpoint the vendor lists only patient by patient: one listing per patient of
        the export (its members, or the practice's patient list), every consumer fed from
        that one answer, and a checkpoint after each patient that cost a call (_Durability), so
        a restart resumes at the next patient without asking for a finished one again."""
        reason = f"bulk export {listing.endpoint}, one patient"

        def spent() -> None:
            self._save_calls(job, meter, base_calls)

        for name in listing.lookups:
            await self._fill(job, spill, name, self._page_length(name), reason, spent)
        start = int(resume.get("patient_index", 0))
        calls = int(resume.get("calls", 0))
        listed = int(resume.get("records", 0))
        patients = self._export_patients(spill, listing.patient_list, request, start)
        durable = _Durability(meter)
        progress: dict[str, Any] = {}
        for index, patient_id in enumerate(patients, start=start):
            params = {**listing.params, listing.patient_param: patient_id}
            url: str | None = self.client.list_url(listing.endpoint, params)
            records: list[Record] = []
            while url is not None:
                page = await self._fetch_page(job, url, reason)
                records.extend(page.results)
                url = page.next_url
                calls += 1
            listed += len(records)
            for record in records:
                for consumer in listing.consumers:
                    joined = consumer.join(record, spill) if consumer.join else record
                    if joined is not None:
                        writer.consume_record(consumer, joined)
            if self.hook:
                self.hook("page-written", part.seq, index + 1)
            progress = {"patient_index": index + 1, "calls": calls, "records": listed}
            if durable.due():
                self._checkpoint(job, part, checkpoint, progress, meter, base_calls, writer)
                durable.saved()
        if durable.behind:  # the last patients: durable before the part ends
            self._checkpoint(job, part, checkpoint, progress, meter, base_calls, writer)
        self.store.save_statistic(listing.key, listed, calls, self.clock.now())

    def _export_patients(
        self, spill: LookupSpill, patient_list: str, request: ExportRequest, start: int
    ) -> Iterator[str]:
        """The vendor ids of the export's patients from the `start`th on: its members, or
        every record of the practice's patient list (in the spill)."""
        if not patient_list:
            yield from request.patients[start:]
            return
        page = self._page_length(patient_list)
        while records := spill.records(patient_list, start, page):
            start += len(records)
            yield from (str(record["id"]) for record in records)

    async def _patient_records(
        self, consumer: Consumer, patient_id: str, fc: FetchContext
    ) -> list[Record]:
        ttl = fc.cache_ttl
        if consumer.mapping is not None:
            mapping = consumer.mapping
            params = {
                **mapping.fixed_params,
                **self.client.wire.detail_params(mapping.needs_detail(fc.ctx)),
            }
            record = await self.client.get_record(
                mapping.endpoint, patient_id, params, reason=fc.reason, cache_ttl=ttl
            )
            return [record] if record is not None else []
        source = consumer.source
        assert source is not None
        if source.fetch is not None:
            return await source.fetch(self.client, patient_id, fc)
        params = {
            source.patient_param: patient_id,
            **source.fixed_params,
            **self.client.wire.detail_params(source.needs_detail(fc.ctx)),
        }
        return await self.client.list_all(source.endpoint, params, reason=fc.reason, cache_ttl=ttl)

    def _page_length(self, name: str) -> int:
        """The largest page for a lookup list named `<endpoint>?<query>`."""
        _, params = parse_list_name(name)
        wire = self.client.wire
        return wire.largest(wire.is_detail(params))

    def _is_lookup(self, job: ExportJob, own: str) -> bool:
        """Whether any listing of the job joins in the list named `own`."""
        for part in self.store.parts(job.id):
            descriptor = json.loads(part.checkpoint).get("listing", {})
            paging = self.client.wire.paging_params
            if any(canonical(str(name), paging) == own for name in descriptor.get("lookups", [])):
                return True
        return False

    async def _fill(
        self,
        job: ExportJob,
        spill: LookupSpill,
        name: str,
        page_length: int,
        reason: str,
        spent: Callable[[], None],
    ) -> None:
        """Read a practice list whole into the spill, a vendor page at a time. Each page is
        committed with the next page's URL, so a pause for the quota or a restart resumes
        at the next page instead of starting the list over (which, for a list longer than
        the hour's quota, would never end)."""
        progress = spill.progress(name)
        if progress is not None and progress[1]:
            return
        endpoint, params = parse_list_name(name)
        if not params and self.service.is_practice_list(endpoint):
            # Doctors, offices: the practice lists the server already holds, in one piece.
            practice = await self._vendor(job, partial(self.service.practice_list, endpoint))
            spill.add_page(name, practice, None)
            return
        url: str | None
        if progress is not None:
            url = progress[0]
        else:
            url = self.client.list_url(
                endpoint, {**params, **self.client.wire.page_params(page_length)}
            )
        while url is not None:
            page = await self._fetch_page(job, url, reason)
            spill.add_page(name, page.results, page.next_url)
            url = page.next_url
            spent()
            if self.hook:
                self.hook("lookup-page-spilled", 0, len(page.results))
            self._check_active(job.id)

    # -- the vendor, with the quota ------------------------------------------------------

    async def _fetch_page(self, job: ExportJob, url: str, reason: str) -> VendorPage:
        """One listing page, uncached (the spill keeps what is read twice)."""
        fetch = partial(
            self.client.fetch_page, url, reason=reason, max_wait=self.limits.max_call_wait_seconds
        )
        page: VendorPage = await self._vendor(job, fetch)
        return page

    async def _vendor(self, job: ExportJob, call: Callable[[], Any]) -> Any:
        """Run one vendor call; when it may not go out now, park the job for as long as the
        budget says: the vendor's stated wait after a 429, the hour's turn only when facade's
        own hourly count is spent."""
        while True:
            try:
                return await call()
            except UpstreamThrottled as throttled:
                holding = self.client.budget.next_call()
                wait = max(throttled.retry_after, holding.seconds)
                self._set(job, state="paused", resume_at=self.clock.now() + timedelta(seconds=wait))
                log.info("export %s paused for %.0f s (%s)", job.id, wait, holding.cause)
                await self.clock.sleep(wait)
                self._check_active(job.id)
                self._set(job, state="running", resume_at=None)

    # -- state ---------------------------------------------------------------------------

    def _listing(self, descriptor: dict[str, Any], selections: dict[str, TypeSelection]) -> Listing:
        registry = self.service.registry
        from facade.bulk.planner import _patient_expression
        from facade.core.compartment import BulkListing, CompartmentMapping

        consumers: list[Consumer] = []
        joined = ("practice", BY_PATIENT)  # the modes that fill their listing's lookups
        for resource_type, source_name, *flags in descriptor["consumers"]:
            mapping = registry.get(resource_type)
            silent = "silent" in flags
            selection = TypeSelection(resource_type) if silent else selections[resource_type]
            provenance = "Provenance" in selections and not silent
            if isinstance(mapping, ResourceMapping):
                consumers.append(
                    Consumer(
                        resource_type,
                        selection,
                        mapping=mapping,
                        provenance=provenance and resource_type == "Patient",
                        author_paths=mapping.author_paths,
                        silent=silent,
                    )
                )
            else:
                assert isinstance(mapping, CompartmentMapping)
                source = mapping.source(source_name)
                assert source is not None
                bulk: BulkListing | None = source.bulk
                consumers.append(
                    Consumer(
                        resource_type,
                        selection,
                        source=source,
                        join=bulk.join if bulk and descriptor["mode"] in joined else None,
                        patient_expression=_patient_expression(mapping),
                        provenance=provenance,
                        author_paths=mapping.author_paths,
                    )
                )
        wire = self.client.wire
        detail = bool(descriptor.get("detail"))
        params = dict(descriptor["params"])
        return Listing(
            descriptor["mode"],
            descriptor["endpoint"],
            params,
            tuple(descriptor["lookups"]),
            consumers,
            detail,
            page_length=wire.asked_page_size(params) or wire.largest(detail),
            patient_param=str(descriptor.get("patient_param", "")),
            patient_list=str(descriptor.get("patient_list", "")),
        )

    def _save(
        self,
        job: ExportJob,
        part: ExportPart,
        checkpoint: dict[str, Any],
        resume: dict[str, Any],
        meter: Any,
        base_calls: int,
        writer: _Writer,
    ) -> None:
        checkpoint["resume"] = resume
        part.checkpoint = json.dumps(checkpoint)
        self.store.save_part(part)
        job.resources_written += writer.take_written()
        self._save_calls(job, meter, base_calls)

    def _checkpoint(
        self,
        job: ExportJob,
        part: ExportPart,
        checkpoint: dict[str, Any],
        progress: dict[str, Any],
        meter: Any,
        base_calls: int,
        writer: _Writer,
    ) -> None:
        """Make what the part wrote durable with `progress`, save it, and stop if the job
        was cancelled meanwhile."""
        state = {**progress, **writer.checkpoint()}
        self._save(job, part, checkpoint, state, meter, base_calls, writer)
        self._check_active(job.id)

    def _save_calls(self, job: ExportJob, meter: Any, base_calls: int) -> None:
        job.calls_spent = base_calls + meter.count
        job.updated_at = self.clock.now()
        self.store.save_job(job)

    def _check_active(self, job_id: str) -> None:
        current = self.store.job(job_id)
        if current is None or current.state not in ACTIVE_STATES:
            raise JobCancelled()

    def _set(self, job: ExportJob, **changes: Any) -> None:
        current = self.store.job(job.id)
        if current is not None and current.state == "cancelled":
            raise JobCancelled()
        for name, value in changes.items():
            setattr(job, name, value)
        job.updated_at = self.clock.now()
        self.store.save_job(job)

    def _complete(self, job: ExportJob, request: ExportRequest) -> None:
        outputs: list[ExportFile] = []
        errors: list[dict[str, Any]] = []
        for resource_type, files in self._streams_state(job).items():
            for name, lines, size in files:
                if lines:
                    outputs.append(
                        ExportFile(
                            job_id=job.id,
                            name=name,
                            resource_type=resource_type,
                            kind="output",
                            count=int(lines),
                            size=int(size),
                        )
                    )
                else:
                    self.files.delete(job.id, name)
        for part in self.store.parts(job.id):
            if part.error:
                issue = FacadeError(part.error)
                issue.issue_type = "incomplete" if part.state == "skipped" else "transient"
                issue.code = (
                    "export-part-skipped" if part.state == "skipped" else "export-part-failed"
                )
                errors.append(operation_outcome(issue))
        outputs.sort(key=lambda f: f.resource_type)  # stable: a type's files stay in order
        if errors:
            name = "errors-OperationOutcome-1.ndjson"
            size = self.files.write_lines(job.id, name, [orjson.dumps(e) for e in errors])
            outputs.append(
                ExportFile(
                    job_id=job.id,
                    name=name,
                    resource_type="OperationOutcome",
                    kind="error",
                    count=len(errors),
                    size=size,
                )
            )
        # Published before the job says completed: a manifest never names a file not stored.
        self.files.publish(job.id, [f.name for f in outputs])
        self.store.add_files(outputs)
        now = self.clock.now()
        self._set(
            job,
            state="completed",
            phase="done",
            completed_at=now,
            expires_at=now + timedelta(seconds=self.limits.file_expiry_seconds),
        )


def where(error: BaseException) -> str:
    """`file:line` of the innermost frame of an exception's traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


def referenced_in(request: ExportRequest, service: FhirService) -> frozenset[str]:
    """The practice types a Patient or Group export writes as its lines reference them."""
    if request.level == "system":
        return frozenset()
    return frozenset(request.types) & frozenset(reference_types(service.registry))


def _confined(request: ExportRequest) -> bool:
    return request.level == "group" or bool(request.patients)


class _Writer:
    """Applies the export's checks to mapped resources and writes the ones kept."""

    def __init__(
        self,
        streams: ExportStreams,
        ctx: MappingContext,
        members: set[str] | None,
        since: datetime | None,
        selections: dict[str, TypeSelection],
        tracked: frozenset[str],
    ):
        self.streams = streams
        self.ctx = ctx
        self.members = members
        self.since = since
        self.selections = selections
        #: The practice types whose references written lines make are noted (for the
        #: export's references part), and the references noted so far.
        self.tracked = tracked
        self.references: set[str] = set()
        self._written = 0

    def consume_record(self, consumer: Consumer, record: Record) -> None:
        written = self.consume(consumer, consumer.transform(record, self.ctx))
        if written and consumer.has_companions:
            self._companions(consumer.companions(record, self.ctx), written)

    def consume(self, consumer: Consumer, resources: list[Record]) -> list[Record]:
        """Writes the resources that pass the export's checks and returns them."""
        written: list[Record] = []
        for resource in resources:
            if (
                self.members is not None
                and consumer.in_compartment
                and consumer.patient_of(resource) not in self.members
            ):
                continue
            if consumer.silent:
                collect_references(resource, self.tracked, self.references)
                continue
            if self.since is not None and not self._changed(resource):
                continue
            if not consumer.selection.keeps(resource):
                continue
            self._write(resource)
            written.append(resource)
            if consumer.provenance:
                self._write(provenance_for(resource, consumer.author_paths, self.ctx))
        return written

    def _companions(self, companions: list[Record], written: list[Record]) -> None:
        """Resources only the source record can build (a Coverage's payer Organization),
        written beside the lines that reference them when the export carries their type."""
        named: set[str] = set()
        collect_references(written, frozenset(c["resourceType"] for c in companions), named)
        for companion in companions:
            selection = self.selections.get(companion["resourceType"])
            if selection is None or local_reference(companion) not in named:
                continue
            if selection.keeps(companion):
                self._write(companion)

    def _write(self, resource: Record) -> None:
        self.streams.write(resource)
        self._written += 1
        if self.tracked:
            collect_references(resource, self.tracked, self.references)

    def checkpoint(self) -> dict[str, Any]:
        """What a resumed part starts from: its files, and the references written so far."""
        return {"streams": self.streams.checkpoint(), "references": sorted(self.references)}

    def _changed(self, resource: Record) -> bool:
        updated = resource.get("meta", {}).get("lastUpdated")
        if not updated:
            return True  # no change time known: included rather than silently lost
        try:
            return parse_date_range(updated).low > self.since  # type: ignore[operator]
        except ValueError:
            return True

    def take_written(self) -> int:
        written, self._written = self._written, 0
        return written
