"""facade as several processes: what a second API process and a second worker buy.

Starts the production topology as local processes (scripts/cluster.sh: the DrChrono sandbox
as the vendor, API replicas, export workers, a PostgreSQL database made for the run and
dropped after) with the change-capture mirror on, waits for the mirror's backfill, then
measures in one run:

- search requests per second on mirror-backed data: `--concurrency` requests in flight for
  `--seconds`, a mix of US Core searches over the sandbox's patients, sent to one API process,
  then round robin to two;
- export resources per second: `--exports` system exports at once (from the mirror), run by
  one worker, then again once a second worker has joined;
- the vendor calls every process spent together against the one shared budget, as the
  sandbox counted them, by phase.

The per-client rate limit is off for the run (FACADE_CLIENT_REQUESTS_PER_MINUTE=0): the load
comes from one client. Everything shares this machine's cores: the load generator, the
sandbox and PostgreSQL too. Measured and printed, never asserted.

    .venv/bin/python -m benchmarks.scale [--patients 200] [--seconds 15] [--exports 4]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.stats import machine
from facade.store.database import temporary_database

REPO = Path(__file__).resolve().parents[1]
FACADE = str(Path(sys.executable).parent / "facade")
POSTGRES = os.environ.get(
    "FACADE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
#: The searches of the mix, each for one patient (`{}`): what a chart view asks.
SEARCHES = (
    "/fhir/Patient?_id={}",
    "/fhir/Condition?patient={}",
    "/fhir/Observation?patient={}&category=vital-signs",
    "/fhir/AllergyIntolerance?patient={}",
    "/fhir/MedicationRequest?patient={}",
    "/fhir/Encounter?patient={}",
)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Topology:
    """A running cluster.sh: its output, ports and state."""

    process: subprocess.Popen[str]
    directory: Path
    database_url: str
    ports: tuple[int, int]
    sandbox_port: int
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    extra: list[subprocess.Popen[str]] = field(default_factory=list)

    def wait_for(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(re.search(pattern, line) for line in list(self.lines)):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        tail = "\n".join(self.lines[-40:])
        raise RuntimeError(f"the cluster did not print {pattern!r}:\n{tail}")

    def facade(self, *args: str) -> str:
        result = subprocess.run(
            [FACADE, *args, "--data-dir", str(self.directory)],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return result.stdout

    def vendor_calls(self) -> int:
        with httpx.Client(trust_env=False) as client:
            usage = client.get(f"http://127.0.0.1:{self.sandbox_port}/sandbox/usage").json()
        return int(usage["counted"])

    def add_worker(self) -> None:
        worker = subprocess.Popen(
            [FACADE, "worker", "--data-dir", str(self.directory)],
            env={**self.env, "FACADE_JOBS": "queue"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.extra.append(worker)
        _read(worker, self.lines, "[worker-added] ")


def _read(process: subprocess.Popen[str], lines: list[str], prefix: str = "") -> None:
    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(prefix + line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()


@contextmanager
def cluster(patients: int, workdir: Path) -> Iterator[Topology]:
    with temporary_database(POSTGRES, "facade_scale") as url:
        ports = (_free_port(), _free_port())
        sandbox_port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACADE_")}
        env.update(
            CLUSTER_SKIP_INSTALL="1",
            CLUSTER_DIR=str(workdir / "cluster"),
            CLUSTER_PORTS=f"{ports[0]} {ports[1]}",
            CLUSTER_WORKERS="1",
            CLUSTER_SANDBOX_PORT=str(sandbox_port),
            CLUSTER_PATIENTS=str(patients),
            FACADE_DATABASE_URL=url,
            FACADE_MIRROR="on",
            FACADE_CLIENT_REQUESTS_PER_MINUTE="0",
            FACADE_LOG_LEVEL="warning",
            FACADE_ALLOW_HTTP="local-development",
            PYTHONUNBUFFERED="1",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        process = subprocess.Popen(
            [str(REPO / "scripts" / "cluster.sh")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        topology = Topology(process, workdir / "cluster", url, ports, sandbox_port, env)
        _read(process, topology.lines)
        try:
            topology.wait_for(r"^cluster ready", timeout=180)
            yield topology
        finally:
            for worker in topology.extra:
                worker.terminate()
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
            for worker in topology.extra:
                worker.wait(timeout=30)
            for started in (process, *topology.extra):
                if started.stdout is not None:
                    started.stdout.close()


def wait_for_backfill(topology: Topology, timeout: float = 900) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads(topology.facade("mirror", "status", "--json"))
        if status["complete"]:
            return dict(status)
        time.sleep(2)
    raise RuntimeError("the mirror's backfill did not complete")


@dataclass
class Load:
    requests: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    vendor_calls: int = 0

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def search_load(
    ports: Sequence[int], token: str, patients: list[str], concurrency: int, seconds: float
) -> Load:
    """`concurrency` clients sending the search mix round robin over `ports` for `seconds`."""
    urls = itertools.cycle(
        f"http://127.0.0.1:{port}{search.format(patient)}"
        for patient in patients
        for search in SEARCHES
        for port in ports
    )
    load = Load()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        headers=headers, limits=limits, trust_env=False, timeout=60
    ) as http:
        started = time.perf_counter()
        deadline = started + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                answer = await http.get(next(urls))
                load.requests += 1
                load.statuses[answer.status_code] += 1
                load.vendor_calls += int(answer.headers.get("X-Upstream-Calls", "0"))

        await asyncio.gather(*(client() for _ in range(concurrency)))
        load.seconds = time.perf_counter() - started
    return load


@dataclass
class Exports:
    resources: int
    seconds: float
    files_with_errors: int

    @property
    def per_second(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


def run_exports(topology: Topology, token: str, count: int) -> Exports:
    """`count` system exports kicked off at once; wall time until the last completes."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    base = f"http://127.0.0.1:{topology.ports[0]}"
    with httpx.Client(headers=headers, trust_env=False, timeout=60) as http:
        started = time.perf_counter()
        polls = []
        for _ in range(count):
            kicked = http.get(f"{base}/fhir/$export", headers={"Prefer": "respond-async"})
            kicked.raise_for_status()
            polls.append(re.sub(r"^https?://[^/]+", base, kicked.headers["Content-Location"]))
        manifests = []
        for poll in polls:
            while True:
                answer = http.get(poll)
                if answer.status_code == 200:
                    manifests.append(answer.json())
                    break
                answer.raise_for_status()
                time.sleep(0.05)
        seconds = time.perf_counter() - started
    resources = sum(entry["count"] for m in manifests for entry in m["output"])
    errors = sum(len(m["error"]) for m in manifests)
    return Exports(resources, seconds, errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0, help="each search phase")
    parser.add_argument("--concurrency", type=int, default=16, help="searches in flight")
    parser.add_argument("--exports", type=int, default=4, help="exports at once, each phase")
    args = parser.parse_args(argv)

    with (
        tempfile.TemporaryDirectory(prefix="facade-scale-") as scratch,
        cluster(args.patients, Path(scratch)) as topology,
    ):
        return _measure(topology, args)


