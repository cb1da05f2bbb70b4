"""Two practices on different vendors in a deployment of several processes: the DrChrono and
CareCloud sandboxes each in a process of their own, tenants `north` (DrChrono) and `south`
(CareCloud) connected to them, 2 API replicas and a worker on one PostgreSQL database with
the job queue. Each tenant serves its own data on every replica, refuses the other's tokens
on every replica, and an export kicked off on one replica is run by the worker and served by
the other."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.databases import fresh_postgres_database
from tests.test_cli import FACADE, Running, clean_env, free_port, wait_until_listening

pytestmark = pytest.mark.postgres


@dataclass
class Topology:
    data_dir: Path
    database_url: str
    ports: tuple[int, int]
    env: dict[str, str]
    processes: list[Running] = field(default_factory=list)

    def facade(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FACADE, *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def token(self, tenant: str) -> str:
        minted = self.facade("token", "--tenant", tenant, "--scope", "system/*.rs")
        assert minted.returncode == 0, minted.stderr
        return str(json.loads(minted.stdout)["access_token"])

    def get(self, replica: int, path: str, token: str, **headers: str) -> httpx.Response:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        with httpx.Client(trust_env=False, timeout=60) as http:
            return http.get(f"http://127.0.0.1:{self.ports[replica]}{path}", headers=headers)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    scratch = tmp_path_factory.mktemp("tenants-cluster")
    with fresh_postgres_database("facade_tenant_cluster") as url:
        ports = (free_port(), free_port())
        env = clean_env(
            FACADE_DATABASE_URL=url,
            FACADE_JOBS="queue",
            FACADE_ALLOW_HTTP="local-development",
            FACADE_PUBLIC_BASE_URL=f"http://127.0.0.1:{ports[0]}/fhir",
        )
        topology = Topology(scratch / "state", url, ports, env)
        try:
            _start(topology, scratch)
            yield topology
        finally:
            for process in reversed(topology.processes):
                process.stop()


def _start(topology: Topology, scratch: Path) -> None:
    sandbox_env = clean_env()
    drchrono_port, carecloud_port = free_port(), free_port()
    secret = scratch / "drchrono-secret"
    secret.write_text("a-sandbox-app-secret-for-the-test\n")
    drchrono = Running(
        ["sandbox", "drchrono", "--port", str(drchrono_port), "--patients", "6",
         "--client-secret-file", str(secret)],
        sandbox_env,
    )  # fmt: skip
    carecloud = Running(
        ["sandbox", "carecloud", "--port", str(carecloud_port), "--patients", "6",
         "--credentials-dir", str(scratch / "carecloud-login")],
        sandbox_env,
    )  # fmt: skip
    topology.processes += [drchrono, carecloud]
    hint = carecloud.wait_for(r"^connect with: (facade connect carecloud .*)").group(1)
    wait_until_listening(drchrono_port, drchrono)
    wait_until_listening(carecloud_port, carecloud)

    for name, vendor in (("north", "drchrono"), ("south", "carecloud")):
        added = topology.facade("tenant", "add", name, "--vendor", vendor)
        assert added.returncode == 0, added.stderr
    north = topology.facade(
        "connect", "drchrono", "--tenant", "north",
        "--base-url", f"http://127.0.0.1:{drchrono_port}", "--client-id", "facade-sandbox",
        "--client-secret-file", str(secret), "--no-browser", "--timeout", "30",
        "--redirect-port", str(free_port()),
    )  # fmt: skip
    assert north.returncode == 0, north.stderr + north.stdout
    south = topology.facade(*shlex.split(hint)[1:], "--tenant", "south")
    assert south.returncode == 0, south.stderr + south.stdout

    for port in topology.ports:
        replica = Running(["serve", "--data-dir", str(topology.data_dir), "--port", str(port)],
                          topology.env)  # fmt: skip
        topology.processes.append(replica)
    worker = Running(["worker", "--data-dir", str(topology.data_dir)], topology.env)
    topology.processes.append(worker)
    for port, replica in zip(topology.ports, topology.processes[2:4], strict=True):
        wait_until_listening(port, replica, timeout=120)
    worker.wait_for(r"facade worker: running exports .*tenant south", timeout=120)


def test_each_tenant_serves_its_own_data_on_every_replica_and_refuses_the_others_tokens(
    topology: Topology,
) -> None:
    tokens = {name: topology.token(name) for name in ("north", "south")}
    ids: dict[str, set[str]] = {}
    for name, token in tokens.items():
        for replica in (0, 1):
            answer = topology.get(replica, f"/{name}/fhir/Patient?_count=50", token)
            assert answer.status_code == 200, answer.text
            ids.setdefault(name, set()).update(e["resource"]["id"] for e in answer.json()["entry"])
            other = "south" if name == "north" else "north"
            refused = topology.get(replica, f"/{other}/fhir/Patient?_count=1", token)
            assert refused.status_code == 401, refused.text
    assert ids["north"] and ids["south"] and not ids["north"] & ids["south"]
    implementations = {
        name: topology.get(1, f"/{name}/fhir/metadata", "").json()["implementation"]
        for name in tokens
    }
    assert "drchrono" in implementations["north"]["description"]
    assert "carecloud" in implementations["south"]["description"]


def test_a_tenants_export_is_queued_on_one_replica_run_by_a_worker_and_served_by_the_other(
    topology: Topology,
) -> None:
    south, north = topology.token("south"), topology.token("north")
    kicked = topology.get(
        0,
        "/south/fhir/$export?_type=Patient,Condition",
        south,
        Prefer="respond-async",
        Accept="application/fhir+json",
    )
    assert kicked.status_code == 202, kicked.text
    status_path = re.sub(r"^https?://[^/]+", "", kicked.headers["Content-Location"])
    assert status_path.startswith("/south/fhir/$export-status/")
    job = status_path.rsplit("/", 1)[1]
    assert topology.get(1, f"/north/fhir/$export-status/{job}", north).status_code == 404
    deadline = time.monotonic() + 120
    while (status := topology.get(1, status_path, south)).status_code == 202:
        assert time.monotonic() < deadline, status.headers.get("X-Progress")
        time.sleep(0.5)
    assert status.status_code == 200, status.text
    manifest = status.json()
    assert manifest["error"] == []
    for entry in manifest["output"]:
        path = re.sub(r"^https?://[^/]+", "", entry["url"])
        assert path.startswith("/south/fhir/$export-file/")
        answer = topology.get(1, path, south, Accept="application/fhir+ndjson")
        assert answer.status_code == 200
        assert len(answer.content.splitlines()) == entry["count"]
        assert topology.get(1, path.replace("/south/", "/north/"), north).status_code == 404
