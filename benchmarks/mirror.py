"""The change-capture mirror at a practice's scale: what it serves, how fresh, what it costs.

A vendor sandbox of `--patients` (1,000) patients with its real quota (`--hourly-limit`, 500
calls an hour, enforced by the sandbox and by facade), facade with FACADE_MIRROR=on and the
sync's default share (half of the quota), and the vendor's change generator making
`--changes-per-hour` changes. Everything runs in one process on a simulated clock: the
scheduler's passes, the generator's changes and the vendor's webhook deliveries happen at
their simulated moments (a vendor call takes no simulated time), while the serving figures
are wall-clock time.

- (a) full-chart loads per hour: every US Core SHALL search for a patient (benchmarks/
  full_chart.py's list), served from the mirror (vendor calls counted: none) and by facade
  without the mirror over the same sandbox (today's facade: its page cache shared within the
  chart). Without the mirror the quota is the limit (calls a chart → charts an hour); with it
  the CPU is (one process, charts one after another).
- (b) staleness: for each change the generator makes in the first `--hours`, the simulated
  time until the mirror holds it (a created or modified record fetched after the change, a
  deleted one gone): once with the vendor's webhooks delivered to facade's receiver, once
  with polling (and reconcile) alone; p50/p95/max, by whether the vendor announced it.
- (c) the sync's vendor calls per hour over those hours, by pass, against the records changed.
- (d) a 100-Patient search page served from the mirror (its opened bodies kept in memory, and
  cold: every body decrypted and parsed again) against the same page rendered from memory
  (facade without the mirror, its vendor page cache warm: 0 calls on both sides), p50 of the
  per-round difference; and a full system $export from the mirror, resources/s.

Measured and printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks.full_chart import chart_by_profile, shall_searches
from benchmarks.sandwich import FACADE_BASE, FHIR_BASE, SEED, sandbox_patient_ids
from benchmarks.stats import machine, median, percentile
from facade.app import create_app
from facade.auth.operator import Operator
from facade.clock import FakeClock
from facade.mirror.runtime import Mirror
from facade.mirror.scheduler import Step
from facade.runtime import Runtime, build_runtime
from facade.sandbox.changes import Change
from facade.settings import Settings
from facade.vendors import DEFAULT_VENDOR, vendor_names

#: The quota DrChrono gives an application (calls an hour).
HOURLY_LIMIT = 500
#: A day after the generated datasets' reference day: no generated record is stamped later.
START = datetime(2026, 6, 3, 12, tzinfo=UTC)
SECRET = "benchmark-webhook-secret-0123456789"
CLIENT_ID = "benchmarks"
STALENESS_TARGET_SECONDS = 60.0
ADDED_TARGET_SECONDS = 0.005
EXPORT_TARGET_PER_SECOND = 30_000
CHART_LOADS_TARGET = 10_000
#: The URL a page-latency pair asks both sides.
PAGE_URL = "/fhir/Patient?_count=100"


def vendor_sandbox(vendor_name: str, patients: int, clock: FakeClock, hourly: int) -> Any:
    """The vendor's generated sandbox on the simulated clock, with its quota at `hourly`."""
    if vendor_name == "drchrono":
        from facade.upstream.drchrono.sandbox.generator import generate
        from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState

        limits = SandboxLimits(hourly_limit=hourly, burst_per_second=None)
        return SandboxState.with_default_app(
            generate(patients=patients, seed=SEED), seed=SEED, limits=limits, clock=clock.now
        )
    from facade.upstream.carecloud.sandbox.generator import generate as carecloud
    from facade.upstream.carecloud.sandbox.state import SandboxState as CareCloudState

    return CareCloudState.create(
        carecloud(patients, SEED), seed=SEED, clock=clock.now, hourly_budget=hourly
    )


def change_generator(vendor_name: str, state: Any, per_hour: float) -> Any:
    if vendor_name == "drchrono":
        from facade.upstream.drchrono.sandbox.changes import ChangeGenerator

        return ChangeGenerator(state, changes_per_hour=per_hour, seed=SEED)
    from facade.upstream.carecloud.sandbox.changes import ChangeGenerator as CareCloudChanges

    return CareCloudChanges(state, per_hour, seed=SEED)


