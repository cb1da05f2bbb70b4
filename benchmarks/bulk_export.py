"""Bulk `$export`: (a) vendor calls of a full system export against the lower bound, (b) the
export's peak memory on a large practice, (c) end-to-end resources per second.

Everything runs in-process over the sandbox with the vendor quota lifted (benchmarks.sandwich):
kick-off through facade's HTTP routes with a backend token, the in-process worker, the
status manifest. (a) The lower bound, per listing the export made: ceil(records / the
endpoint's largest page), where records is what the vendor returned for it and the largest
page is the vendor contract's (250; 50 with verbose=true; 20 for clinical_notes, which the
reference documents as "the maximum page size is 20"), read from the sandbox that
implements that contract, not from facade's planner; plus one call per distinct lookup list that
is not itself one of the listings (lab order summaries, doctors).
The figure by the issue's general formula (250, or 50 verbose, for every endpoint) is printed
too. (b) The sandbox's generated dataset lives in
the same process, so it is measured apart: tracemalloc starts after the dataset (and facade's
runtime) exist, and ru_maxrss is read before and after the export. (c) Resources written
(Provenance included) over the wall time from kick-off to the completed manifest.

(a) for CareCloud: its floor is ceil(N / 50) patient-list pages + N encounter calls + one call
per practice list (authorization, providers, locations). CareCloud has no practice-wide
clinical listing: `GET /encounters` needs `patient_id`, and its answer nests the patient's
whole chart (problems, medications, allergies, vitals, immunizations, labs, notes), so no
export can read the chart in fewer than one call per patient; the patient list, 50 a page,
is the only way to learn the patients.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.sandwich import FACADE_BASE, FHIR_BASE, SEED, UNLIMITED_HOURLY, Sandwich, sandwich
from benchmarks.stats import machine
from facade.app import create_app
from facade.auth.operator import Operator
from facade.clock import Clock
from facade.runtime import build_runtime
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.endpoints import ENDPOINT_SPECS
from facade.upstream.drchrono.wire import WIRE

CALLS_TARGET_RATIO = 1.1
MEMORY_TARGET_MB = 300.0
RATE_TARGET_PER_SECOND = 5000.0
MEMORY_PATIENTS = 10_000
#: tracemalloc slows the export ~5×: its peak is taken on a smaller export.
TRACE_PATIENTS = 200
MB = 2**20
KICKOFF_HEADERS = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


@dataclass
class ListingCost:
    label: str
    records: int
    verbose: bool
    #: Pages at the endpoint's own largest page size (the vendor's contract).
    minimum: int
    #: Pages at the general 250 (50 verbose), ignoring endpoint-specific caps.
    general_minimum: int


@dataclass
class ExportRun:
    patients: int
    seconds: float
    resources: int
    by_type: dict[str, int]
    vendor_calls: int
    listings: list[ListingCost] = field(default_factory=list)
    lookup_calls: int = 0
    #: Memory, when measured: tracemalloc peak and the ru_maxrss growth, in bytes.
    traced_peak: int | None = None
    rss_before: int | None = None
    rss_after: int | None = None
    #: Current RSS (sampled every 20 ms) when the export started, and its peak during it.
    current_rss_start: int = 0
    current_rss_peak: int = 0

    @property
    def export_rss(self) -> int:
        return max(0, self.current_rss_peak - self.current_rss_start)

    @property
    def minimum_calls(self) -> int:
        return sum(x.minimum for x in self.listings) + self.lookup_calls

    @property
    def calls_ratio(self) -> float:
        return self.vendor_calls / max(self.minimum_calls, 1)

    @property
    def general_minimum_calls(self) -> int:
        return sum(x.general_minimum for x in self.listings) + self.lookup_calls

    @property
    def per_second(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


#: CareCloud's patient list holds 50 patients a page (a size CareCloud fixes).
CARECLOUD_PATIENT_PAGE = 50
#: The practice lists a CareCloud export reads whole, one call each.
CARECLOUD_PRACTICE_LISTS = ("authorization", "providers", "locations")


@dataclass
class PerPatientRun:
    """A CareCloud system export: its vendor calls by endpoint, against the floor."""

    patients: int
    resources: int
    calls: dict[str, int]

    @property
    def floor(self) -> int:
        """Patient pages + one encounters call per patient + each practice list once (see the
        module docstring for why no export can do with fewer)."""
        pages = math.ceil(self.patients / CARECLOUD_PATIENT_PAGE)
        return pages + self.patients + len(CARECLOUD_PRACTICE_LISTS)

    @property
    def vendor_calls(self) -> int:
        return sum(self.calls.values())


@dataclass
class BulkReport:
    calls: ExportRun
    memory: ExportRun
    traced: ExportRun
    per_patient: PerPatientRun


def _current_rss() -> int:
    """Resident set now, in bytes (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return _max_rss()
    return pages * resource.getpagesize()


class RssSampler:
    """Samples the current RSS on a thread while the export runs; keeps the peak."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.start_rss = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.start_rss = self.peak = _current_rss()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, _current_rss())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss())


def _max_rss() -> int:
    """The process's peak resident set so far, in bytes (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


async def _export(sw: Sandwich, patients: int, *, trace: bool) -> ExportRun:
    runtime = sw.runtime
    exports = runtime.exports
    assert exports is not None
    operator = Operator(runtime.database, runtime.box, Clock(), runtime.tokens)
    backend = operator.mint_token(client_id="benchmarks", scope="system/*.rs")
    headers = {**KICKOFF_HEADERS, "Authorization": f"Bearer {backend}"}
    await runtime.service.context()  # the practice context is once an hour, not the export's
    await exports.worker.start()
    runtime.client.cache.clear()  # the export pays for its own lookups
    sw.state.request_log.clear()
    gc.collect()
    rss_before = _max_rss()
    sampler = RssSampler()
    sampler.start()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    kicked = await sw.fhir.get("/fhir/$export", headers=headers)
    assert kicked.status_code == 202, kicked.text
    job_id = kicked.headers["content-location"].rsplit("/", 1)[1]
    await exports.worker.wait(job_id)
    status = await sw.fhir.get(f"/fhir/$export-status/{job_id}", headers=headers)
    seconds = time.perf_counter() - started
    traced_peak = None
    if trace:
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    rss_after = _max_rss()
    sampler.stop()
    assert status.status_code == 200, (status.status_code, status.text)
    manifest = status.json()
    by_type: dict[str, int] = {}
    for item in manifest["output"]:
        by_type[item["type"]] = by_type.get(item["type"], 0) + item["count"]
    run = ExportRun(
        patients=patients,
        seconds=seconds,
        resources=sum(by_type.values()),
        by_type=by_type,
        vendor_calls=len(sw.state.api_requests()),
        traced_peak=traced_peak,
        rss_before=rss_before,
        rss_after=rss_after,
        current_rss_start=sampler.start_rss,
        current_rss_peak=sampler.peak,
    )
    lookups: set[str] = set()
    for part in exports.store.parts(job_id):
        listing = json.loads(part.checkpoint)["listing"]
        if listing["mode"] == "skipped":
            continue
        lookups.update(listing["lookups"])
        if listing["mode"] == "lookup":
            lookups.add(listing["endpoint"])  # read whole, once, like the other lookups
            continue
        found = exports.store.statistic(listing["key"])
        records = found.records if found else 0
        verbose = bool(listing["detail"])
        spec = ENDPOINT_SPECS[listing["endpoint"]]
        largest = spec.page_size_bounds(sw.state.limits, verbose)[1]
        general = WIRE.largest(verbose)
        label = listing["endpoint"] + (" (verbose)" if verbose else "")
        minimum = max(1, math.ceil(records / largest))
        general_minimum = max(1, math.ceil(records / general))
        run.listings.append(ListingCost(label, records, verbose, minimum, general_minimum))
    # A lookup list that is also one of the export's listings is the same pages: counted once.
    listed = {x.label.split(" ")[0] for x in run.listings}
    run.lookup_calls = len({name.partition("?")[0] for name in lookups} - listed)
    await exports.worker.stop()
    return run


async def _measure_carecloud(patients: int) -> PerPatientRun:
    """A full system export over the CareCloud sandbox (quota lifted), its calls counted."""
    from facade.upstream.carecloud.sandbox.generator import generate
    from facade.upstream.carecloud.sandbox.state import SandboxState

    state = SandboxState.create(generate(patients, SEED), seed=SEED, hourly_budget=UNLIMITED_HOURLY)
    with tempfile.TemporaryDirectory(prefix="facade-bench-") as data_dir:
        settings = Settings(
            vendor="carecloud",
            data_dir=Path(data_dir),
            public_base_url=FHIR_BASE,
            upstream_hourly_limit=UNLIMITED_HOURLY,
            upstream_burst_per_second=0,
            client_requests_per_minute=0,
        )
        runtime = await build_runtime(settings, sandbox=state, clock=Clock())
        exports = runtime.exports
        assert exports is not None
        operator = Operator(runtime.database, runtime.box, Clock(), runtime.tokens)
        operator.add_client(
            name="benchmarks", redirect_uris=[], jwks='{"keys": []}', client_id="benchmarks"
        )
        backend = operator.mint_token(client_id="benchmarks", scope="system/*.rs")
        headers = {**KICKOFF_HEADERS, "Authorization": f"Bearer {backend}"}
        fhir = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, runtime)),
            base_url=FACADE_BASE,
        )
        await exports.worker.start()
        try:
            state.request_log.clear()  # the session's login is not the export's
            kicked = await fhir.get("/fhir/$export", headers=headers)
            assert kicked.status_code == 202, kicked.text
            job_id = kicked.headers["content-location"].rsplit("/", 1)[1]
            await exports.worker.wait(job_id)
            status = await fhir.get(f"/fhir/$export-status/{job_id}", headers=headers)
            assert status.status_code == 200, (status.status_code, status.text)
        finally:
            await exports.worker.stop()
            await fhir.aclose()
            await runtime.aclose()
    calls: dict[str, int] = {}
    for entry in state.api_requests():
        if entry.endpoint not in (None, "authenticate"):
            calls[entry.endpoint] = calls.get(entry.endpoint, 0) + 1
    resources = sum(item["count"] for item in status.json()["output"])
    return PerPatientRun(patients, resources, calls)


