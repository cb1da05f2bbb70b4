"""The mirror's sync: what to read (the Bulk export's practice-wide plan), and reading it into
the store within a share of the vendor quota.

Four passes, each resumable and each stopping (`SyncRun.paused`) when its share of the
hour's calls is spent, the vendor holds it off, or a call fails:

- backfill: every listing of the plan, page by page (a listing the vendor has only patient by
  patient, once per mirrored patient), each record kept raw with its vendor id, patient key and
  vendor change time. After each page the listing's watermark says where to go on (the
  vendor's next-page URL, the last finished patient), so a run after a crash asks for no page
  or patient it already has. A record's patient key is the patient it was listed for, or the
  field its mappings select patients by, or what its join over the mirrored practice lists
  names (a lab result: its order's patient); its change time is the one its mappings declare
  (read on the joined record when the raw one holds none). Practice lists only joins read
  are backfilled first.
- poll: a listing whose vendor filters by change time (the Wire's `since_param`) is listed
  changed-since its synced-through time less an overlap (clocks and commit order differ), and
  what comes back replaces what is kept. A vendor with no such filter is re-read instead
  (`reread`, which poll runs for it).
- reread: bounded re-reads of the listings the vendor cannot filter. A practice-wide one (the
  patients, providers, locations: a few pages) is re-read whole at most once a pass and once
  `whole_every`, the longest unread first, what it no longer lists deleted. A per-patient one
  is re-read in rotation, patient by patient, the patients whose listing was read longest ago
  first (the store's fetch times say when), each through the same re-list a webhook hint on
  that patient runs (what it no longer lists for the patient is deleted), leaving a reserve
  of the share to hinted refreshes. Its watermark keeps the rotation's
  place (the cycle under way and the last patient done), so a pause or a crash goes on with
  the next patient; a cycle re-reads every patient once (one a hint re-listed since the
  cycle began counts as done), and then the listing is synced through the cycle's start.
- reconcile: every listing re-read whole; what the vendor no longer lists is deleted (most
  vendor deletes announce nothing), and what it lists is kept as it is now. An endpoint is
  reconciled only when all its listings were read to the end: a partial read proves nothing.
- refresh_hinted: the records the vendor's webhooks named (the receiver's hints), read again
  from the vendor, by id or, for a listing the vendor has per patient, that patient's
  listing; the event's body is never taken. What no hint names waits for poll and reconcile.

Freshness bound of the re-reads. With P patients, a per-patient listing costing c calls a
patient, a share S of an hourly limit L, and O other sync calls an hour (the practice-wide
re-reads, W pages each `whole_every`; the hinted re-lists, H an hour, or the reserve R the
rotation leaves them, a tenth of the share, whichever is more), a cycle takes

    T = P * c / (S * L - O) hours,   O = W / whole_every + max(H, R)

and a change nothing announces (a chart row edited, a record deleted) is served within T
plus one pass's cadence. A vendor that lists a patient's encounters with their chart nested,
unpaged (c = 1), with a practice list of 50 patients a page: for P = 1,000, W = 20 + 3 pages
(patients, providers, locations, the account) re-read hourly, L = 500 (facade's default
limit) and S = 1/2 (250 calls an hour, R = 25), T = 1,000 / (250 - 23 - 25) = 5.0 hours
while hints stay within the reserve, spending 225 to 250 calls an hour however few records
change: the bound is bought by calls, and halving it takes twice the share or the limit
(L = 1,000, the embedded sandbox's own hourly budget per user: 2.3 hours). A change the
vendor's webhooks announce (a visit booked or moved, an encounter signed) is instead
re-listed for its patient by the next `refresh_hinted` pass, one call from the reserve,
within that pass's cadence; the patient then counts as re-read in the cycle, so a hint
costs the rotation nothing while hints fit the reserve (H = 60 an hour: 6.0 hours).

The sync names no vendor: the plan, the wire rules and the change times come from the
mappings and the vendor's Wire.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from math import floor
from typing import Any, NamedTuple

import anyio

from facade.bulk.planner import BY_PATIENT, Consumer, Listing, plan_export
from facade.bulk.request import ExportRequest, exportable_types, select_types
from facade.bulk.spill import list_name, parse_list_name
from facade.clock import Clock
from facade.core.compartment import LookupTables
from facade.core.mapping import ChangeTime, MappingContext, Record, ResourceMapping
from facade.core.registry import MappingRegistry
from facade.core.vendor import VendorClient, VendorPage, Wire
from facade.errors import FacadeError, UpstreamNotFound
from facade.mirror.store import Hint, MirrorStore, VendorRecord, Watermark
from facade.upstream.budget import UpstreamBudget, metered

#: The share of the hour's vendor calls the sync may spend, leaving the rest to live reads.
DEFAULT_SHARE = 0.5
#: How far before its synced-through time a poll asks for changes: records committed late, or
#: stamped by a vendor clock a little behind facade's, are not missed.
DEFAULT_OVERLAP = timedelta(minutes=5)
#: How often a practice-wide listing the vendor cannot filter by change time is re-read
#: whole (at most; a pass re-reads it once however often it runs).
DEFAULT_WHOLE_REREAD = timedelta(hours=1)
#: The part of the sync's share a rotation of re-reads leaves to hinted refreshes: a rotation
#: would otherwise spend it all, and a change a webhook announced would wait for the window.
DEFAULT_HINT_RESERVE = 0.1
#: A moment before any vendor record, for listings that must name one to list everything.
_EVERYTHING = "2000-01-01"
#: When a patient with no record kept was last read, for the rotation's order: first.
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SyncListing:
    """One vendor listing the mirror keeps: an endpoint with its canonical parameters."""

    endpoint: str
    #: The parameters a full read sends (page size and detail included).
    params: dict[str, str]
    #: The listing's identity in its watermark (paging and page size aside).
    key: str
    #: Whether the vendor filters this listing by change time (Wire.since_param).
    since: bool = False
    #: Listings the vendor has only patient by patient: the parameter naming the patient, and
    #: the endpoint whose mirrored records are the patients.
    patient_param: str = ""
    patient_endpoint: str = ""
    #: Where a record names its patient (the consumers' patient parameter, as a field).
    patient_fields: tuple[str, ...] = ()
    #: The record is a patient (its own id is the patient key).
    is_patient: bool = False
    #: The consumers' declared change times, first that a record holds wins.
    change_times: tuple[ChangeTime, ...] = ()
    #: Consumers whose records name their patient only through a joined practice list (a lab
    #: result through its order): the join, over the mirrored lists, and the mapping say it.
    joins: tuple[Consumer, ...] = ()
    #: The vendor patient key of a FHIR Patient id (the Patient mapping's `vendor_id`).
    patient_key: Callable[[str], str | None] = lambda fhir_id: fhir_id

    def patient_of(self, record: Record, listed_for: str | None) -> str | None:
        if listed_for is not None:
            return listed_for
        if self.is_patient:
            return str(record["id"])
        for name in self.patient_fields:
            value = record.get(name)
            if isinstance(value, str | int) and str(value):
                return str(value)
        return None

    def joined(
        self, record: Record, lookups: LookupTables, ctx: MappingContext
    ) -> tuple[str | None, datetime | None]:
        """Patient key and change time of a record its join completes: the first consumer whose
        join keeps the record and whose resources name a patient says them."""
        for consumer in self.joins:
            assert consumer.join is not None
            joined = consumer.join(record, lookups)
            if joined is None:
                continue
            for resource in consumer.transform(joined, ctx):
                fhir_id = consumer.patient_of(resource)
                if fhir_id is not None:
                    return self.patient_key(fhir_id), self.changed_at(joined, ctx)
        return None, self.changed_at(record, ctx)

    def changed_at(self, record: Record, ctx: MappingContext) -> datetime | None:
        for declared in self.change_times:
            moment = declared.of(record, ctx)
            if moment is not None:
                return datetime.fromisoformat(moment)
        return None


def plan_sync(registry: MappingRegistry, ctx: MappingContext, wire: Wire) -> list[SyncListing]:
    """The listings a system-level Bulk export of everything reads, and the practice lists its
    joins look up, once each, in the export's order (patients before per-patient listings)."""
    request = ExportRequest("system", types=tuple(exportable_types(registry, "system")))
    selections = select_types(request, registry, ctx, None)
    patient = registry.get("Patient")
    assert isinstance(patient, ResourceMapping)
    patient_key = patient.vendor_id

    def plan(since: str | None) -> list[Listing]:
        asked = replace(request, since=since)
        return plan_export(
            asked,
            registry,
            selections,
            ctx,
            member_count=None,
            per_patient_threshold=0,
            estimate=lambda _key: None,
            wire=wire,
        ).listings

    # Which listings the vendor filters by change time: those an export `_since` plans with
    # the Wire's since parameter (the mappings decide, per source, whether it applies).
    filtered = {
        _identity(x, wire, without_since=True) for x in plan(_EVERYTHING) if _since_in(x, wire)
    }
    found: dict[str, SyncListing] = {}
    lookups: list[str] = []
    for listing in plan(None):
        if listing.mode not in ("practice", "lookup", BY_PATIENT):
            continue
        key = _identity(listing, wire)
        patient_endpoint = parse_list_name(listing.patient_list)[0] if listing.patient_list else ""
        found.setdefault(
            key,
            SyncListing(
                endpoint=listing.endpoint,
                params=dict(listing.params),
                key=key,
                since=_identity(listing, wire, without_since=True) in filtered,
                patient_param=listing.patient_param if listing.mode == BY_PATIENT else "",
                patient_endpoint=patient_endpoint,
            ),
        )
        found[key] = _with_consumers(found[key], listing.consumers, patient_key)
        lookups.extend(listing.lookups)
    listed = {listing.endpoint for listing in found.values()}
    joined_only: list[SyncListing] = []
    for name in lookups:
        endpoint, params = parse_list_name(name)
        if endpoint not in listed:
            # A practice list only a join reads (the practice-wide listing of an endpoint
            # already holds every record a lookup of it would); read before the joins.
            key = list_name(endpoint, wire.without_page_size(params), wire.paging_params)
            sized = {**params, **wire.page_params(wire.largest(wire.is_detail(params)))}
            joined_only.append(SyncListing(endpoint=endpoint, params=sized, key=key))
            listed.add(endpoint)
    return [*joined_only, *sorted(found.values(), key=lambda x: bool(x.patient_param))]