async def subscribe(vendor_name: str, state: Any, transport: httpx.AsyncBaseTransport) -> None:
    """Point the vendor's webhooks at facade's receiver (DrChrono verifies the callback)."""
    url = f"{FACADE_BASE}/webhooks/{vendor_name}"
    if vendor_name == "drchrono":
        from facade.upstream.drchrono.sandbox.state import DEFAULT_CLIENT_ID
        from facade.upstream.drchrono.sandbox.webhooks import EVENTS

        state.webhooks.use_transport(transport)
        hook = await state.webhooks.configure(DEFAULT_CLIENT_ID, url, SECRET, frozenset(EVENTS))
        if not hook.verified:
            raise RuntimeError("DrChrono's sandbox could not verify facade's webhook callback")
        return
    from facade.upstream.carecloud.sandbox.webhooks import EVENTS as CARECLOUD_EVENTS

    state.webhook_transport = transport
    state.subscribe(url, SECRET, list(CARECLOUD_EVENTS))


async def deliver_due(vendor_name: str, state: Any) -> None:
    """DrChrono queues its deliveries (and redeliveries); CareCloud posts as it changes."""
    if vendor_name == "drchrono":
        await state.webhooks.deliver_due()


@dataclass
class Deployment:
    """facade over the sandbox, on the simulated clock, with a FHIR client."""

    runtime: Runtime
    app: Any
    fhir: httpx.AsyncClient
    operator: Operator

    def bearer(self, scope: str) -> dict[str, str]:
        """A token valid now on the simulated clock (a backend token lives 5 minutes)."""
        token = self.operator.mint_token(client_id=CLIENT_ID, scope=scope)
        return {"Authorization": f"Bearer {token}"}

    @property
    def mirror(self) -> Mirror:
        assert self.runtime.mirror is not None, "the mirror is off"
        return self.runtime.mirror


@asynccontextmanager
async def deployment(
    vendor_name: str, state: Any, clock: FakeClock, *, mirror: bool, webhooks: bool
) -> AsyncIterator[Deployment]:
    with tempfile.TemporaryDirectory(prefix="facade-bench-mirror-") as data_dir:
        settings = Settings(
            vendor=vendor_name,
            data_dir=Path(data_dir),
            public_base_url=FHIR_BASE,
            upstream_hourly_limit=HOURLY_LIMIT,
            upstream_burst_per_second=0,
            client_requests_per_minute=0,
            mirror=mirror,
            webhook_secret=SECRET if webhooks else "",
        )
        runtime = await build_runtime(settings, sandbox=state, clock=clock)
        operator = Operator(runtime.database, runtime.box, clock, runtime.tokens)
        operator.add_client(
            name="benchmarks", redirect_uris=[], jwks='{"keys": []}', client_id=CLIENT_ID
        )
        app = create_app(settings, runtime)
        fhir = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE)
        try:
            yield Deployment(runtime, app, fhir, operator)
        finally:
            await fhir.aclose()
            await runtime.aclose()


def sandbox_calls(state: Any) -> int:
    return len(state.api_requests())


# -- backfill ------------------------------------------------------------------------------


@dataclass
class Backfill:
    calls: int
    simulated_hours: float
    seconds: float
    records: int


async def backfill(dep: Deployment, state: Any, clock: FakeClock) -> Backfill:
    """The scheduler's rounds, the clock moved by each round's wait, until the mirror holds
    the vendor's whole plan."""
    scheduler = dep.mirror.scheduler
    started, at, before = time.perf_counter(), clock.now(), sandbox_calls(state)
    for _ in range(100_000):
        if scheduler.backfilled:
            break
        step = await scheduler.step()
        clock.advance(step.wait)
    else:
        raise RuntimeError("the backfill did not finish")
    progress = dep.mirror.progress()
    return Backfill(
        calls=sandbox_calls(state) - before,
        simulated_hours=(clock.now() - at).total_seconds() / 3600,
        seconds=time.perf_counter() - started,
        records=sum(e.records for e in progress.endpoints),
    )


# -- (a) full charts -----------------------------------------------------------------------


@dataclass
class ChartLoads:
    searches: int
    mirror_calls: int
    mirror_seconds: list[float]
    live_calls: list[int]
    failed: list[str] = field(default_factory=list)

    @property
    def mirror_per_hour(self) -> float:
        return 3600 / median(self.mirror_seconds)

    @property
    def live_calls_per_chart(self) -> float:
        return median([float(c) for c in self.live_calls])

    @property
    def live_per_hour(self) -> float:
        return HOURLY_LIMIT / self.live_calls_per_chart


