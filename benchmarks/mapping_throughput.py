"""(a) Mapping throughput on one core: vendor records → US Core resources per second.

Runs the vendor's pure transforms (from its registry) over generated sandbox records rendered
as the API serves them (DrChrono patients with verbose=true, so custom_demographics are
present; CareCloud's one record shape). Prints medians of several timed repetitions after a
warm-up; it never judges the numbers.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from benchmarks.sandwich import SEED, dataset_context, unlimited_sandbox
from benchmarks.stats import machine, median, rate
from facade.core.mapping import MappingContext, Record, ResourceMapping
from facade.fhir.paging import searchset
from facade.upstream.drchrono.sandbox.endpoints import ENDPOINT_SPECS
from facade.upstream.drchrono.sandbox.rendering import render_record
from facade.upstream.drchrono.sandbox.state import SandboxState
from facade.upstream.drchrono.vendor import SANDBOX_BASE_URL
from facade.vendors import DEFAULT_VENDOR, vendor, vendor_names

PATIENT_TARGET_PER_SECOND = 20_000
BUNDLE_SIZE = 100
#: Each timed sample maps at least this many records, so tiny record lists still time well.
MIN_RECORDS_PER_SAMPLE = 5_000
FHIR_BASE = "http://facade.bench/fhir"


@dataclass(frozen=True)
class Throughput:
    name: str
    #: Records mapped per second, median over the repetitions.
    per_second: float
    low: float
    high: float
    records_per_sample: int


@dataclass(frozen=True)
class MappingInputs:
    """What the transforms run over: the context facade would load and the served records."""

    ctx: MappingContext
    patients: list[Record]
    practitioners: list[Record]
    locations: list[Record]
    #: One line each describing the records and the context, for the report.
    dataset_line: str
    context_line: str


@dataclass(frozen=True)
class MappingReport:
    patients: Throughput
    practitioners: Throughput
    locations: Throughput
    bundle: Throughput
    bundle_bytes: int
    custom_fields_seen: int


def served_records(state: SandboxState, endpoint: str, params: dict[str, str]) -> list[Record]:
    """Records as the sandbox API sends them for `params` (verbose fields kept or dropped)."""
    spec = ENDPOINT_SPECS[endpoint]
    return [
        render_record(state, spec, record, params, SANDBOX_BASE_URL)
        for record in state.dataset.endpoint(endpoint)
    ]


def measure(
    name: str,
    records: Sequence[Record],
    work: Callable[[Sequence[Record]], object],
    repetitions: int,
    batch: int = 1,
) -> Throughput:
    """Time `work` over `records` (in batches of `batch`) `repetitions` times after a warm-up."""
    passes = max(1, -(-MIN_RECORDS_PER_SAMPLE // len(records)))
    batches = [records[i : i + batch] for i in range(0, len(records), batch)]
    mapped = passes * len(records)
    rates: list[float] = []
    for repetition in range(repetitions + 1):
        started = time.perf_counter()
        for _ in range(passes):
            for chunk in batches:
                work(chunk)
        elapsed = time.perf_counter() - started
        if repetition:  # the first one warms caches and is discarded
            rates.append(mapped / elapsed)
    return Throughput(name, median(rates), min(rates), max(rates), mapped)


def transform_each(
    transform: Callable[[Record, MappingContext], Any], ctx: MappingContext
) -> Callable[[Sequence[Record]], object]:
    def work(chunk: Sequence[Record]) -> object:
        return [transform(record, ctx) for record in chunk]

    return work


def bundle_bytes_of(
    patient: ResourceMapping, chunk: Sequence[Record], ctx: MappingContext
) -> bytes:
    """What facade does per search page: map, wrap in a searchset Bundle, serialize."""
    resources = [patient.resource(record, ctx) for record in chunk]
    bundle = searchset(
        FHIR_BASE, "Patient", resources, f"{FHIR_BASE}/Patient?_count={BUNDLE_SIZE}", None
    )
    return orjson.dumps(bundle)


def prepare(patients: int, vendor_name: str = DEFAULT_VENDOR) -> MappingInputs:
    """Context and served records; the rest of the generated charts is dropped, so the heap
    the garbage collector walks looks like facade's in front of the real vendor."""
    if vendor_name == "drchrono":
        return _drchrono_inputs(patients)
    return _carecloud_inputs(patients)


def _drchrono_inputs(patients: int) -> MappingInputs:
    from mappings.drchrono.practitioner import attach_office

    state: SandboxState = unlimited_sandbox("drchrono", patients)
    ctx = dataset_context(state.dataset)
    patient_records = served_records(
        state, "patients", {"verbose": "true", "show_inactive": "true"}
    )
    offices = served_records(state, "offices", {"show_archived": "true"})
    doctors = attach_office(served_records(state, "doctors", {}), {"offices": offices}, ctx)
    custom_fields = sum(len(r.get("custom_demographics") or ()) for r in patient_records)
    return MappingInputs(
        ctx,
        patient_records,
        doctors,
        offices,
        f"dataset: {len(patient_records)} patients (verbose, {custom_fields} custom demographic"
        f" values), {len(doctors)} doctors, {len(offices)} offices; seed {SEED}",
        f"context: practice_group {ctx.practice_group_id}, tz {ctx.timezone.key},"
        f" custom_field_roles {dict(ctx.custom_field_roles)}",
    )