def _identity(listing: Listing, wire: Wire, *, without_since: bool = False) -> str:
    params = wire.without_page_size(listing.params)
    if without_since:
        params = {k: v for k, v in params.items() if k != wire.since_param}
    return list_name(listing.endpoint, params, wire.paging_params)


def _since_in(listing: Listing, wire: Wire) -> bool:
    return bool(wire.since_param) and wire.since_param in listing.params


def _with_consumers(
    listing: SyncListing, consumers: Iterable[Consumer], patient_key: Callable[[str], str | None]
) -> SyncListing:
    fields = list(listing.patient_fields)
    times = list(listing.change_times)
    is_patient = listing.is_patient
    joins = list(listing.joins)
    for consumer in consumers:
        if consumer.join is not None:
            joins.append(consumer)
        declared = consumer.source.last_updated if consumer.source else None
        if consumer.mapping is not None:
            declared = consumer.mapping.last_updated
            is_patient = is_patient or consumer.resource_type == "Patient"
        if consumer.source is not None and consumer.source.patient_param not in fields:
            fields.append(consumer.source.patient_param)
        if isinstance(declared, ChangeTime) and declared not in times:
            times.append(declared)
    return replace(
        listing,
        patient_fields=tuple(fields),
        change_times=tuple(times),
        patient_key=patient_key,
        is_patient=is_patient,
        joins=tuple(joins),
    )


