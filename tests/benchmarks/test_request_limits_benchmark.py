"""The request-limits benchmark runs end to end at a tiny size over a real loopback server and
prints a row per load with the answers it got; no timing is asserted."""

from __future__ import annotations

import re

import pytest

from benchmarks import request_limits


def test_request_limits_prints_metadata_latency_under_each_load(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert request_limits.main(["--patients", "20", "--iterations", "3", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    number = r" +[\d.]+ ms"
    assert re.search(rf"^no load \(baseline\){number * 3}", out, re.M)
    for label, answer in [
        ("largest body allowed", "400"),
        ("body 10 MB (over the limit)", "413"),
        ("longest query allowed", "200"),
        ("query 20 KB (over the limit)", "414"),
        ("most values allowed", "200"),
        ("10,000 values", "400"),
    ]:
        line = next((x for x in out.splitlines() if x.startswith(label)), None)
        assert line is not None, label
        assert re.search(rf"{number * 5}  {answer}×\d+$", line), line