def _carecloud_inputs(patients: int) -> MappingInputs:
    """CareCloud serves one record shape: the dataset's records are what the API sends."""
    from facade.upstream.carecloud.practice_context import context_from_authorization
    from mappings.carecloud.fields import LOCATIONS
    from mappings.carecloud.practitioner import attach_location

    dataset = unlimited_sandbox("carecloud", patients).dataset
    ctx = context_from_authorization({"business_entity": dataset.business_entity})
    locations = list(dataset.locations)
    providers = attach_location(list(dataset.providers), {LOCATIONS: locations}, ctx)
    return MappingInputs(
        ctx,
        list(dataset.patients),
        providers,
        locations,
        f"dataset: {len(dataset.patients)} patients (as GET /patients serves them),"
        f" {len(providers)} providers, {len(locations)} locations; seed {SEED}",
        f"context: business entity {ctx.practice_group_id}, tz {ctx.timezone.key}",
    )


def run(
    patients: int,
    repetitions: int,
    out: Callable[[str], None] = print,
    vendor_name: str = DEFAULT_VENDOR,
) -> MappingReport:
    inputs = prepare(patients, vendor_name)
    ctx, patient_records = inputs.ctx, inputs.patients
    registry = vendor(vendor_name).registry()
    patient, practitioner, location = (
        registry.get(name) for name in ("Patient", "Practitioner", "Location")
    )
    assert isinstance(patient, ResourceMapping)
    assert isinstance(practitioner, ResourceMapping) and isinstance(location, ResourceMapping)
    gc.collect()
    custom_fields = sum(len(r.get("custom_demographics") or ()) for r in patient_records)

    out(f"== (a) mapping throughput, one core, single process ({vendor_name}) ==")
    out(inputs.dataset_line)
    out(inputs.context_line)
    out(
        f"median of {repetitions} repetitions after 1 warm-up (min–max in brackets);"
        f" gc on; {machine()}"
    )

    patients_rate = measure(
        "Patient transform", patient_records, transform_each(patient.transform, ctx), repetitions
    )
    practitioners_rate = measure(
        "Practitioner transform",
        inputs.practitioners,
        transform_each(practitioner.transform, ctx),
        repetitions,
    )
    locations_rate = measure(
        "Location transform",
        inputs.locations,
        transform_each(location.transform, ctx),
        repetitions,
    )
    bundle_rate = measure(
        f"Patient transform + {BUNDLE_SIZE}-entry Bundle + orjson",
        patient_records,
        lambda chunk: bundle_bytes_of(patient, chunk, ctx),
        repetitions,
        batch=BUNDLE_SIZE,
    )
    size = len(bundle_bytes_of(patient, patient_records[:BUNDLE_SIZE], ctx))
    for result in (patients_rate, practitioners_rate, locations_rate, bundle_rate):
        out(
            f"{result.name:<48} {rate(result.per_second)} records"
            f"  [{result.low:,.0f}–{result.high:,.0f}]  ({result.records_per_sample:,} per sample)"
        )
    out(
        f"{'  = Bundles of ' + str(BUNDLE_SIZE):<48} {rate(bundle_rate.per_second / BUNDLE_SIZE)}"
        f" bundles  ({size / 1024:.1f} KiB for {min(BUNDLE_SIZE, len(patient_records))} entries,"
        f" {1000 * BUNDLE_SIZE / bundle_rate.per_second:.2f}"
        " ms per bundle)"
    )
    out(
        f"Patient target ≥ {PATIENT_TARGET_PER_SECOND:,}/s: measured"
        f" {patients_rate.per_second:,.0f}/s"
        f" ({patients_rate.per_second / PATIENT_TARGET_PER_SECOND:.2f}× target)"
    )
    return MappingReport(
        patients=patients_rate,
        practitioners=practitioners_rate,
        locations=locations_rate,
        bundle=bundle_rate,
        bundle_bytes=size,
        custom_fields_seen=custom_fields,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mapping_throughput")
    parser.add_argument("--patients", type=int, default=1000, help="sandbox patients (1000)")
    parser.add_argument(
        "--iterations", type=int, default=7, help="timed repetitions after a warm-up (7)"
    )
    parser.add_argument("--vendor", choices=vendor_names(), default=DEFAULT_VENDOR)
    args = parser.parse_args(argv)
    run(args.patients, args.iterations, vendor_name=args.vendor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