class SyncShare:
    """The sync's own calls in the vendor's quota window, held to `share` of its limit.

    Counted the way the vendor counts (UpstreamBudget's QuotaRule: a clock-aligned window, or
    a rolling one), so the calls left to live reads are the limit less at most this share.
    A page is started only while a call is left; the client's retries of a failing page count
    too, so a failing page may overshoot by its retries. The count lives in the process: one
    share per connection, kept across passes (a restart forgets the hour's calls so far)."""

    def __init__(self, budget: UpstreamBudget, clock: Clock, share: float = DEFAULT_SHARE):
        if not 0 < share <= 1:
            raise ValueError("the sync's share of the quota is in (0, 1]")
        self._budget = budget
        self._clock = clock
        self.allowed = floor(budget.hourly_limit * share)
        self._sent: deque[datetime] = deque()
        self._held_back = 0

    @property
    def spent(self) -> int:
        """The sync's calls that count in the current window."""
        now = self._clock.now()
        quota = self._budget.quota
        window = timedelta(seconds=quota.window_seconds)
        # As UpstreamBudget counts: an aligned window forgets every call when it turns, a
        # rolling one forgets each call `window` after it went out.
        start = quota.window_start(now)
        while self._sent and (
            self._sent[0] < start if quota.aligned else now - self._sent[0] >= window
        ):
            self._sent.popleft()
        return len(self._sent)

    @property
    def window_seconds(self) -> float:
        """The length of the vendor's quota window the share is counted in."""
        return self._budget.quota.window_seconds

    def vendor_wait(self) -> float:
        """Seconds until the budget lets any call out (the vendor's 429 hold included)."""
        return self._budget.wait_needed()

    @property
    def left(self) -> int:
        """Calls the sync may still make in this window (less what is held back)."""
        return max(0, min(self.allowed - self.spent, self._budget.remaining) - self._held_back)

    def took(self, calls: int) -> None:
        now = self._clock.now()
        self._sent.extend([now] * calls)

    @contextmanager
    def holding_back(self, calls: int) -> Iterator[None]:
        """Within the block, `left` keeps `calls` of the share for other passes: a long pass
        (backfill, reconcile) stops there, so the sync still has calls for what webhooks
        announce later in the window."""
        before, self._held_back = self._held_back, max(0, calls)
        try:
            yield
        finally:
            self._held_back = before

    def seconds_until_free(self, *, another: bool = False) -> float:
        """Until the window frees one of the sync's calls (0 while one is left, unless
        `another`: a pass that keeps what is left for others waits for one more): the
        window's turn (aligned), or when its oldest counted call leaves it (rolling); or, when
        live reads spent the rest of the quota, until the vendor's window frees one."""
        if self.left > 0 and not another:
            return 0.0
        now = self._clock.now()
        quota = self._budget.quota
        window = timedelta(seconds=quota.window_seconds)
        waits = [0.0]
        if another or self.spent + self._held_back >= self.allowed:
            if quota.aligned:
                turn = quota.window_start(now) + window
            else:
                turn = self._sent[0] + window if self._sent else now
            waits.append((turn - now).total_seconds())
        if self._budget.remaining <= self._held_back:
            waits.append(self._budget.seconds_until_reset())
        return max(waits)


