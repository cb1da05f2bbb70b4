"""The benchmarks run end to end at tiny sizes and print their headline lines, for every
vendor; the vendor-call benchmark reports the call counts the planner promises. No timing is
ever asserted."""

from __future__ import annotations

import re

import pytest

from benchmarks import (
    bulk_export,
    full_chart,
    mapping_throughput,
    mirror,
    run_all,
    scale,
    search_overhead,
    vendor_calls,
)
from tests.vendors import ALL_VENDORS

TINY = ["--patients", "20", "--iterations", "3"]
EACH_VENDOR = pytest.mark.parametrize("vendor_name", ALL_VENDORS)
#: The practice context each vendor's facade loads once an hour: DrChrono users/current
#: (a 302 to users/{id}), doctors and custom_demographics; CareCloud /authorization.
CONTEXT_CALLS = {"drchrono": 4, "carecloud": 1}


@EACH_VENDOR
def test_mapping_throughput_prints_records_per_second_for_each_transform(
    capsys: pytest.CaptureFixture[str], vendor_name: str
) -> None:
    assert mapping_throughput.main([*TINY, "--vendor", vendor_name]) == 0
    out = capsys.readouterr().out
    for headline in (
        "Patient transform ",
        "Practitioner transform ",
        "Location transform ",
        "Patient transform + 100-entry Bundle + orjson",
    ):
        assert re.search(rf"^{re.escape(headline)}.*[\d,]+/s records", out, re.M), headline
    assert re.search(r"^Patient target ≥ 20,000/s: measured [\d,]+/s", out, re.M)


@EACH_VENDOR
def test_search_overhead_prints_direct_facade_and_added_percentiles(
    capsys: pytest.CaptureFixture[str], vendor_name: str
) -> None:
    assert search_overhead.main([*TINY, "--warmup", "1", "--vendor", vendor_name]) == 0
    out = capsys.readouterr().out
    assert "X-Upstream-Calls: 1" in out  # 20 patients fit one vendor page (50 a page at most)
    for label in ("direct: the same 1 vendor call(s)", "facade, cold", "facade − direct, cold"):
        assert re.search(rf"^{re.escape(label)}.* ms +-?[\d.]+ ms$", out, re.M), label
    assert re.search(r"^added p50 target ≤ 10 ms: measured -?[\d.]+ ms cold", out, re.M)
    assert "!!" not in out, "facade made an unexpected number of vendor calls"


@EACH_VENDOR
def test_vendor_calls_reports_one_call_for_id_and_birthdate_name_searches(
    capsys: pytest.CaptureFixture[str], vendor_name: str
) -> None:
    assert vendor_calls.main([*TINY, "--vendor", vendor_name]) == 0
    out = capsys.readouterr().out
    context = CONTEXT_CALLS[vendor_name]
    assert f"practice context (once an hour, before any search): {context} calls" in out
    assert re.search(r"^Patient\?_id=X: 1 calls \(minimum 1;", out, re.M)
    assert re.search(r"^Patient\?birthdate=D&name=X: 1 calls \(minimum 1;", out, re.M)
    assert re.search(r"^  rule     _id: read by id", out, re.M)
    assert re.search(r"^  rule     birthdate: pushed down as date_of_birth=", out, re.M)


@EACH_VENDOR
def test_vendor_calls_report_counts_match_the_sandbox_log_and_the_floor(vendor_name: str) -> None:
    report = vendor_calls.run(20, out=lambda _line: None, vendor_name=vendor_name)
    assert report.calls_for("Patient?_id=X") == 1
    assert report.calls_for("Patient?birthdate=D&name=X") == 1
    for cost in report.costs:
        assert cost.calls == len(cost.vendor_requests), cost.search.label
        assert cost.calls == cost.search.minimum, cost.search.label