def _measure(topology: Topology, args: argparse.Namespace) -> int:
    calls_at_start = topology.vendor_calls()
    status = wait_for_backfill(topology)
    calls_after_backfill = topology.vendor_calls()
    token = json.loads(topology.facade("token", "--scope", "system/*.rs"))["access_token"]
    with httpx.Client(trust_env=False, timeout=60) as http:
        listed = http.get(
            f"http://127.0.0.1:{topology.ports[0]}/fhir/Patient",
            params={"_count": str(min(args.patients, 250))},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    patients = [entry["resource"]["id"] for entry in listed["entry"]]

    def searches(ports: Sequence[int]) -> Load:
        return asyncio.run(search_load(ports, token, patients, args.concurrency, args.seconds))

    searches(topology.ports[:1])  # warm-up: opened bodies, connection pools
    one = searches(topology.ports[:1])
    two = searches(topology.ports)
    calls_after_searches = topology.vendor_calls()

    one_worker = run_exports(topology, token, args.exports)
    topology.add_worker()
    topology.wait_for(r"^\[worker-added\] facade worker: running exports", timeout=120)
    time.sleep(2)  # until it asks the queue for jobs
    two_workers = run_exports(topology, token, args.exports)
    calls_at_end = topology.vendor_calls()

    print(f"facade scale-out benchmark, {machine()}")
    print(
        f"  cluster: DrChrono sandbox ({args.patients} patients) in its own process, 2 API "
        "processes, 1 then 2 workers, one PostgreSQL database; mirror on"
    )
    endpoints = status["endpoints"]
    assert isinstance(endpoints, list)
    records = sum(int(e["records"]) for e in endpoints)
    print(
        f"  mirror backfill: {records:,} records for "
        f"{calls_after_backfill - calls_at_start} vendor calls"
    )
    print(
        f"  search on mirror-backed data ({args.concurrency} in flight, {args.seconds:g} s, "
        f"{len(SEARCHES)} US Core searches over {len(patients)} patients):"
    )
    for name, load in (("1 API process", one), ("2 API processes", two)):
        print(
            f"    {name}: {load.per_second:,.0f} requests/s ({load.requests} requests, "
            f"statuses {dict(load.statuses)}, {load.vendor_calls} vendor calls)"
        )
    print(f"    ratio 2/1: {two.per_second / max(one.per_second, 1e-9):.2f}x")
    print(f"  system $export from the mirror, {args.exports} at once:")
    for name, run in (("1 worker", one_worker), ("2 workers", two_workers)):
        print(
            f"    {name}: {run.per_second:,.0f} resources/s ({run.resources:,} resources in "
            f"{run.seconds:.2f} s, {run.files_with_errors} error files)"
        )
    print(f"    ratio 2/1: {two_workers.per_second / max(one_worker.per_second, 1e-9):.2f}x")
    print(
        "  vendor calls, counted by the sandbox for every process together (one shared "
        f"budget): backfill {calls_after_backfill - calls_at_start}, searches "
        f"{calls_after_searches - calls_after_backfill}, exports "
        f"{calls_at_end - calls_after_searches}; total {calls_at_end} of the hour's "
        f"{topology.env.get('CLUSTER_VENDOR_LIMIT', '500')}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