@dataclass
class SyncRun:
    """What one pass did."""

    calls: int = 0
    written: int = 0
    deleted: int = 0
    #: Why it stopped before the end (the share spent, the vendor's refusal), or "".
    paused: str = ""
    #: Per endpoint, calls spent in this pass.
    calls_by_endpoint: dict[str, int] = field(default_factory=dict)
    #: It stopped because the share is spent (it goes on when the window frees calls).
    share_spent: bool = False

    @property
    def finished(self) -> bool:
        return not self.paused

    def stopped(self, pause: _Paused) -> None:
        self.paused = str(pause)
        self.share_spent = pause.share_spent


class _HintedRead(NamedTuple):
    """What refreshes hinted records: a record of a practice-wide listing read by id (`key`
    its vendor id), or a patient's records of a listing the vendor has per patient listed
    again (`key` the patient)."""

    endpoint: str
    by_patient: bool
    key: str


@dataclass(frozen=True)
class _Rotation:
    """Where a per-patient listing's re-reads in rotation stand: the cycle under way (a
    patient whose listing was last read before `cycle` is due in it, the stalest first) and
    the last patient re-read in it, as its place in that order (when it had last been read,
    its key). Kept in the listing's watermark, so a pause or a crash goes on with the next
    patient. A patient read again since the cycle began (a hint) is no longer due; one with no
    record kept has no read time, so its place in the order says whether it is done."""

    cycle: datetime
    after: tuple[datetime, str] | None = None

    @classmethod
    def of(cls, cursor: dict[str, Any] | None, now: datetime) -> _Rotation:
        kept = (cursor or {}).get("rotation")
        if not kept:
            return cls(now)
        after = kept["after"]
        place = None if after is None else (datetime.fromisoformat(after[0]), str(after[1]))
        return cls(datetime.fromisoformat(kept["cycle"]), place)

    def cursor(self) -> dict[str, Any]:
        after = None if self.after is None else [self.after[0].isoformat(), self.after[1]]
        return {"rotation": {"cycle": self.cycle.isoformat(), "after": after}}

    def due(self, last_read: datetime, patient: str) -> bool:
        return last_read < self.cycle and (self.after is None or (last_read, patient) > self.after)


class _Paused(Exception):
    """The share is spent, or a call failed: the pass stops where its watermarks say."""

    def __init__(self, reason: str, *, share_spent: bool = False):
        super().__init__(reason)
        #: The share stopped it (it goes on when the window frees calls), not a failure.
        self.share_spent = share_spent


