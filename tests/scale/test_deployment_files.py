"""What an operator starts a deployment of several processes with: `facade worker`, the
queue setting, and compose.yaml. Each refuses what cannot work with a message, not a crash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from facade.settings import Settings, SettingsError
from tests.test_cli import FACADE, clean_env

REPO = Path(__file__).resolve().parents[2]


def test_a_worker_without_postgresql_says_what_it_needs(tmp_path: Path) -> None:
    result = subprocess.run(
        [FACADE, "worker", "--data-dir", str(tmp_path / "d")],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "PostgreSQL" in result.stderr and "--database-url" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_queue_needs_a_database_every_process_shares() -> None:
    try:
        Settings(jobs="queue")
    except SettingsError as refusal:
        assert "FACADE_JOBS=queue needs FACADE_DATABASE_URL=postgresql" in str(refusal)
    else:
        raise AssertionError("FACADE_JOBS=queue on SQLite was accepted")
    queued = Settings(jobs="queue", database_url="postgresql+psycopg://db/facade")
    assert queued.jobs == "queue"


def test_compose_runs_replicas_and_workers_on_one_database_and_key() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= {"postgres", "api", "worker", "proxy"}
    api, worker = services["api"], services["worker"]
    assert api["command"] == ["facade", "serve"] and api["deploy"]["replicas"] >= 2
    assert worker["command"][:2] == ["facade", "worker"] and worker["deploy"]["replicas"] >= 2
    for service in (api, worker):
        environment = service["environment"]
        assert environment["FACADE_JOBS"] == "queue"
        assert environment["FACADE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert environment["FACADE_SECRET_KEY"] == "${FACADE_SECRET_KEY:?}"  # never a default
        assert environment["FACADE_PUBLIC_BASE_URL"] == "${FACADE_PUBLIC_BASE_URL:?}"
    assert "api:8080" in services["proxy"]["command"]
