"""The mirror from the operator's side: `facade serve --mirror` and FACADE_MIRROR=on turn it
on (and without either it stays off); `facade mirror status` reads its progress from the data
directory; `facade mirror purge` asks first, then deletes everything it kept.

Real processes on loopback ports (tests/test_cli.py's harness); every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from facade.vendors import vendor
from tests import test_cli
from tests.test_cli import FACADE, Running, clean_env, free_port, wait_until_listening
from tests.vendors import patient_records

facade = test_cli.facade

#: A bounded wait for the background backfill of a three-patient sandbox.
BACKFILL_SECONDS = 60.0


def mirror(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FACADE, "mirror", *args],
        env=clean_env(**env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def status(data_dir: Path) -> dict[str, Any]:
    result = mirror("status", "--json", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def wait_for_backfill(data_dir: Path, server: Running) -> dict[str, Any]:
    deadline = time.monotonic() + BACKFILL_SECONDS
    while time.monotonic() < deadline:
        found = status(data_dir)
        if found["complete"]:
            return found
        time.sleep(0.5)
    server.drain()
    pytest.fail(f"the mirror's backfill did not end:\n{status(data_dir)}\n{server.output}")


def test_serve_mirror_backfills_in_the_background_and_status_and_purge_work_on_its_data_dir(
    facade: type[Running], tmp_path: Path
) -> None:
    data_dir = tmp_path / "d"
    port = free_port()
    server = facade(
        ["serve", "--mirror", "--port", str(port), "--data-dir", str(data_dir), "--patients", "3"]
    )
    server.wait_for(r"^mirror on: ")
    wait_until_listening(port, server)

    found = wait_for_backfill(data_dir, server)
    server.stop()

    assert found["connection"] == "drchrono" and found["eta"] is None
    endpoints = {e["endpoint"]: e for e in found["endpoints"]}
    assert endpoints["patients"]["records"] == 3
    assert all(
        e["complete"] and e["syncedThrough"] and e["eta"] is None for e in found["endpoints"]
    )
    assert sum(e["callsSpent"] for e in found["endpoints"]) >= len(endpoints)
    records = sum(e["records"] for e in found["endpoints"])
    table = mirror("status", "--data-dir", str(data_dir))
    assert table.returncode == 0, table.stderr
    assert "endpoint" in table.stdout and "synced through" in table.stdout
    assert "backfill: complete" in table.stdout and "webhook hints waiting: 0" in table.stdout
    _assert_no_patient_data(table.stdout + server.output)

    refused = mirror("purge", "--data-dir", str(data_dir), stdin="n\n")
    assert refused.returncode == 1 and "nothing deleted" in refused.stdout
    assert sum(e["records"] for e in status(data_dir)["endpoints"]) == records

    purged = mirror("purge", "--yes", "--data-dir", str(data_dir))

    assert purged.returncode == 0, purged.stderr
    assert f"deleted {records} records, {len(endpoints)} listings" in purged.stdout
    assert status(data_dir)["endpoints"] == []
    assert "nothing mirrored" in mirror("status", "--data-dir", str(data_dir)).stdout


def test_facade_mirror_on_in_the_environment_turns_it_on_and_without_it_it_is_off(
    facade: type[Running], tmp_path: Path
) -> None:
    on, off = free_port(), free_port()
    args = ["serve", "--patients", "3", "--port"]
    with_env = facade(
        [*args, str(on), "--data-dir", str(tmp_path / "on")], clean_env(FACADE_MIRROR="on")
    )
    without = facade([*args, str(off), "--data-dir", str(tmp_path / "off")])

    with_env.wait_for(r"^mirror on: ")
    without.wait_for(r"^sandbox logins")  # printed after the mirror's line would be
    wait_for_backfill(tmp_path / "on", with_env)

    assert "mirror on" not in without.output
    assert status(tmp_path / "off")["endpoints"] == []


def _assert_no_patient_data(shown: str) -> None:
    """What the operator saw names endpoints and counts, nothing a patient record holds."""
    patients = patient_records(vendor("drchrono").sandbox.generate(3, 1))
    for patient in patients:
        for field in ("first_name", "last_name", "date_of_birth", "email"):
            value = str(patient.get(field) or "")
            assert not value or value not in shown, field