class MirrorSync:
    """Backfill, poll and reconcile one connection's listings into the store."""

    def __init__(
        self,
        store: MirrorStore,
        client: VendorClient,
        ctx: MappingContext,
        listings: list[SyncListing],
        *,
        connection: str,
        clock: Clock,
        share: SyncShare,
        overlap: timedelta = DEFAULT_OVERLAP,
        whole_every: timedelta = DEFAULT_WHOLE_REREAD,
        hint_reserve: float = DEFAULT_HINT_RESERVE,
        max_wait: float = 5.0,
    ):
        self.store = store
        self.client = client
        self.ctx = ctx
        self.listings = listings
        self.connection = connection
        self.clock = clock
        self.share = share
        self.overlap = overlap
        self.whole_every = whole_every
        #: Calls of the share a rotation leaves unspent, for hinted refreshes.
        self.hint_reserve = floor(share.allowed * hint_reserve)
        self.max_wait = max_wait
        self._lookups = MirrorLookups(store, connection)
        #: The reconcile round under way: listings read whole, and the ids each endpoint's
        #: listings listed.
        self._round_read: set[str] = set()
        self._round_seen: dict[str, set[str]] = {}

    # -- backfill ----------------------------------------------------------------------------

    async def backfill(self) -> SyncRun:
        """Read every listing not yet backfilled to its end, from where its watermark says."""
        run = SyncRun()
        try:
            for listing in self.listings:
                mark = await self._watermark(listing)
                if mark.complete:
                    continue
                if listing.patient_param:
                    await self._backfill_by_patient(listing, mark, run)
                else:
                    await self._backfill_pages(listing, mark, run)
        except _Paused as stop:
            run.stopped(stop)
        return run

    async def _backfill_pages(self, listing: SyncListing, mark: Watermark, run: SyncRun) -> None:
        cursor = mark.backfill_cursor or {"started": self._now(), "next": None}
        url = cursor["next"] or self.client.list_url(listing.endpoint, dict(listing.params))
        while url is not None:
            page, calls = await self._fetch(url, listing, run)
            run.written += await self._put(listing, page.results, None, mark.records)
            cursor = {**cursor, "next": page.next_url}
            mark = replace(
                mark,
                backfill_cursor=cursor,
                records=mark.records + len(page.results),
                calls_spent=mark.calls_spent + calls,
            )
            await self._save(mark)
            url = page.next_url
        await self._save(self._completed(mark, cursor))

    async def _backfill_by_patient(
        self, listing: SyncListing, mark: Watermark, run: SyncRun
    ) -> None:
        cursor = mark.backfill_cursor or {"started": self._now(), "after": None, "next": None}
        patients = await anyio.to_thread.run_sync(
            self.store.ids, self.connection, listing.patient_endpoint
        )
        after = cursor["after"]
        for patient in sorted(p for p in patients if after is None or p > after):
            params = {**listing.params, listing.patient_param: patient}
            resuming = cursor["next"] if cursor.get("patient") == patient else None
            url: str | None = resuming or self.client.list_url(listing.endpoint, params)
            while url is not None:
                page, calls = await self._fetch(url, listing, run)
                run.written += await self._put(listing, page.results, patient, 0)
                url = page.next_url
                done = url is None
                cursor = {
                    **cursor,
                    "after": patient if done else cursor["after"],
                    "patient": None if done else patient,
                    "next": url,
                }
                mark = replace(
                    mark,
                    backfill_cursor=cursor,
                    records=mark.records + len(page.results),
                    calls_spent=mark.calls_spent + calls,
                )
                await self._save(mark)
        await self._save(self._completed(mark, cursor))

    def _completed(self, mark: Watermark, cursor: dict[str, Any]) -> Watermark:
        """The listing holds everything the vendor had when its backfill started."""
        return replace(
            mark,
            complete=True,
            backfill_cursor=None,
            synced_through=datetime.fromisoformat(cursor["started"]),
        )

    # -- poll ---------------------------------------------------------------------------------

    async def poll(self) -> SyncRun:
        """List what changed since each backfilled, vendor-filtered listing's synced-through
        time (less the overlap) and keep it. A vendor that filters no listing by change time
        is re-read instead (`reread`); a vendor that filters some leaves the others to its
        webhooks and reconcile (or to `reread`, called on its own)."""
        run = SyncRun()
        try:
            for listing in self.listings:
                if not listing.since or not self.client.wire.since_param:
                    continue
                mark = await self._watermark(listing)
                if not mark.complete or mark.synced_through is None:
                    continue
                started = self.clock.now()
                since = mark.synced_through - self.overlap
                # In the practice's time zone, as the planner's vendor_since spells it.
                local = since.astimezone(self.ctx.timezone).strftime("%Y-%m-%dT%H:%M:%S")
                params = {**listing.params, self.client.wire.since_param: local}
                url: str | None = self.client.list_url(listing.endpoint, params)
                while url is not None:
                    page, calls = await self._fetch(url, listing, run)
                    run.written += await self._put(listing, page.results, None, 0)
                    mark = await self._charge(mark, calls)
                    url = page.next_url
                await self._save(replace(mark, synced_through=started))
            if not self.client.wire.since_param:
                await self._reread(run)
        except _Paused as stop:
            run.stopped(stop)
        return run

    # -- bounded re-reads -----------------------------------------------------------------------

    async def reread(self) -> SyncRun:
        """Re-read the backfilled listings the vendor cannot filter by change time, within the
        share: each practice-wide one whole (once `whole_every`), deleting what it no longer
        lists; then each per-patient one in rotation, as many patients as the share allows."""
        run = SyncRun()
        try:
            await self._reread(run)
        except _Paused as stop:
            run.stopped(stop)
        return run

    async def _reread(self, run: SyncRun) -> None:
        # Practice lists first (the rotation goes over the patients the vendor lists now), the
        # longest unread first, so a share too small for all of them still gets round them;
        # the lists joins look up before the listings joined with them.
        read: set[str] = set()
        seen: dict[str, set[str]] = {}
        whole = [x for x in self.listings if not x.since and not x.patient_param]
        marks = {x.key: await self._watermark(x) for x in whole}
        whole.sort(key=lambda x: (bool(x.joins), marks[x.key].synced_through or _NEVER))
        for listing in whole:
            listed = await self._reread_whole(listing, run)
            if listed is None:
                continue
            read.add(listing.key)
            seen.setdefault(listing.endpoint, set()).update(listed)
            if all(x.key in read for x in self.listings if x.endpoint == listing.endpoint):
                held = await anyio.to_thread.run_sync(
                    self.store.ids, self.connection, listing.endpoint
                )
                run.deleted += await self._delete(listing.endpoint, held - seen[listing.endpoint])
        for listing in self._rotated():
            await self._rotate(listing, run)

    async def _reread_whole(self, listing: SyncListing, run: SyncRun) -> set[str] | None:
        """The ids a backfilled listing lists now, read whole and kept, when its last whole
        read is `whole_every` old; None when it is not due."""
        mark = await self._watermark(listing)
        if not mark.complete:
            return None
        started = self.clock.now()
        if mark.synced_through is not None and started - mark.synced_through < self.whole_every:
            return None
        listed, mark = await self._read_whole(listing, mark, run)
        await self._save(replace(mark, synced_through=started))
        return listed

    def _rotated(self) -> list[SyncListing]:
        """Per endpoint the vendor lists only patient by patient and cannot filter by change
        time, the listing whose watermark keeps the rotation (a re-list reads them all)."""
        found: dict[str, SyncListing] = {}
        for listing in self.listings:
            same = [x for x in self.listings if x.endpoint == listing.endpoint]
            if all(x.patient_param and not x.since for x in same):
                found.setdefault(listing.endpoint, listing)
        return list(found.values())

    async def _rotate(self, listing: SyncListing, run: SyncRun) -> None:
        """Re-list the endpoint's patients in rotation until the share is spent (a pause) or
        every patient due is done; a finished cycle begins the next, which goes on in the same
        pass with its stalest patients but never reads a patient twice in one pass."""
        for x in self.listings:
            if x.endpoint == listing.endpoint and not (await self._watermark(x)).complete:
                return
        mark = await self._watermark(listing)
        rotation = _Rotation.of(mark.backfill_cursor, self.clock.now())
        read: set[str] = set()
        while True:
            due = await self._due(listing, rotation)
            if not due:
                if rotation.after is None:
                    return  # a cycle just begun with no patient due: all were just read
                # Every patient was re-listed since the cycle began: so is every change.
                through = max(filter(None, (mark.synced_through, rotation.cycle)))
                rotation = _Rotation(self.clock.now())
                mark = replace(mark, synced_through=through, backfill_cursor=rotation.cursor())
                await self._save(mark)
                continue
            for last_read, patient in due:
                if patient in read:
                    return
                if self.share.left <= self.hint_reserve:
                    raise _Paused(
                        "the sync's share of this hour's vendor calls is spent "
                        "(what is left is kept for hinted refreshes)",
                        share_spent=True,
                    )
                spent = run.calls
                try:
                    await self._refresh(_HintedRead(listing.endpoint, True, patient), run)
                    rotation = replace(rotation, after=(last_read, patient))
                    read.add(patient)
                finally:
                    mark = replace(
                        mark,
                        backfill_cursor=rotation.cursor(),
                        calls_spent=mark.calls_spent + run.calls - spent,
                    )
                    await self._save(mark)

    async def _due(self, listing: SyncListing, rotation: _Rotation) -> list[tuple[datetime, str]]:
        """The mirrored patients the cycle has yet to re-list, stalest first (when each one's
        records were last fetched; one with none kept, first), as (last read, patient)."""

        def due() -> list[tuple[datetime, str]]:
            patients = self.store.ids(self.connection, listing.patient_endpoint)
            last_read = self.store.fetched_by_patient(self.connection, listing.endpoint)
            order = sorted((last_read.get(p, _NEVER), p) for p in patients)
            return [(at, p) for at, p in order if rotation.due(at, p)]

        return await anyio.to_thread.run_sync(due)

    # -- reconcile ------------------------------------------------------------------------------

    async def reconcile(self) -> SyncRun:
        """Re-read every backfilled listing whole; keep what it lists, delete what it no longer
        does. A round of reconcile may take several passes (each stops when the share is
        spent): a pass goes on with the first listing the round has not read whole, and an
        endpoint deletes once every listing of it was read whole in the round (a partial read,
        or an unfinished backfill, proves nothing about the records not read). The round lives
        in the process; a restart begins a new one."""
        run = SyncRun()
        try:
            for listing in self.listings:
                if listing.key in self._round_read:
                    continue
                mark = await self._watermark(listing)
                if not mark.complete:
                    continue
                started = self.clock.now()
                seen, mark = await self._read_whole(listing, mark, run)
                # Read whole from `started` on: every change before it is held.
                await self._save(replace(mark, synced_through=started))
                self._round_read.add(listing.key)
                self._round_seen.setdefault(listing.endpoint, set()).update(seen)
                run.deleted += await self._delete_unlisted(listing.endpoint)
        except _Paused as stop:
            run.stopped(stop)
            return run
        self._round_read.clear()
        self._round_seen.clear()
        return run

    async def _read_whole(
        self, listing: SyncListing, mark: Watermark, run: SyncRun
    ) -> tuple[set[str], Watermark]:
        """Every record the listing lists now (for each mirrored patient, if the vendor lists
        it per patient), kept; the ids it listed, and its watermark with the calls charged."""
        seen: set[str] = set()
        for patient, url in await self._full_reads(listing):
            position = 0
            while url is not None:
                page, calls = await self._fetch(url, listing, run)
                rows = await self._rows(listing, page.results, patient, position)
                seen.update(row.vendor_id for row in rows)
                run.written += await self._write(listing, rows)
                mark = await self._charge(mark, calls)
                position += len(rows)
                url = page.next_url
        return seen, mark

    async def _delete_unlisted(self, endpoint: str) -> int:
        """Once the round has read every listing of `endpoint`: delete what none listed."""
        if any(x.key not in self._round_read for x in self.listings if x.endpoint == endpoint):
            return 0
        held = await anyio.to_thread.run_sync(self.store.ids, self.connection, endpoint)
        return await self._delete(endpoint, held - self._round_seen[endpoint])

    async def _full_reads(self, listing: SyncListing) -> list[tuple[str | None, str | None]]:
        """The first page of each full read of a listing: one, or one per mirrored patient."""
        if not listing.patient_param:
            return [(None, self.client.list_url(listing.endpoint, dict(listing.params)))]
        patients = await anyio.to_thread.run_sync(
            self.store.ids, self.connection, listing.patient_endpoint
        )
        return [
            (
                p,
                self.client.list_url(
                    listing.endpoint, {**listing.params, listing.patient_param: p}
                ),
            )
            for p in sorted(patients)
        ]

    # -- webhook hints ------------------------------------------------------------------------

    async def refresh_hinted(self, batch: int = 100) -> SyncRun:
        """Refresh the records the vendor's webhooks named, `batch` hints at a time. A hint is
        only a hint: the record is read again from the vendor, never taken from the event. A
        record of a practice-wide listing is read by id (gone at the vendor: deleted here); a
        record the vendor lists only per patient is refreshed by listing that patient's
        records again (those it no longer lists are deleted), once per patient however many
        of its records the batch names. A hint on an endpoint the mirror does not keep that
        names a patient re-lists that patient's per-patient listings (a check-in may open a
        visit); one naming no patient is dropped: poll and reconcile cover it. When the share
        is spent, the hints not yet refreshed are put back for the next pass."""
        run = SyncRun()
        try:
            while True:
                taken = await anyio.to_thread.run_sync(
                    self.store.take_hints, self.connection, batch
                )
                if not taken:
                    break
                pending = deque(self._hinted_reads(taken))
                try:
                    while pending:
                        await self._refresh(pending[0][0], run)
                        pending.popleft()
                except _Paused:
                    untaken = list(dict.fromkeys(hint for _, hints in pending for hint in hints))
                    await anyio.to_thread.run_sync(
                        self.store.add_hints,
                        self.connection,
                        [(h.endpoint, h.vendor_id, h.patient_id, h.event) for h in untaken],
                    )
                    raise
        except _Paused as stop:
            run.stopped(stop)
        return run

    def _hinted_reads(self, hints: list[Hint]) -> list[tuple[_HintedRead, list[Hint]]]:
        """The batch's reads, each once, with the hints it answers."""
        reads: dict[_HintedRead, list[Hint]] = {}
        per_patient = list(dict.fromkeys(x.endpoint for x in self.listings if x.patient_param))
        for hint in hints:
            listings = [x for x in self.listings if x.endpoint == hint.endpoint]
            if any(not x.patient_param for x in listings):
                found = [_HintedRead(hint.endpoint, by_patient=False, key=hint.vendor_id)]
            elif hint.patient_id is None:
                continue
            elif listings:
                found = [_HintedRead(hint.endpoint, by_patient=True, key=hint.patient_id)]
            else:
                # A change to the patient's chart the mirror keeps no listing of (a visit's
                # appointment checked in): what it keeps per patient may follow from it.
                found = [_HintedRead(e, by_patient=True, key=hint.patient_id) for e in per_patient]
            for read in found:
                reads.setdefault(read, []).append(hint)
        return list(reads.items())

    async def _refresh(self, read: _HintedRead, run: SyncRun) -> None:
        endpoint, key = read.endpoint, read.key
        if not read.by_patient:
            listing = next(
                x for x in self.listings if x.endpoint == endpoint and not x.patient_param
            )
            await self._refresh_record(listing, key, run)
            return
        seen: set[str] = set()
        for listing in self.listings:
            if listing.endpoint != endpoint:
                continue
            url: str | None = self.client.list_url(
                endpoint, {**listing.params, listing.patient_param: key}
            )
            position = 0
            while url is not None:
                page, _calls = await self._fetch(url, listing, run)
                rows = await self._rows(listing, page.results, key, position)
                seen.update(row.vendor_id for row in rows)
                run.written += await self._write(listing, rows)
                position += len(rows)
                url = page.next_url
        held = await anyio.to_thread.run_sync(
            self.store.for_patient, self.connection, endpoint, key
        )
        run.deleted += await self._delete(endpoint, {r.vendor_id for r in held} - seen)

    async def _refresh_record(self, listing: SyncListing, vendor_id: str, run: SyncRun) -> None:
        """One record read by id, with the listing parameters a read by id keeps (detail)."""
        if self.share.left < 1:
            raise _Paused("the sync's share of this hour's vendor calls is spent", share_spent=True)
        params = self.client.wire.for_record(listing.params)
        # What a live read kept may be older than the change the hint announced.
        self.client.cache.forget(self.client.record_url(listing.endpoint, vendor_id, params))
        with metered() as meter:
            try:
                record = await self.client.get_record(
                    listing.endpoint, vendor_id, params, reason="mirror sync"
                )
            except FacadeError as exc:
                self._count(meter.count, listing, run)
                raise _Paused(f"{listing.endpoint}: {type(exc).__name__}") from exc
        self._count(meter.count, listing, run)
        if record is None:
            run.deleted += await self._delete(listing.endpoint, {vendor_id})
            return
        run.written += await self._put(listing, [record], None, 0)

    async def _delete(self, endpoint: str, vendor_ids: set[str]) -> int:
        if not vendor_ids:
            return 0
        deleted = await anyio.to_thread.run_sync(
            self.store.delete, self.connection, endpoint, sorted(vendor_ids)
        )
        self._lookups.changed(endpoint)
        return deleted

    # -- one call, one write --------------------------------------------------------------------

    async def _fetch(self, url: str, listing: SyncListing, run: SyncRun) -> tuple[VendorPage, int]:
        """One page, if the share has a call left; its calls (retries included) are counted."""
        if self.share.left < 1:
            raise _Paused("the sync's share of this hour's vendor calls is spent", share_spent=True)
        # What a live read kept may be minutes old, and the store would date it now.
        self.client.cache.forget(url)
        with metered() as meter:
            try:
                page = await self.client.fetch_page(
                    url, reason="mirror sync", max_wait=self.max_wait
                )
            except UpstreamNotFound:
                if not listing.patient_param:
                    self._count(meter.count, listing, run)
                    raise _Paused(f"{listing.endpoint}: UpstreamNotFound") from None
                # The vendor no longer has the patient: it lists nothing of theirs.
                page = VendorPage(url=url, results=[], next_url=None)
            except FacadeError as exc:
                self._count(meter.count, listing, run)
                raise _Paused(f"{listing.endpoint}: {type(exc).__name__}") from exc
        self._count(meter.count, listing, run)
        return page, meter.count

    def _count(self, calls: int, listing: SyncListing, run: SyncRun) -> None:
        self.share.took(calls)
        run.calls += calls
        run.calls_by_endpoint[listing.endpoint] = (
            run.calls_by_endpoint.get(listing.endpoint, 0) + calls
        )

    async def _put(
        self, listing: SyncListing, records: list[Record], patient: str | None, position: int
    ) -> int:
        return await self._write(listing, await self._rows(listing, records, patient, position))

    async def _rows(
        self, listing: SyncListing, records: list[Record], patient: str | None, position: int
    ) -> list[VendorRecord]:
        """The records as the store keeps them; `position` is the first one's place in the
        whole listing (the key of a record the vendor gives no id, such as a singleton)."""

        def rows() -> list[VendorRecord]:
            kept = []
            for index, record in enumerate(records):
                key = listing.patient_of(record, patient)
                changed = listing.changed_at(record, self.ctx)
                if (key is None or changed is None) and listing.joins:
                    # The joined record names what the raw one does not (a note's change
                    # time is its visit's, a lab result's patient its order's).
                    joined_key, changed = listing.joined(record, self._lookups, self.ctx)
                    key = key or joined_key
                kept.append(
                    VendorRecord(vendor_key(record, position + index), key, changed, record)
                )
            return kept

        return await anyio.to_thread.run_sync(rows)

    async def _write(self, listing: SyncListing, rows: list[VendorRecord]) -> int:
        if not rows:
            return 0
        fetched = self.clock.now()

        def write() -> int:
            self._lookups.changed(listing.endpoint)
            return self.store.put_many(self.connection, listing.endpoint, rows, fetched_at=fetched)

        return await anyio.to_thread.run_sync(write)

    async def _charge(self, mark: Watermark, calls: int) -> Watermark:
        """The listing's watermark with a page's calls counted, saved (a pause loses none)."""
        charged = replace(mark, calls_spent=mark.calls_spent + calls)
        await self._save(charged)
        return charged

    async def _watermark(self, listing: SyncListing) -> Watermark:
        found = await anyio.to_thread.run_sync(
            self.store.watermark, self.connection, listing.endpoint, listing.key
        )
        return found or Watermark(self.connection, listing.endpoint, listing.key)

    async def _save(self, mark: Watermark) -> None:
        await anyio.to_thread.run_sync(self.store.save_watermark, mark)

    def _now(self) -> str:
        return self.clock.now().isoformat()