async def _load_chart(dep: Deployment, queries: list[str], token: dict[str, str]) -> list[int]:
    """One chart load (each search's first page); each search's vendor calls."""
    calls = []
    for query in queries:
        response = await dep.fhir.get(f"/fhir/{query}", headers=token)
        if response.status_code != 200:
            raise RuntimeError(f"{query.split('?')[0]} answered {response.status_code}")
        calls.append(int(response.headers.get("x-upstream-calls", "0")))
    return calls


async def chart_loads(
    mirrored: Deployment, live: Deployment, state: Any, vendor_name: str, charts: int, reps: int
) -> ChartLoads:
    registry = mirrored.runtime.service.registry
    token = mirrored.bearer("user/*.rs")
    live_token = live.bearer("user/*.rs")
    loads = ChartLoads(searches=0, mirror_calls=0, mirror_seconds=[], live_calls=[])
    for patient_id in sandbox_patient_ids(vendor_name, state)[:charts]:
        # The search values come from the patient's own chart, read from the mirror.
        mirrored.fhir.headers.update(token)
        by_profile = await chart_by_profile(mirrored.fhir, registry, patient_id)
        queries = [q for _, _, q in shall_searches(registry, patient_id, by_profile)]
        loads.searches = max(loads.searches, len(queries))
        await _load_chart(mirrored, queries, token)  # warm-up
        for _ in range(reps):
            started = time.perf_counter()
            loads.mirror_calls += sum(await _load_chart(mirrored, queries, token))
            loads.mirror_seconds.append(time.perf_counter() - started)
        live.runtime.client.cache.clear()  # a chart nobody loaded in the page cache's TTL
        before = sandbox_calls(state)
        try:
            await _load_chart(live, queries, live_token)
        except RuntimeError as failed:
            loads.failed.append(str(failed))
            continue
        loads.live_calls.append(sandbox_calls(state) - before)
    return loads


# -- (d) a page and an export --------------------------------------------------------------


@dataclass
class PageLatency:
    #: The mirror's answer with the page's opened bodies kept in memory (warm) and with
    #: every body decrypted and parsed again (cold), and facade's from memory.
    mirror: list[float]
    cold: list[float]
    memory: list[float]
    #: Per round, mirror − memory and cold − memory.
    added: list[float]
    cold_added: list[float]
    same_page: bool
    mirror_calls: int
    memory_calls: int
    age_header: str | None


async def page_latency(
    mirrored: Deployment, live: Deployment, iterations: int, warmup: int
) -> PageLatency:
    token = mirrored.bearer("user/*.rs")
    live_token = live.bearer("user/*.rs")
    first = await live.fhir.get(PAGE_URL, headers=live_token)  # fills the vendor page cache
    ours = await mirrored.fhir.get(PAGE_URL, headers=token)
    ids = [[e["resource"]["id"] for e in r.json().get("entry", [])] for r in (first, ours)]
    result = PageLatency([], [], [], [], [], ids[0] == ids[1], 0, 0, ours.headers.get("age"))
    store = mirrored.mirror.store
    sides = [("mirror", mirrored, token), ("cold", mirrored, token), ("memory", live, live_token)]
    for i in range(warmup + iterations):
        timed: dict[str, float] = {}
        for name, dep, bearer in sides[i % 3 :] + sides[: i % 3]:  # each goes first in turn
            if name == "cold":
                store.forget_opened()
            started = time.perf_counter()
            response = await dep.fhir.get(PAGE_URL, headers=bearer)
            timed[name] = time.perf_counter() - started
            if i >= warmup:
                calls = int(response.headers.get("x-upstream-calls", "0"))
                if name == "memory":
                    result.memory_calls += calls
                else:
                    result.mirror_calls += calls
        if i >= warmup:
            result.mirror.append(timed["mirror"])
            result.cold.append(timed["cold"])
            result.memory.append(timed["memory"])
            result.added.append(timed["mirror"] - timed["memory"])
            result.cold_added.append(timed["cold"] - timed["memory"])
    return result


@dataclass
class ExportFromMirror:
    resources: int
    seconds: float
    vendor_calls: int
    errors: int


