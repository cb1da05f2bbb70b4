"""Runs the four benchmarks in one process and prints a summary: target, measured, ratio.

Reports numbers only. A ratio above 1 means "better than the target" for throughput and
"worse than the target" for latency; the table says which way each one reads. `--vendor`
picks the vendor's sandbox (DrChrono by default); an export that reports errors is left out
of the summary with its reason.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from benchmarks import bulk_export, mapping_throughput, search_overhead, vendor_calls
from benchmarks.stats import machine
from facade.vendors import DEFAULT_VENDOR, vendor_names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all")
    parser.add_argument("--patients", type=int, default=1000, help="sandbox patients (1000)")
    parser.add_argument(
        "--iterations",
        type=int,
        default=200,
        help="search-overhead pairs (200); mapping uses min(7, this) repetitions",
    )
    parser.add_argument("--vendor", choices=vendor_names(), default=DEFAULT_VENDOR)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    name = args.vendor

    mapping = mapping_throughput.run(args.patients, min(7, args.iterations), vendor_name=name)
    print()
    overhead = search_overhead.run(
        args.patients, args.iterations, warmup=min(20, args.iterations), vendor_name=name
    )
    print()
    calls = vendor_calls.run(args.patients, vendor_name=name)
    print()
    small = args.patients < 100  # smoke runs stay tiny
    try:
        bulk: bulk_export.BulkReport | None = bulk_export.run(
            args.patients,
            args.patients if small else bulk_export.MEMORY_PATIENTS,
            args.patients if small else bulk_export.TRACE_PATIENTS,
            vendor_name=name,
        )
    except bulk_export.ExportFailed as failed:
        bulk = None
        print(f"the {name} export reported errors, so it is not measured: {failed}")
    print()

    patients_ratio = mapping.patients.per_second / mapping_throughput.PATIENT_TARGET_PER_SECOND
    target_ms = search_overhead.ADDED_P50_TARGET_SECONDS * 1000
    added_ms = overhead.cold_added.p50 * 1000
    rows = [
        (
            "(a) Patient transform, one core",
            f"≥ {mapping_throughput.PATIENT_TARGET_PER_SECOND:,}/s",
            f"{mapping.patients.per_second:,.0f}/s",
            f"{patients_ratio:.2f}× (higher is better)",
        ),
        ("(a) Practitioner transform", "—", f"{mapping.practitioners.per_second:,.0f}/s", ""),
        ("(a) Location transform", "—", f"{mapping.locations.per_second:,.0f}/s", ""),
        (
            "(a) transform + 100-entry Bundle + orjson",
            "—",
            f"{mapping.bundle.per_second:,.0f} Patients/s",
            f"{1000 * mapping_throughput.BUNDLE_SIZE / mapping.bundle.per_second:.2f} ms/bundle",
        ),
        (
            "(b) facade − direct, 100 Patients, cold p50",
            f"≤ {target_ms:.0f} ms",
            f"{added_ms:.2f} ms",
            f"{added_ms / target_ms:.2f}× (lower is better)",
        ),
        ("(b) facade − direct, cold p95", "—", f"{overhead.cold_added.p95 * 1000:.2f} ms", ""),
        (
            f"(b) direct: {len(overhead.vendor_urls)} vendor calls p50 / p95",
            "—",
            f"{overhead.direct.p50 * 1000:.2f} / {overhead.direct.p95 * 1000:.2f} ms",
            "",
        ),
        (
            "(b) facade cold p50 / p95",
            "—",
            f"{overhead.cold.p50 * 1000:.2f} / {overhead.cold.p95 * 1000:.2f} ms",
            "",
        ),
        (
            "(b) facade warm (0 vendor calls) p50 / p95",
            "—",
            f"{overhead.warm.p50 * 1000:.2f} / {overhead.warm.p95 * 1000:.2f} ms",
            "",
        ),
        ("(c) practice context, once an hour", "—", f"{len(calls.context_calls)} calls", ""),
    ]
    for cost in calls.costs:
        floor = cost.search.minimum
        rows.append(
            (
                f"(c) {cost.search.label}",
                "—" if floor is None else f"min {floor}",
                f"{cost.calls} calls",
                "" if not floor else f"{cost.calls / floor:.2f}× minimum",
            )
        )

    rows += [] if bulk is None else _bulk_rows(bulk, args.patients)
    print("== summary ==")
    print(f"{machine()}; {args.patients} {name} sandbox patients")
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    header = ("measure", "target", "measured", "ratio")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in (header, *rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    if bulk is None:
        print("(d) $export: not measured (the export reported errors; see above)")
    print(f"total run time {time.perf_counter() - started:.0f} s")
    return 0


def _bulk_rows(bulk: bulk_export.BulkReport, patients: int) -> list[tuple[str, str, str, str]]:
    return [
        (
            f"(d) $export vendor calls vs minimum, {patients} patients",
            f"≤ {bulk_export.CALLS_TARGET_RATIO}×",
            f"{bulk.calls.vendor_calls} / min {bulk.calls.minimum_calls}",
            f"{bulk.calls.calls_ratio:.2f}× (lower is better)",
        ),
        (
            f"(d) $export RSS growth, {bulk.memory.patients:,} patients",
            f"≤ {bulk_export.MEMORY_TARGET_MB:.0f} MB",
            f"{bulk.memory.export_rss / bulk_export.MB:.1f} MB",
            f"{bulk.memory.export_rss / bulk_export.MB / bulk_export.MEMORY_TARGET_MB:.2f}× "
            "(lower is better)",
        ),
        (
            f"(d) $export tracemalloc peak, {bulk.traced.patients:,} patients",
            f"≤ {bulk_export.MEMORY_TARGET_MB:.0f} MB",
            f"{(bulk.traced.traced_peak or 0) / bulk_export.MB:.1f} MB",
            "",
        ),
        (
            "(d) $export end to end, quota lifted",
            f"≥ {bulk_export.RATE_TARGET_PER_SECOND:,.0f}/s",
            f"{bulk.calls.per_second:,.0f}/s",
            f"{bulk.calls.per_second / bulk_export.RATE_TARGET_PER_SECOND:.2f}× (higher is better)",
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
