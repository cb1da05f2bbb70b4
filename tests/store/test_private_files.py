"""Files at rest are owner-only: the data directory 0700 and every file facade puts in it 0600
(database, WAL, SHM, key, demo logins, export files, spills), even under umask 000, and a
directory an older version left readable by others is tightened at start."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from facade.admin import State
from facade.auth.demo import FILE_NAME as DEMO_FILE
from facade.auth.demo import ensure_demo_accounts
from facade.bulk.exports import BulkExports
from facade.clock import FakeClock
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from facade.store.private_files import NotPrivate, open_private, private_dir
from facade.store.secrets import KEY_FILE_NAME
from facade.upstream.drchrono.sandbox.state import SandboxState
from facade.upstream.drchrono.vendor import demo_accounts
from tests.bulk.conftest import download, export
from tests.conftest import FHIR_BASE
from tests.tokens import operator


@pytest.fixture
async def exports(runtime: Runtime) -> AsyncIterator[BulkExports]:
    assert runtime.exports is not None
    await runtime.exports.worker.start()
    yield runtime.exports
    await runtime.exports.worker.stop()


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 000: whatever facade leaves to the umask ends up world-readable (and writable)."""
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def settings(tmp_path: Path, permissive_umask: None) -> Settings:
    return Settings(
        data_dir=tmp_path / "state" / "data",
        public_base_url=FHIR_BASE,
        upstream_burst_per_second=0,
        upstream_timeout_seconds=0.5,
        client_requests_per_minute=0,
    )


def modes(root: Path) -> dict[str, int]:
    """Mode of everything under root (root itself as '.'), symlinks not followed."""
    found = {".": stat.S_IMODE(os.lstat(root).st_mode)}
    for parent, directories, files in os.walk(root):
        for name in [*directories, *files]:
            path = Path(parent) / name
            found[str(path.relative_to(root))] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def loose(found: dict[str, int]) -> dict[str, str]:
    return {name: oct(mode) for name, mode in found.items() if mode not in (0o600, 0o700)}


async def test_every_file_is_owner_only_after_a_start_a_search_and_an_export_under_umask_000(
    fhir: httpx.AsyncClient, runtime: Runtime, exports: BulkExports, sandbox: SandboxState
) -> None:
    data_dir = runtime.settings.data_dir
    seen_during_export: dict[str, int] = {}

    def look(point: str, _seq: int, _count: int) -> None:
        # Mid-export: the job directory holds the open NDJSON files and the lookup spill.
        seen_during_export.update(modes(data_dir))

    exports.runner.hook = look
    assert (await fhir.get("/fhir/Patient?_count=2")).status_code == 200
    manifest = await export(fhir, exports, "$export")
    assert await download(fhir, manifest)
    ensure_demo_accounts(operator(runtime), demo_accounts(sandbox), data_dir)

    after = modes(data_dir)
    names = set(after) | set(seen_during_export)
    for expected in ("facade.db", "facade.db-wal", "facade.db-shm", KEY_FILE_NAME, DEMO_FILE):
        assert expected in names, f"{expected} was not created: the check would prove nothing"
    assert any(n.endswith(".ndjson") for n in after), "no export file to check"
    assert any(n.endswith(".lookups.sqlite-wal") for n in seen_during_export), "no spill seen"
    assert loose(after) == {}
    assert loose(seen_during_export) == {}
    assert after["."] == 0o700
    # The parent facade had to create for the data dir is private too; the tmp dir is not ours.
    assert stat.S_IMODE(data_dir.parent.stat().st_mode) == 0o700


def test_operator_commands_keep_the_state_owner_only(settings: Settings) -> None:
    state = State(settings)  # what `facade user|client|token|audit` open
    state.database.dispose()
    found = modes(settings.data_dir)
    assert {"facade.db", KEY_FILE_NAME} <= set(found)
    assert loose(found) == {}


@pytest.fixture
def older_version_dir(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A data directory as facade 0.1 left it under umask 022: 0755 and 0644 everywhere,
    the database open in WAL mode (so -wal and -shm exist), and a file that is not facade's."""
    previous = os.umask(0o022)
    try:
        data_dir = tmp_path / "legacy"
        data_dir.mkdir()
        holder = sqlite3.connect(data_dir / "facade.db")
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE scratch (x)")
        holder.execute("INSERT INTO scratch VALUES (1)")
        holder.commit()
        (data_dir / DEMO_FILE).write_text("[]")
        job = data_dir / "exports" / "job-1"
        job.mkdir(parents=True)
        (job / "001-Patient-1.ndjson").write_text("{}\n")
        (data_dir / "operator-notes.txt").write_text("not facade's")
        os.chmod(data_dir, 0o755)
    finally:
        os.umask(previous)
    yield data_dir, holder
    holder.close()


async def test_a_loose_directory_from_an_older_version_is_tightened_at_start(
    older_version_dir: tuple[Path, sqlite3.Connection],
    sandbox: SandboxState,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data_dir, _holder = older_version_dir
    before = modes(data_dir)
    assert before["."] == 0o755 and before["facade.db-wal"] == 0o644  # the attack's starting point
    settings = Settings(data_dir=data_dir, public_base_url=FHIR_BASE, client_requests_per_minute=0)
    with caplog.at_level(logging.WARNING, logger="facade.store"):
        runtime = await build_runtime(settings, sandbox=sandbox, clock=clock)
    await runtime.aclose()

    after = modes(data_dir)
    assert after.pop("operator-notes.txt") == 0o644, "a file that is not facade's is left alone"
    assert loose(after) == {}
    assert {"facade.db", "facade.db-wal", "facade.db-shm", DEMO_FILE} <= set(after)
    lines = [r.getMessage() for r in caplog.records if "owner-only" in r.getMessage()]
    assert len(lines) == 1 and "755" in lines[0]
    assert str(data_dir) not in lines[0] and "Patient" not in lines[0]  # counts, never paths

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="facade.store"):
        runtime = await build_runtime(settings, sandbox=sandbox, clock=clock)
    await runtime.aclose()
    assert not [r for r in caplog.records if "owner-only" in r.getMessage()], "said only once"


def test_a_symlink_planted_for_a_state_file_is_refused(tmp_path: Path) -> None:
    directory = private_dir(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("untouched")
    (directory / DEMO_FILE).symlink_to(elsewhere)
    with pytest.raises(NotPrivate):
        open_private(directory / DEMO_FILE, "w")
    assert elsewhere.read_text() == "untouched"


def test_a_data_dir_the_operator_symlinked_to_another_volume_is_made_private(
    tmp_path: Path,
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir(mode=0o755)
    os.chmod(volume, 0o755)
    (tmp_path / "data").symlink_to(volume)
    private_dir(tmp_path / "data")
    assert stat.S_IMODE(volume.stat().st_mode) == 0o700


def test_an_existing_loose_file_is_made_0600_when_facade_writes_it(
    tmp_path: Path, permissive_umask: None
) -> None:
    path = tmp_path / "state.json"
    path.write_text("{}")
    os.chmod(path, 0o666)
    with open_private(path, "a") as handle:
        handle.write("\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "{}\n"