async def export_from_mirror(dep: Deployment, state: Any) -> ExportFromMirror:
    exports = dep.runtime.exports
    assert exports is not None
    headers = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
    await exports.worker.start()
    before = sandbox_calls(state)
    try:
        started = time.perf_counter()
        kicked = await dep.fhir.get(
            "/fhir/$export", headers={**headers, **dep.bearer("system/*.rs")}
        )
        if kicked.status_code != 202:
            raise RuntimeError(f"$export answered {kicked.status_code}")
        job_id = kicked.headers["content-location"].rsplit("/", 1)[1]
        await exports.worker.wait(job_id)
        seconds = time.perf_counter() - started
        status = await dep.fhir.get(
            f"/fhir/$export-status/{job_id}", headers={**headers, **dep.bearer("system/*.rs")}
        )
    finally:
        await exports.worker.stop()
    if status.status_code != 200:
        raise RuntimeError(f"$export-status answered {status.status_code}")
    manifest = status.json()
    return ExportFromMirror(
        resources=sum(item["count"] for item in manifest["output"]),
        seconds=seconds,
        vendor_calls=sandbox_calls(state) - before,
        errors=len(manifest.get("error", [])),
    )


# -- (b), (c) the mirror following the vendor ----------------------------------------------


@dataclass
class Followed:
    """What one simulated stretch of the vendor changing showed."""

    webhooks: bool
    hours: float
    changes: list[Change]
    #: Per change made in the measured hours: seconds until the mirror held it (None: not
    #: within the observed time).
    staleness: list[float | None]
    #: The sync's vendor calls over the whole observed time, by pass, and in all.
    calls_by_pass: Counter[str]
    vendor_calls: int
    #: Records the generator changed over the whole observed time (it goes on after the
    #: measured hours, so the sync works at the same rate while the last changes settle).
    changed_records: int
    observed_hours: float
    not_mirrored: int
    wall_seconds: float


def _held(dep: Deployment, change: Change, gone: dict[tuple[str, str], datetime]) -> bool:
    """Whether the mirror holds the change: a record fetched after it, or none if deleted
    (by this change, or later with its patient: `gone` has when each deleted record or
    patient went)."""
    mirror = dep.mirror
    record = mirror.store.get(mirror.connection, change.endpoint, change.record_id)
    if change.action == "delete" and not change.items:
        return record is None
    if record is None:
        keys = [(change.endpoint, change.record_id)]
        if change.patient_id is not None:
            keys.append(("patients", change.patient_id))
        went = [gone.get(key) for key in keys]
        return any(moment is not None and moment > change.at for moment in went)
    return record.fetched_at >= change.at


async def follow(
    dep: Deployment,
    state: Any,
    clock: FakeClock,
    vendor_name: str,
    *,
    per_hour: float,
    hours: float,
    observe_hours: float,
    webhooks: bool,
) -> Followed:
    """Run the generator, the vendor's deliveries and the scheduler on the simulated clock
    for `observe_hours`; measure the changes made in the first `hours`."""
    scheduler = dep.mirror.scheduler
    endpoints = {listing.endpoint for listing in await dep.mirror.listings()}
    changes = change_generator(vendor_name, state, per_hour)
    start = clock.now()
    changes_end = start + timedelta(hours=hours)
    end = start + timedelta(hours=observe_hours)
    pending: list[tuple[int, Change]] = []
    staleness: dict[int, float] = {}
    measured: list[Change] = []
    not_mirrored = 0
    calls_by_pass: Counter[str] = Counter()
    calls_before = sandbox_calls(state)
    #: When each record or patient the vendor deleted went (the generator's whole log).
    gone: dict[tuple[str, str], datetime] = {}
    next_step = clock.now()
    # The generator's steps are evenly spaced; each is made at a random moment of its slot
    # instead, so changes fall anywhere between the scheduler's rounds, as a practice's do.
    spread = random.Random(SEED)
    planned: tuple[datetime, datetime] | None = None
    wall = time.perf_counter()
    while clock.now() < end and (clock.now() < changes_end or pending):
        due = changes.schedule.next_at
        if due is not None and (planned is None or planned[0] != due):
            slot = 3600 / per_hour
            planned = (due, due + timedelta(seconds=spread.uniform(0, slot)))
        change_at = planned[1] if due is not None and planned is not None else None
        moment = min(next_step, change_at) if change_at is not None else next_step
        if moment > clock.now():
            clock.advance((moment - clock.now()).total_seconds())
        now = clock.now()
        made = await changes.run_until(now) if change_at is not None and change_at <= now else []
        for change in made:
            if change.action == "delete" and not change.items:
                gone[(change.endpoint, change.record_id)] = change.at
            if change.at >= changes_end:
                continue
            if change.endpoint not in endpoints:
                not_mirrored += 1
                continue
            measured.append(change)
            pending.append((len(measured) - 1, change))
        await deliver_due(vendor_name, state)
        if next_step > now:
            continue
        step: Step = await scheduler.step()
        next_step = now + timedelta(seconds=max(step.wait, 0.5))
        for done in step.passes:
            calls_by_pass[done.name] += done.calls
        if any(p.calls or p.written or p.deleted for p in step.passes):
            pending = _settle(dep, pending, staleness, now, gone)
    return Followed(
        webhooks=webhooks,
        hours=hours,
        changes=measured,
        staleness=[staleness.get(i) for i in range(len(measured))],
        calls_by_pass=calls_by_pass,
        vendor_calls=sandbox_calls(state) - calls_before,
        changed_records=len({(c.endpoint, c.record_id) for c in changes.log}),
        observed_hours=(clock.now() - start).total_seconds() / 3600,
        not_mirrored=not_mirrored,
        wall_seconds=time.perf_counter() - wall,
    )


