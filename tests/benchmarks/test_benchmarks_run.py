"""The benchmarks run end to end at tiny sizes and print their headline lines; the vendor-call
benchmark reports the call counts the planner promises. No timing is ever asserted."""

from __future__ import annotations

import re

import pytest

from benchmarks import bulk_export, mapping_throughput, run_all, search_overhead, vendor_calls

TINY = ["--patients", "20", "--iterations", "3"]


def test_mapping_throughput_prints_records_per_second_for_each_transform(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert mapping_throughput.main(TINY) == 0
    out = capsys.readouterr().out
    for headline in (
        "Patient transform ",
        "Practitioner transform ",
        "Location transform ",
        "Patient transform + 100-entry Bundle + orjson",
    ):
        assert re.search(rf"^{re.escape(headline)}.*[\d,]+/s records", out, re.M), headline
    assert re.search(r"^Patient target ≥ 20,000/s: measured [\d,]+/s", out, re.M)


def test_search_overhead_prints_direct_facade_and_added_percentiles(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert search_overhead.main([*TINY, "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "X-Upstream-Calls: 1" in out  # 20 patients fit one verbose vendor page
    for label in ("direct: the same 1 vendor call(s)", "facade, cold", "facade − direct, cold"):
        assert re.search(rf"^{re.escape(label)}.* ms +-?[\d.]+ ms$", out, re.M), label
    assert re.search(r"^added p50 target ≤ 10 ms: measured -?[\d.]+ ms cold", out, re.M)
    assert "!!" not in out, "facade made an unexpected number of vendor calls"


def test_vendor_calls_reports_one_call_for_id_and_birthdate_name_searches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert vendor_calls.main(TINY) == 0
    out = capsys.readouterr().out
    assert "practice context (once an hour, before any search): 4 calls" in out
    assert re.search(r"^Patient\?_id=X: 1 calls \(minimum 1;", out, re.M)
    assert re.search(r"^Patient\?birthdate=D&name=X: 1 calls \(minimum 1;", out, re.M)
    assert re.search(r"^  rule     _id: read by id", out, re.M)
    assert re.search(r"^  rule     birthdate: pushed down as date_of_birth=", out, re.M)


def test_vendor_calls_report_counts_match_the_sandbox_log() -> None:
    report = vendor_calls.run(20, out=lambda _line: None)
    assert report.calls_for("Patient?_id=X") == 1
    assert report.calls_for("Patient?birthdate=D&name=X") == 1
    for cost in report.costs:
        assert cost.calls == len(cost.vendor_requests), cost.search.label


def test_bulk_export_prints_calls_memory_and_throughput_against_targets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bulk_export.main(TINY) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"^\(a\) vendor calls: \d+ measured, \d+ minimum: [\d.]+× \(target ≤ 1.1×\)", out, re.M
    )
    assert re.search(r"^\(b\) memory, export of 20 patients .*RSS grew [\d.]+ MB", out, re.M)
    assert re.search(r"^\(b\) tracemalloc peak .*: [\d.]+ MB \(target ≤ 300 MB", out, re.M)
    assert re.search(r"^\(c\) throughput: [\d,]+ resources in [\d.]+ s = [\d,]+/s", out, re.M)
    assert re.search(
        r"^\(a\) CareCloud, .*: \d+ vendor calls, floor 24 = 1 patient pages \+ 20 encounter",
        out,
        re.M,
    )


def test_bulk_export_report_matches_the_export_and_the_sandbox_log() -> None:
    report = bulk_export.run(20, 20, 20, out=lambda _line: None)
    calls = report.calls
    assert calls.resources == sum(calls.by_type.values()) and calls.by_type["Patient"] == 20
    for listing in calls.listings:  # the floor: the vendor's largest page size
        general = 50 if listing.verbose else 250
        size = 20 if listing.label.startswith("clinical_notes") else general
        assert listing.minimum == max(1, -(-listing.records // size)), listing
        assert listing.general_minimum == max(1, -(-listing.records // general)), listing
    assert calls.minimum_calls == sum(x.minimum for x in calls.listings) + calls.lookup_calls
    assert calls.vendor_calls <= calls.minimum_calls
    assert report.memory.resources == calls.resources == report.traced.resources
    assert report.traced.traced_peak is not None and report.traced.traced_peak > 0
    # CareCloud: every call the floor allows (patient pages, one encounters call per patient,
    # each practice list once) and no other.
    per_patient = report.per_patient
    assert per_patient.vendor_calls == per_patient.floor == 1 + 20 + 3, per_patient.calls
    assert per_patient.calls["encounters"] == 20 and per_patient.calls["patients"] == 1


def test_run_all_prints_the_summary_with_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_all.main(TINY) == 0
    out = capsys.readouterr().out
    assert "== summary ==" in out
    assert re.search(r"^\(a\) Patient transform, one core +≥ 20,000/s +[\d,]+/s", out, re.M)
    assert re.search(r"^\(b\) facade − direct, 100 Patients, cold p50 +≤ 10 ms", out, re.M)
    assert re.search(r"^\(c\) Patient\?_id=X +min 1 +1 calls", out, re.M)
    assert re.search(r"^\(d\) \$export vendor calls vs minimum, 20 patients +≤ 1.1×", out, re.M)
    assert re.search(r"^\(d\) \$export end to end, quota lifted +≥ 5,000/s +[\d,]+/s", out, re.M)