@EACH_VENDOR
def test_full_chart_prints_the_session_calls_against_the_floor(
    capsys: pytest.CaptureFixture[str], vendor_name: str
) -> None:
    assert full_chart.main(["--patients", "5", "--vendor", vendor_name]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^searches: \d+$", out, re.M)
    session = re.search(r"^vendor calls, the whole chart in one session .*: (\d+)$", out, re.M)
    floor = re.search(r"^floor: distinct vendor pages the chart needs: (\d+)$", out, re.M)
    assert session and floor and session.group(1) == floor.group(1)
    own = re.search(r"^calls naming the patient \(the chart itself\): (\d+) on ([^;]+);", out, re.M)
    assert own, "the chart's own calls are printed"
    # Each endpoint holding the patient's data read once: 5 patients fit one page everywhere.
    assert int(own.group(1)) == len(own.group(2).split(", ")), own.group(0)
    assert (
        f"fewest the API allows for the chart itself: {full_chart.CHART_FLOOR[vendor_name]}" in out
    )


@EACH_VENDOR
def test_bulk_export_prints_calls_memory_and_throughput_against_targets(
    capsys: pytest.CaptureFixture[str], vendor_name: str
) -> None:
    assert bulk_export.main([*TINY, "--vendor", vendor_name]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"^\(a\) vendor calls: \d+ measured, \d+ minimum: [\d.]+× \(target ≤ 1.1×\)", out, re.M
    )
    assert f"    {bulk_export.FLOOR_NOTE[vendor_name]}: " in out
    assert re.search(r"^\(b\) memory, export of 20 patients .*RSS grew [\d.]+ MB", out, re.M)
    assert re.search(r"^\(b\) tracemalloc peak .*: [\d.]+ MB \(target ≤ 300 MB", out, re.M)
    assert re.search(r"^\(c\) throughput: [\d,]+ resources in [\d.]+ s = [\d,]+/s", out, re.M)


def drchrono_floor(listing: bulk_export.ListingCost) -> int:
    """DrChrono's contract: 250 a page, 50 verbose, 20 for clinical notes."""
    general = 50 if listing.verbose else 250
    size = 20 if listing.label.startswith("clinical_notes") else general
    return max(1, -(-listing.records // size))


def carecloud_floor(listing: bulk_export.ListingCost) -> int:
    """CareCloud's: /encounters once per patient (20 here), the patient list 50 a page."""
    if listing.label == "encounters (one call per patient)":
        return 20
    assert listing.label == "patients", listing
    return max(1, -(-listing.records // 50))


FLOORS = {"drchrono": drchrono_floor, "carecloud": carecloud_floor}


@EACH_VENDOR
def test_bulk_export_report_matches_the_export_and_the_sandbox_log(vendor_name: str) -> None:
    report = bulk_export.run(20, 20, 20, out=lambda _line: None, vendor_name=vendor_name)
    calls = report.calls
    assert calls.resources == sum(calls.by_type.values()) and calls.by_type["Patient"] == 20
    for listing in calls.listings:  # the floor: the vendor's largest page size
        assert listing.minimum == FLOORS[vendor_name](listing), listing
    assert calls.minimum_calls == sum(x.minimum for x in calls.listings) + calls.lookup_calls
    assert calls.vendor_calls <= calls.minimum_calls
    assert report.memory.resources == calls.resources == report.traced.resources
    assert report.traced.traced_peak is not None and report.traced.traced_peak > 0


def test_carecloud_export_costs_exactly_its_floor() -> None:
    """Patient pages, one encounters call per patient, each practice list (business entity,
    providers, locations) once, and no other call."""
    calls = bulk_export.run(20, 20, 20, out=lambda _line: None, vendor_name="carecloud").calls
    assert calls.lookup_calls == 3
    assert calls.vendor_calls == calls.minimum_calls == 1 + 20 + 3, calls.listings


@EACH_VENDOR
def test_run_all_prints_the_summary_with_targets(
    capsys: pytest.CaptureFixture[str], vendor_name: str
) -> None:
    assert run_all.main([*TINY, "--vendor", vendor_name]) == 0
    out = capsys.readouterr().out
    assert "== summary ==" in out
    assert re.search(r"^\(a\) Patient transform, one core +≥ 20,000/s +[\d,]+/s", out, re.M)
    assert re.search(r"^\(b\) facade − direct, 100 Patients, cold p50 +≤ 10 ms", out, re.M)
    assert re.search(r"^\(c\) Patient\?_id=X +min 1 +1 calls", out, re.M)
    assert re.search(r"^\(d\) \$export vendor calls vs minimum, 20 patients +≤ 1.1×", out, re.M)
    assert re.search(r"^\(d\) \$export end to end, quota lifted +≥ 5,000/s +[\d,]+/s", out, re.M)


#: The mirror benchmark at a tiny size: an hour of changes, two simulated hours in all.
MIRROR_TINY = [
    *("--patients", "20", "--hours", "1", "--observe-hours", "2", "--charts", "1"),
    *("--reps", "2", "--iterations", "3", "--warmup", "1"),
]


@EACH_VENDOR
def test_mirror_prints_each_figure_against_its_target(
    capsys: pytest.CaptureFixture[str], vendor_name: str
) -> None:
    assert mirror.main([*MIRROR_TINY, "--vendor", vendor_name]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^backfill: [\d,]+ records in \d+ vendor calls", out, re.M)
    assert re.search(
        r"^\(a\) target ≥ 10,000/h .*: measured [\d,]+/h with, \d+/h without", out, re.M
    )
    assert re.search(r"^  from the mirror: 0 vendor calls in 2 loads", out, re.M)
    assert re.search(r"^\(b\) target with webhooks p95 ≤ 60 s: announced changes p95 ", out, re.M)
    for how in ("with webhooks, poll and reconcile", "with poll and reconcile alone"):
        assert re.search(
            rf"^-- {how}: \d+ changes to mirrored records in the first 1 h", out, re.M
        ), how
    assert re.search(r"^  with webhooks +\d+ calls/h for \d+ changed records/h", out, re.M)
    assert re.search(r"^\(d\) target added p50 ≤ 5 ms: measured -?[\d.]+ ms", out, re.M)
    assert re.search(
        r"^\(d\) system \$export from the mirror: [\d,]+ resources .*vendor calls 0; "
        r"error files 0$",
        out,
        re.M,
    )


@EACH_VENDOR
async def test_mirror_report_serves_without_calls_and_webhooks_bring_announced_changes(
    vendor_name: str,
) -> None:
    """What the figures rest on: the mirror answers the chart, the page and the export with
    no vendor call; facade without it pays for the chart; with webhooks every change the
    vendor announced is held within the run, and only then does the sync refresh hinted
    records."""
    report = await mirror.run(
        20,
        vendor_name=vendor_name,
        hours=1,
        observe_hours=2,
        charts=1,
        reps=1,
        iterations=2,
        warmup=0,
        out=lambda _line: None,
    )
    served = report.served
    assert served.loads.mirror_calls == 0 and served.loads.live_calls[0] > 0
    assert served.page.same_page and served.page.mirror_calls == served.page.memory_calls == 0
    assert served.export.vendor_calls == 0 and served.export.resources > 0
    with_hooks, polling = report.follows
    assert with_hooks.webhooks and not polling.webhooks
    assert [c for c in with_hooks.changes if c.events], "the vendor announced changes"
    for change, staleness in zip(with_hooks.changes, with_hooks.staleness, strict=True):
        if change.events:
            assert staleness is not None and staleness <= 60, change.describe()
    assert with_hooks.calls_by_pass["hinted"] > 0 and polling.calls_by_pass["hinted"] == 0
    # Same seed, same practice: both runs measure the same changes.
    made = [[(c.action, c.endpoint, c.record_id) for c in f.changes] for f in report.follows]
    assert made[0] == made[1]


@pytest.mark.postgres
def test_scale_prints_search_and_export_rates_with_one_and_two_processes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Over the real topology (scripts/cluster.sh): mirror-backed searches cost no vendor
    call in either phase, exports write no error file, and every figure is printed."""
    assert scale.main(["--patients", "20", "--seconds", "1", "--exports", "1"]) == 0
    out = capsys.readouterr().out
    for line in ("1 API process:", "2 API processes:", "1 worker:", "2 workers:"):
        assert line in out, out
    searches = re.findall(r"API process(?:es)?: .*, (\d+) vendor calls\)", out)
    assert searches == ["0", "0"], out
    assert re.findall(r"(\d+) error files", out) == ["0", "0"], out
    assert "requests/s" in out and "resources/s" in out and "vendor calls, counted" in out