def _settle(
    dep: Deployment,
    pending: list[tuple[int, Change]],
    staleness: dict[int, float],
    now: datetime,
    gone: dict[tuple[str, str], datetime],
) -> list[tuple[int, Change]]:
    """Note each pending change the mirror now holds; a record's earlier changes are held
    once a later one is (a record created and deleted before any sync saw it, say)."""
    held_from: dict[tuple[str, str], datetime] = {}
    for _, change in reversed(pending):
        key = (change.endpoint, change.record_id)
        if key not in held_from and _held(dep, change, gone):
            held_from[key] = change.at
    left = []
    for index, change in pending:
        seen = held_from.get((change.endpoint, change.record_id))
        if seen is not None and change.at <= seen:
            staleness[index] = (now - change.at).total_seconds()
        else:
            left.append((index, change))
    return left


# -- the report ----------------------------------------------------------------------------


def _seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 120:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s"


def staleness_line(label: str, followed: Followed, keep: Any) -> str:
    chosen = [s for c, s in zip(followed.changes, followed.staleness, strict=True) if keep(c)]
    if not chosen:
        return f"  {label:34} none"
    held = [s for s in chosen if s is not None]
    missing = len(chosen) - len(held)
    if not held:
        return f"  {label:34} {len(chosen):>4} changes, none held within the observed time"
    # A change not held by the end counts as later than any that was (a lower bound).
    ranked = held + [float("inf")] * missing
    p50, p95 = percentile(ranked, 0.5), percentile(ranked, 0.95)
    show = [_seconds(x) if x != float("inf") else "> observed" for x in (p50, p95)]
    tail = f"; {missing} not held within {followed.observed_hours:.1f} h" if missing else ""
    return (
        f"  {label:34} {len(chosen):>4} changes  p50 {show[0]:>10}  p95 {show[1]:>10}  "
        f"max {_seconds(max(held)):>8}{tail}"
    )


def announced(change: Change) -> bool:
    return bool(change.events)


def print_followed(followed: Followed, out: Any) -> None:
    how = "webhooks, poll and reconcile" if followed.webhooks else "poll and reconcile alone"
    out(
        f"-- with {how}: {len(followed.changes)} changes to mirrored records in the first "
        f"{followed.hours:g} h ({followed.not_mirrored} more to records the mirror does not "
        f"keep); observed {followed.observed_hours:.1f} h, simulated in "
        f"{followed.wall_seconds:.0f} s"
    )
    out(staleness_line("every change", followed, lambda c: True))
    out(staleness_line("announced by the vendor", followed, announced))
    out(staleness_line("not announced", followed, lambda c: not announced(c)))
    out(staleness_line("creates and modifies", followed, lambda c: c.action != "delete"))
    out(staleness_line("deletes", followed, lambda c: c.action == "delete"))