async def _measure(patients: int, *, trace: bool) -> ExportRun:
    async with sandwich(patients) as sw:
        return await _export(sw, patients, trace=trace)


def run(
    patients: int = 1000,
    memory_patients: int = MEMORY_PATIENTS,
    trace_patients: int = TRACE_PATIENTS,
    out: Callable[[str], None] = print,
) -> BulkReport:
    out(f"== bulk $export: {machine()} ==")
    calls = asyncio.run(_measure(patients, trace=False))
    out(f"full system export of {patients:,} patients: {calls.resources:,} resources")
    out(f"  {'practice listing':38} {'records':>9} {'minimum':>8}")
    for listing in calls.listings:
        out(f"  {listing.label:38} {listing.records:>9,} {listing.minimum:>8}")
    out(f"  {'other lookup lists, one call each':38} {'':>9} {calls.lookup_calls:>8}")
    out(
        f"(a) vendor calls: {calls.vendor_calls} measured, {calls.minimum_calls} minimum: "
        f"{calls.calls_ratio:.2f}× (target ≤ {CALLS_TARGET_RATIO}×)"
    )
    general = calls.general_minimum_calls
    out(
        f"    by the general 250/50 page sizes alone (clinical_notes' 20-record cap ignored): "
        f"{general} minimum, {calls.vendor_calls / max(general, 1):.2f}×"
    )
    out(
        f"(c) throughput: {calls.resources:,} resources in {calls.seconds:.2f} s = "
        f"{calls.per_second:,.0f}/s (target ≥ {RATE_TARGET_PER_SECOND:,.0f}/s: "
        f"{calls.per_second / RATE_TARGET_PER_SECOND:.2f}×)"
    )
    memory = asyncio.run(_measure(memory_patients, trace=False))
    added = memory.export_rss / MB
    out(
        f"(b) memory, export of {memory_patients:,} patients ({memory.resources:,} resources "
        f"in {memory.seconds:.1f} s, {memory.per_second:,.0f}/s): RSS grew {added:.1f} MB "
        f"over the {memory.current_rss_start / MB:.0f} MB of dataset and runtime "
        f"(target ≤ {MEMORY_TARGET_MB:.0f} MB: {added / MEMORY_TARGET_MB:.2f}×)"
    )
    out(
        f"    peak RSS (ru_maxrss) {(memory.rss_before or 0) / MB:.0f} MB before the export, "
        f"{(memory.rss_after or 0) / MB:.0f} MB after (dataset generation set the earlier peak)"
    )
    per_patient = asyncio.run(_measure_carecloud(patients))
    out(
        f"(a) CareCloud, full system export of {patients:,} patients "
        f"({per_patient.resources:,} resources): {per_patient.vendor_calls} vendor calls, "
        f"floor {per_patient.floor} = {math.ceil(patients / CARECLOUD_PATIENT_PAGE)} patient "
        f"pages + {patients} encounter calls + {len(CARECLOUD_PRACTICE_LISTS)} practice lists: "
        f"{per_patient.vendor_calls / per_patient.floor:.2f}×"
    )
    out(
        "    (no practice-wide clinical listing: /encounters needs patient_id and returns the "
        "whole chart, so one call per patient is the least any export can make)"
    )
    out(f"    calls by endpoint: {dict(sorted(per_patient.calls.items()))}")
    traced = asyncio.run(_measure(trace_patients, trace=True))
    peak = (traced.traced_peak or 0) / MB
    out(
        f"(b) tracemalloc peak of the export alone, {trace_patients:,} patients "
        f"({traced.resources:,} resources; tracing is too slow for {memory_patients:,}): "
        f"{peak:.1f} MB (target ≤ {MEMORY_TARGET_MB:.0f} MB: {peak / MEMORY_TARGET_MB:.2f}×)"
    )
    return BulkReport(calls=calls, memory=memory, traced=traced, per_patient=per_patient)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bulk_export")
    parser.add_argument("--patients", type=int, default=1000, help="(a), (c) patients (1000)")
    parser.add_argument(
        "--memory-patients", type=int, default=None, help=f"(b) patients ({MEMORY_PATIENTS:,})"
    )
    parser.add_argument(
        "--trace-patients", type=int, default=None, help=f"tracemalloc patients ({TRACE_PATIENTS})"
    )
    parser.add_argument("--iterations", type=int, default=1, help="accepted for symmetry")
    args = parser.parse_args(argv)
    small = args.patients < 100  # a smoke run stays tiny throughout
    memory_patients = args.memory_patients or (args.patients if small else MEMORY_PATIENTS)
    trace_patients = args.trace_patients or (args.patients if small else TRACE_PATIENTS)
    run(args.patients, memory_patients, trace_patients)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
