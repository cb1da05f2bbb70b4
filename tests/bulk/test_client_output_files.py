"""`facade export` keeps what it downloads owner-only (0600 files in a 0700 directory, also
under umask 000) and never mixes two exports in one directory: a directory holding anything
but an earlier run of the same export is refused before a request is sent."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from facade.app import create_app
from facade.bulk.client import ExportError, ExportOptions
from facade.bulk.export_dir import MARKER
from facade.bulk.exports import BulkExports
from facade.bulk.models import ExportJob
from facade.cli import main
from facade.clock import FakeClock
from facade.runtime import Runtime
from tests.bulk.test_client import export_with, options_for, register_backend


@pytest.fixture
async def plain_http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime.settings, runtime))
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def key_file(runtime: Runtime, tmp_path: Path) -> Path:
    return register_backend(runtime, tmp_path, "ES384", "system/*.rs")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def kickoffs(runtime: Runtime) -> int:
    """Export jobs the server has accepted so far."""
    with runtime.database.session() as session:
        return len(session.exec(select(ExportJob)).all())


async def test_export_files_are_0600_in_a_0700_directory_under_umask_000(
    runtime: Runtime,
    exports: BulkExports,
    plain_http: httpx.AsyncClient,
    clock: FakeClock,
    tmp_path: Path,
    key_file: Path,
    permissive_umask: None,
) -> None:
    options = options_for(tmp_path, key_file, "--type", "Patient,Condition", out="new/export")
    result, _ = await export_with(options, plain_http, clock)

    out = tmp_path / "new" / "export"
    assert result.outputs and all(f.path.parent == out for f in result.files)
    assert mode(out) == 0o700 and mode(out.parent) == 0o700  # both made by the export
    assert {p.name: oct(mode(p)) for p in out.iterdir()} == {p.name: "0o600" for p in out.iterdir()}
    marker = json.loads((out / MARKER).read_text())
    assert marker["state"] == "complete"
    assert sorted(marker["files"]) == sorted(f.path.name for f in result.files)


async def test_a_directory_holding_another_export_is_refused_and_nothing_is_written(
    runtime: Runtime,
    exports: BulkExports,
    plain_http: httpx.AsyncClient,
    clock: FakeClock,
    tmp_path: Path,
    key_file: Path,
) -> None:
    await export_with(options_for(tmp_path, key_file, "--type", "Patient"), plain_http, clock)
    out = tmp_path / "out"
    before = snapshot(out)
    jobs = kickoffs(runtime)

    other = options_for(tmp_path, key_file, "--type", "AllergyIntolerance")
    with pytest.raises(ExportError, match=r"holds another export \(system export of Patient"):
        await export_with(other, plain_http, clock)
    assert snapshot(out) == before
    assert kickoffs(runtime) == jobs, "refused before the kick-off: the server did no work"


@pytest.mark.parametrize("stranger", ["notes.txt", ".hidden", "Patient.1.ndjson"])
async def test_a_non_empty_directory_that_is_no_export_is_refused(
    runtime: Runtime,
    exports: BulkExports,
    plain_http: httpx.AsyncClient,
    clock: FakeClock,
    tmp_path: Path,
    key_file: Path,
    stranger: str,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / stranger).write_text("someone else's\n")
    with pytest.raises(ExportError, match=r"is not empty .* holds no facade export"):
        await export_with(options_for(tmp_path, key_file, "--type", "Patient"), plain_http, clock)
    assert snapshot(out) == {stranger: b"someone else's\n"}


async def test_a_file_added_to_an_export_directory_stops_a_rerun(
    runtime: Runtime,
    exports: BulkExports,
    plain_http: httpx.AsyncClient,
    clock: FakeClock,
    tmp_path: Path,
    key_file: Path,
) -> None:
    options = options_for(tmp_path, key_file, "--type", "Patient")
    await export_with(options, plain_http, clock)
    (tmp_path / "out" / "Condition.1.ndjson").write_text("{}\n")
    with pytest.raises(ExportError, match=r"1 file\(s\) that are not this export's"):
        await export_with(options, plain_http, clock)


async def test_rerunning_the_same_export_replaces_the_earlier_files(
    runtime: Runtime,
    exports: BulkExports,
    plain_http: httpx.AsyncClient,
    clock: FakeClock,
    tmp_path: Path,
    key_file: Path,
) -> None:
    # The first run's Patient output is split over several small files.
    exports.runner.limits = exports.limits = type(exports.limits)(file_size_bound=2000)
    options: ExportOptions = options_for(tmp_path, key_file, "--type", "Patient")
    first, _ = await export_with(options, plain_http, clock)
    assert len(first.outputs) > 1

    exports.runner.limits = exports.limits = type(exports.limits)()
    second, _ = await export_with(options, plain_http, clock)

    out = tmp_path / "out"
    assert [f.path.name for f in second.outputs] == ["Patient.1.ndjson"]
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "Patient.1.ndjson"])
    assert runtime.sandbox is not None
    assert second.outputs[0].count == len(runtime.sandbox.dataset.endpoint("patients"))
    assert json.loads((out / MARKER).read_text())["state"] == "complete"


def test_the_command_exits_non_zero_and_writes_nothing_into_a_foreign_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "Patient.1.ndjson").write_text("{}\n")
    # The directory is refused before any request: the server address is never contacted.
    code = main(["export", "http://127.0.0.1:9/fhir", "--type", "Patient", "--out", str(out)])
    assert code != 0
    assert "holds no facade export" in capsys.readouterr().err
    assert snapshot(out) == {"Patient.1.ndjson": b"{}\n"}