def print_costs(followed: Followed, out: Any) -> None:
    hours = followed.observed_hours
    passes = ", ".join(
        f"{name} {calls / hours:.0f}" for name, calls in sorted(followed.calls_by_pass.items())
    )
    change_driven = followed.calls_by_pass["hinted"] + followed.calls_by_pass["poll"]
    how = "with webhooks" if followed.webhooks else "polling alone"
    out(
        f"  {how:14} {followed.vendor_calls / hours:6.0f} calls/h for "
        f"{followed.changed_records / hours:.0f} changed records/h over {hours:.1f} h "
        f"(by pass, calls/h: {passes}; hinted + poll: {change_driven / hours:.0f}/h)"
    )


@dataclass
class Served:
    """What serving from the backfilled mirror measured: (a) and (d)."""

    backfill: Backfill
    loads: ChartLoads
    page: PageLatency
    export: ExportFromMirror


@dataclass
class MirrorReport:
    served: Served
    #: With webhooks, then with polling alone.
    follows: list[Followed]


async def run(
    patients: int = 1000,
    *,
    vendor_name: str = DEFAULT_VENDOR,
    per_hour: float = 60.0,
    hours: float = 3.0,
    observe_hours: float = 14.0,
    charts: int = 3,
    reps: int = 5,
    iterations: int = 200,
    warmup: int = 20,
    out: Any = print,
) -> MirrorReport:
    out(
        f"== change-capture mirror: {patients} {vendor_name} patients, {HOURLY_LIMIT} vendor "
        f"calls an hour, {per_hour:g} changes an hour =="
    )
    out(machine())
    follows: list[Followed] = []
    served: Served | None = None
    for webhooks in (True, False):
        clock = FakeClock(START)
        state = vendor_sandbox(vendor_name, patients, clock, HOURLY_LIMIT)
        async with (
            deployment(vendor_name, state, clock, mirror=True, webhooks=webhooks) as mirrored,
            deployment(vendor_name, state, clock, mirror=False, webhooks=False) as live,
        ):
            if webhooks:
                await subscribe(vendor_name, state, httpx.ASGITransport(app=mirrored.app))
            filled = await backfill(mirrored, state, clock)
            share = mirrored.mirror.share.allowed
            if webhooks:
                out(
                    f"\nbackfill: {filled.records:,} records in {filled.calls} vendor calls, "
                    f"{filled.simulated_hours:.1f} simulated hours at the sync's share "
                    f"({share} of {HOURLY_LIMIT} calls an hour); {filled.seconds:.0f} s here"
                )
                served = await _serving(
                    filled,
                    mirrored,
                    live,
                    state,
                    vendor_name,
                    charts,
                    reps,
                    iterations,
                    warmup,
                    out,
                )
            clock.advance(3600)  # the measurements' live calls leave the quota window
            follows.append(
                await follow(
                    mirrored,
                    state,
                    clock,
                    vendor_name,
                    per_hour=per_hour,
                    hours=hours,
                    observe_hours=observe_hours,
                    webhooks=webhooks,
                )
            )
    out("\n(b) staleness: simulated time from a vendor change to the mirror holding it")
    for followed in follows:
        print_followed(followed, out)
    with_hooks = follows[0]
    p95 = _p95(
        [s for c, s in zip(with_hooks.changes, with_hooks.staleness, strict=True) if announced(c)]
    )
    out(
        f"(b) target with webhooks p95 ≤ {STALENESS_TARGET_SECONDS:.0f} s: announced changes "
        f"p95 {p95}; every change p95 {_p95(with_hooks.staleness)} (what the vendor does not "
        "announce waits for a poll, and a delete it does not announce for a reconcile round)"
    )
    out("\n(c) the sync's vendor calls per hour over the observed time, changes going on")
    for followed in follows:
        print_costs(followed, out)
    assert served is not None
    return MirrorReport(served, follows)


def _p95(values: Sequence[float | None]) -> str:
    if not values:
        return "n/a"
    ranked = [float("inf") if v is None else v for v in values]
    value = percentile(ranked, 0.95)
    return "> observed time" if value == float("inf") else _seconds(value)


