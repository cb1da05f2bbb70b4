"""facade as several processes (scripts/cluster.sh on loopback): the DrChrono sandbox as the
vendor in its own process, 2 API replicas and 2 export workers on one PostgreSQL database.

What one process did alone must hold across them: a token from one replica works on the
other, a paging cursor continues there, a disabled client is refused by both at once, an
export kicked off on one is polled and downloaded on the other, a worker killed mid-export
(`kill -9`) has its job finished by the other with the same files, and the processes
together never spend more of the vendor's quota than it has, nor meet its 429.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from facade.bulk.client import client_assertion, load_credentials
from tests.databases import fresh_postgres_database
from tests.test_cli import FACADE, Running, clean_env, free_port

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 120.0


@dataclass
class Cluster:
    script: Running
    directory: Path
    database_url: str
    ports: tuple[int, int]
    sandbox_port: int

    def url(self, replica: int, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[replica]}{path}"

    def pid(self, role: str) -> int:
        for line in (self.directory / "cluster.pids").read_text().splitlines():
            name, pid = line.split()
            if name == role:
                return int(pid)
        raise KeyError(role)

    def facade(self, *args: str) -> subprocess.CompletedProcess[str]:
        """An operator command on the deployment's state."""
        return subprocess.run(
            [FACADE, *args, "--data-dir", str(self.directory)],
            env=clean_env(FACADE_DATABASE_URL=self.database_url),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def sandbox_usage(self) -> dict[str, object]:
        with httpx.Client(trust_env=False) as client:
            answer = client.get(f"http://127.0.0.1:{self.sandbox_port}/sandbox/usage")
        answer.raise_for_status()
        return dict(answer.json())


class ClusterScript(Running):
    """scripts/cluster.sh, read line by line like a facade process; stopped as a group."""

    def __init__(self, env: dict[str, str]):
        script = str(REPO / "scripts" / "cluster.sh")
        super().__init__(["cluster.sh"], env, program=script, own_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _start(tmp: Path, **settings: str) -> Iterator[Cluster]:
    with fresh_postgres_database("facade_cluster") as url:
        ports = (free_port(), free_port())
        sandbox_port = free_port()
        env = clean_env(
            CLUSTER_SKIP_INSTALL="1",
            CLUSTER_DIR=str(tmp / "cluster"),
            CLUSTER_PORTS=f"{ports[0]} {ports[1]}",
            CLUSTER_SANDBOX_PORT=str(sandbox_port),
            CLUSTER_PATIENTS="30",
            FACADE_DATABASE_URL=url,
            FACADE_LOG_LEVEL="info",
            **settings,
        )
        script = ClusterScript(env)
        try:
            script.wait_for(r"^cluster ready", timeout=START_SECONDS)
            yield Cluster(script, tmp / "cluster", url, ports, sandbox_port)
        finally:
            script.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Exports paced at 2 vendor calls a second, so a worker can be killed in the middle of one.
    yield from _start(tmp_path_factory.mktemp("cluster"), FACADE_UPSTREAM_BURST_PER_SECOND="2")


@dataclass
class Backend:
    client_id: str
    key_file: Path


@pytest.fixture(scope="module")
def backend(cluster: Cluster) -> Backend:
    key_file = cluster.directory.parent / "backend.jwk"
    added = cluster.facade(
        "client", "add", "--name", "payer", "--scope", "system/*.rs",
        "--generate-key", "ES384", "--private-key-out", str(key_file),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    return Backend(json.loads(added.stdout)["client_id"], key_file)


def token_from(cluster: Cluster, replica: int, backend: Backend) -> httpx.Response:
    """A client_credentials token asked of one replica (the assertion names the deployment's
    one token endpoint, which every replica serves)."""
    audience = f"http://127.0.0.1:{cluster.ports[0]}/auth/token"
    credentials = load_credentials(backend.client_id, backend.key_file)
    with httpx.Client(trust_env=False, timeout=30) as client:
        return client.post(
            cluster.url(replica, "/auth/token"),
            data={
                "grant_type": "client_credentials",
                "scope": "system/*.rs",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": client_assertion(credentials, audience, time.time()),
            },
        )


def fhir(cluster: Cluster, replica: int, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=cluster.url(replica, ""),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
        trust_env=False,
        timeout=60,
    )


def local(url: str) -> str:
    """An absolute link's path and query (links name the advertised base)."""
    return re.sub(r"^https?://[^/]+", "", url)


def test_a_token_and_a_cursor_from_one_replica_work_on_the_other(
    cluster: Cluster, backend: Backend
) -> None:
    issued = token_from(cluster, 0, backend)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    with fhir(cluster, 1, token) as b:
        first = b.get("/fhir/Patient", params={"_count": 5})
        assert first.status_code == 200, first.text
    page = first.json()
    [following] = [link["url"] for link in page["link"] if link["relation"] == "next"]
    with fhir(cluster, 0, token) as a:
        second = a.get(local(following))
        whole = a.get("/fhir/Patient", params={"_count": 10})
    assert second.status_code == 200, second.text
    ids = [e["resource"]["id"] for e in page["entry"] + second.json()["entry"]]
    assert ids == [e["resource"]["id"] for e in whole.json()["entry"]]
    assert len(set(ids)) == 10


def test_a_client_disabled_on_one_is_refused_by_every_replica_at_once(
    cluster: Cluster, backend: Backend, tmp_path: Path
) -> None:
    key_file = tmp_path / "short-lived.jwk"
    added = cluster.facade(
        "client", "add", "--name", "short-lived", "--scope", "system/*.rs",
        "--generate-key", "ES384", "--private-key-out", str(key_file),
    )  # fmt: skip
    client = Backend(json.loads(added.stdout)["client_id"], key_file)
    token = token_from(cluster, 1, client).json()["access_token"]
    for replica in (0, 1):
        with fhir(cluster, replica, token) as http:
            assert http.get("/fhir/Patient", params={"_count": 1}).status_code == 200
    disabled = cluster.facade("client", "disable", client.client_id)
    assert disabled.returncode == 0, disabled.stderr
    for replica in (0, 1):
        with fhir(cluster, replica, token) as http:
            refused = http.get("/fhir/Patient", params={"_count": 1})
        assert refused.status_code == 401
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert token_from(cluster, replica, client).status_code in (400, 401)


def _export(cluster: Cluster, token: str) -> str:
    with fhir(cluster, 0, token) as a:
        kicked = a.get("/fhir/$export", headers={"Prefer": "respond-async"})
    assert kicked.status_code == 202, kicked.text
    return local(kicked.headers["Content-Location"])


def _finished(cluster: Cluster, replica: int, backend: Backend, status_path: str) -> dict:
    deadline = time.monotonic() + 300
    token = token_from(cluster, replica, backend).json()["access_token"]
    while time.monotonic() < deadline:
        with fhir(cluster, replica, token) as http:
            answer = http.get(status_path)
        if answer.status_code == 200:
            return dict(answer.json())
        assert answer.status_code == 202, answer.text
        time.sleep(1)
    pytest.fail(f"the export at {status_path} did not finish:\n{cluster.script.output[-4000:]}")


def _files(cluster: Cluster, replica: int, backend: Backend, manifest: dict) -> dict[str, bytes]:
    token = token_from(cluster, replica, backend).json()["access_token"]
    with fhir(cluster, replica, token) as http:
        files = {}
        for entry in manifest["output"] + manifest["error"]:
            name = local(entry["url"]).rsplit("/", 1)[1]
            answer = http.get(local(entry["url"]), headers={"Accept": "application/fhir+ndjson"})
            assert answer.status_code == 200, answer.text
            files[name] = answer.content
    return files


def test_an_export_survives_its_worker_killed_and_is_served_by_the_other_replica(
    cluster: Cluster, backend: Backend
) -> None:
    token = token_from(cluster, 0, backend).json()["access_token"]
    status_path = _export(cluster, token)
    job_id = status_path.rsplit("/", 1)[1]
    started = cluster.script.wait_for(rf"\[(worker-\d)\] .*Starting job .*{job_id}", timeout=60)
    running_on = started.group(1)
    # Mid-export: once it has spent a few vendor calls, polled on the other replica.
    deadline = time.monotonic() + 60
    while True:
        with fhir(cluster, 1, token) as b:
            progress = b.get(status_path)
        assert progress.status_code == 202, progress.text
        spent = re.search(r"(\d+)/~\d+ vendor calls", progress.headers["X-Progress"])
        if spent and int(spent.group(1)) >= 4:
            break
        assert time.monotonic() < deadline, progress.headers["X-Progress"]
        time.sleep(0.3)
    os.kill(cluster.pid(running_on), signal.SIGKILL)
    killed_at = time.monotonic()

    other = "worker-2" if running_on == "worker-1" else "worker-1"
    cluster.script.wait_for(rf"\[{other}\] .*Starting job .*{job_id}", timeout=120)
    took_over = time.monotonic() - killed_at
    manifest = _finished(cluster, 1, backend, status_path)
    finished = time.monotonic() - killed_at
    print(f"the other worker took the export over {took_over:.1f} s after the kill")
    print(f"and finished it {finished:.1f} s after the kill")
    assert manifest["error"] == []
    interrupted = _files(cluster, 1, backend, manifest)

    # The same export, never interrupted, run by the surviving worker.
    again = _finished(cluster, 0, backend, _export(cluster, token))
    assert _files(cluster, 0, backend, again) == interrupted
    assert {e["type"] for e in manifest["output"]} >= {"Patient", "Condition", "Observation"}


# -- the quota, shared ----------------------------------------------------------------------

QUOTA = 300


@pytest.fixture(scope="module")
def small_quota(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The vendor allows 300 calls an hour, and facade is told so."""
    yield from _start(
        tmp_path_factory.mktemp("quota"),
        CLUSTER_VENDOR_LIMIT=str(QUOTA),
        # The vendor's limit is under test here, not facade's per-client one.
        FACADE_CLIENT_REQUESTS_PER_MINUTE="0",
    )


def test_replicas_and_workers_together_spend_one_quota_without_meeting_a_429(
    small_quota: Cluster,
) -> None:
    cluster = small_quota
    token = json.loads(cluster.facade("token", "--scope", "system/*.rs").stdout)["access_token"]
    with fhir(cluster, 0, token) as a:
        patients = [e["resource"]["id"] for e in a.get("/fhir/Patient?_count=30").json()["entry"]]
        kicked = a.get("/fhir/$export", headers={"Prefer": "respond-async"})
    assert kicked.status_code == 202, kicked.text

    def search(n: int) -> httpx.Response:
        replica, patient = n % 2, patients[n % len(patients)]
        kind = ("Condition", "Observation", "AllergyIntolerance", "Encounter")[n % 4]
        with fhir(cluster, replica, token) as http:
            answer = http.get(
                f"/fhir/{kind}",
                params={"patient": patient},
                headers={"Cache-Control": "no-cache"},
            )
        answer.extensions["received"] = time.time()
        return answer

    refusals: list[httpx.Response] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for answer in pool.map(search, range(600)):
            if answer.status_code != 200:
                refusals.append(answer)

    usage = cluster.sandbox_usage()
    statuses = dict(usage["statuses"])  # type: ignore[call-overload]
    assert "429" not in statuses, usage
    by_hour = dict(usage["countedByHour"])  # type: ignore[call-overload]
    assert max(by_hour.values()) <= QUOTA, usage  # each clock hour's quota (the test may span two)
    assert refusals, "the quota was never spent"
    for answer in refusals:
        assert answer.status_code == 503, answer.text
        assert answer.json()["issue"][0]["code"] == "throttled"
        # Honest: the hourly budget frees calls at the top of the hour, whichever process
        # answers (DrChrono's quota is per clock hour).
        received = datetime.fromtimestamp(answer.extensions["received"], UTC)
        until_the_hour = 3600 - (received.minute * 60 + received.second)
        assert abs(int(answer.headers["Retry-After"]) - until_the_hour) <= 2


# -- the mirror, synced by one worker -------------------------------------------------------


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from _start(tmp_path_factory.mktemp("mirror"), FACADE_MIRROR="on")


def _printed(cluster: Cluster, pattern: str) -> re.Match[str]:
    """The first line the cluster printed, or prints, that matches `pattern`."""
    for line in cluster.script.lines:
        if found := re.search(pattern, line):
            return found
    return cluster.script.wait_for(pattern, timeout=60)


def _backfilled(cluster: Cluster) -> dict:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        shown = cluster.facade("mirror", "status", "--json")
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        if status["complete"]:
            return dict(status)
        time.sleep(2)
    pytest.fail(f"the mirror's backfill did not complete:\n{cluster.script.output[-4000:]}")


def test_one_worker_syncs_the_mirror_every_replica_serves_it_and_another_takes_over(
    mirrored: Cluster,
) -> None:
    cluster = mirrored
    started = _printed(cluster, r"\[(worker-\d)\] .*Starting job facade\.mirror-sync")
    syncing = started.group(1)
    _backfilled(cluster)
    token = json.loads(cluster.facade("token", "--scope", "system/*.rs").stdout)["access_token"]
    for replica in (0, 1):  # neither syncs; both answer from the store
        with fhir(cluster, replica, token) as http:
            patients = http.get("/fhir/Patient", params={"_count": 50})
            assert patients.status_code == 200, patients.text
            first = patients.json()["entry"][0]["resource"]["id"]
            conditions = http.get("/fhir/Condition", params={"patient": first})
        assert conditions.status_code == 200, conditions.text
        assert patients.headers["X-Upstream-Calls"] == conditions.headers["X-Upstream-Calls"] == "0"

    os.kill(cluster.pid(syncing), signal.SIGKILL)
    other = "worker-2" if syncing == "worker-1" else "worker-1"
    cluster.script.wait_for(rf"\[{other}\] .*Starting job facade\.mirror-sync", timeout=120)
    assert cluster.script.output.count("Starting job facade.mirror-sync") == 2