def vendor_key(record: Record, position: int) -> str:
    """A record's key in the store: its vendor id, or for a record the vendor gives none (a
    practice's one account record), its place in the listing."""
    found = record.get("id")
    return str(found) if found not in (None, "") else f"#{position}"


class MirrorLookups:
    """The practice lists a join looks up (LookupTables), read from the mirror: a list name
    is its endpoint (a listing of it holds every record). `find` indexes an endpoint's
    records by the field asked, once, until the sync writes that endpoint again."""

    def __init__(self, store: MirrorStore, connection: str):
        self._store = store
        self._connection = connection
        self._indexes: dict[tuple[str, str], dict[str, list[Record]]] = {}

    def find(self, name: str, field: str, value: object) -> list[Record]:
        endpoint = parse_list_name(name)[0]
        index = self._indexes.get((endpoint, field))
        if index is None:
            index = {}
            for stored in self._store.scan(self._connection, endpoint):
                index.setdefault(str(stored.body.get(field)), []).append(stored.body)
            self._indexes[(endpoint, field)] = index
        return index.get(str(value), [])

    def one(self, name: str, record_id: object) -> Record | None:
        stored = self._store.get(self._connection, parse_list_name(name)[0], str(record_id))
        return None if stored is None else stored.body

    def changed(self, endpoint: str) -> None:
        """The sync wrote or deleted records of `endpoint`: its indexes are stale."""
        for key in [k for k in self._indexes if k[0] == endpoint]:
            del self._indexes[key]