async def _serving(
    filled: Backfill,
    mirrored: Deployment,
    live: Deployment,
    state: Any,
    vendor_name: str,
    charts: int,
    reps: int,
    iterations: int,
    warmup: int,
    out: Any,
) -> Served:
    loads = await chart_loads(mirrored, live, state, vendor_name, charts, reps)
    out(f"\n(a) full chart: {loads.searches} US Core SHALL searches, {charts} patients")
    out(
        f"  from the mirror: {loads.mirror_calls} vendor calls in {len(loads.mirror_seconds)} "
        f"loads; p50 {median(loads.mirror_seconds) * 1000:.1f} ms a chart → "
        f"{loads.mirror_per_hour:,.0f} charts/h in one process (the CPU is the limit)"
    )
    if loads.live_calls:
        out(
            f"  without the mirror: {loads.live_calls_per_chart:.0f} vendor calls a chart "
            f"({', '.join(map(str, loads.live_calls))}) → {loads.live_per_hour:.0f} charts/h "
            f"within {HOURLY_LIMIT} calls/h"
        )
        out(
            f"(a) target ≥ {CHART_LOADS_TARGET:,}/h with the mirror, a few dozen without: "
            f"measured {loads.mirror_per_hour:,.0f}/h with, {loads.live_per_hour:.0f}/h "
            f"without ({loads.mirror_per_hour / loads.live_per_hour:,.0f}×)"
        )
    for failed in loads.failed:
        out(f"  a live chart failed: {failed}")
    page = await page_latency(mirrored, live, iterations, warmup)
    added = median(page.added)
    out(f"\n(d) {PAGE_URL}: {iterations} rounds, each side first in turn")
    out(
        f"  from the mirror   p50 {median(page.mirror) * 1000:7.2f} ms  "
        f"p95 {percentile(page.mirror, 0.95) * 1000:7.2f} ms  "
        f"(the page's opened bodies kept; vendor calls: {page.mirror_calls}; "
        f"Age: {page.age_header})"
    )
    out(
        f"  mirror, cold      p50 {median(page.cold) * 1000:7.2f} ms  "
        f"p95 {percentile(page.cold, 0.95) * 1000:7.2f} ms  "
        "(every body decrypted and parsed again)"
    )
    out(
        f"  from memory       p50 {median(page.memory) * 1000:7.2f} ms  "
        f"p95 {percentile(page.memory, 0.95) * 1000:7.2f} ms  "
        f"(facade without the mirror, vendor pages cached; vendor calls: {page.memory_calls})"
    )
    out(f"  same 100 resources on both: {'yes' if page.same_page else 'NO'}")
    out(
        f"(d) target added p50 ≤ {ADDED_TARGET_SECONDS * 1000:.0f} ms: measured "
        f"{added * 1000:.2f} ms (p95 {percentile(page.added, 0.95) * 1000:.2f} ms); "
        f"cold {median(page.cold_added) * 1000:.2f} ms "
        f"(p95 {percentile(page.cold_added, 0.95) * 1000:.2f} ms)"
    )
    exported = await export_from_mirror(mirrored, state)
    rate = exported.resources / exported.seconds
    out(
        f"(d) system $export from the mirror: {exported.resources:,} resources in "
        f"{exported.seconds:.2f} s = {rate:,.0f}/s (target ≥ {EXPORT_TARGET_PER_SECOND:,}/s); "
        f"vendor calls {exported.vendor_calls}; error files {exported.errors}"
    )
    return Served(filled, loads, page, exported)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mirror", description=__doc__)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--vendor", choices=vendor_names(), default=DEFAULT_VENDOR)
    parser.add_argument("--changes-per-hour", type=float, default=60.0)
    parser.add_argument("--hours", type=float, default=3.0, help="hours of measured changes")
    parser.add_argument(
        "--observe-hours", type=float, default=14.0, help="simulated hours at most, in all"
    )
    parser.add_argument("--charts", type=int, default=3, help="patients whose chart is loaded")
    parser.add_argument("--reps", type=int, default=5, help="mirror loads of each chart")
    parser.add_argument("--iterations", type=int, default=200, help="page-latency pairs")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    asyncio.run(
        run(
            args.patients,
            vendor_name=args.vendor,
            per_hour=args.changes_per_hour,
            hours=args.hours,
            observe_hours=args.observe_hours,
            charts=args.charts,
            reps=args.reps,
            iterations=args.iterations,
            warmup=args.warmup,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
