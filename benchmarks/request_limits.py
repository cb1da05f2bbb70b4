"""`/fhir/metadata` latency while worst-case requests run: do request limits and bounded
matching keep one request from stalling the others?

facade serves real HTTP on a loopback port over the embedded sandbox (uvicorn in a child
process, so the load generator never competes with it for one interpreter lock). A probe asks
`/fhir/metadata` one request after another, first with no load (the baseline), then while
workers repeat one worst-case request: an ordinary search for reference, the largest body the
limit allows on Patient/_search, a body over it, the longest query string the limit allows, one
over it, the most values the bounds allow, 10,000 values. It prints the probe's p50/p99/max
under each load and the worst-case request's own time and answers. Numbers only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlencode

import httpx
import uvicorn

from benchmarks.stats import machine, ms, percentile
from facade.app import create_app
from facade.auth.operator import Operator
from facade.clock import Clock
from facade.fhir.query import MAX_OR_VALUES, MAX_TOTAL_VALUES, MAX_VALUE_LENGTH
from facade.runtime import build_runtime
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.generator import generate
from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState

HOST = "127.0.0.1"
SEED = 1
UNLIMITED_HOURLY = 10**9
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class Load:
    label: str
    method: str
    path: str
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def worst_cases(body_limit: int, query_limit: int) -> list[Load]:
    """The requests a client can send that cost facade the most, within and past the limits."""
    # Accepted and matching nobody, so every FHIR page walks the most vendor pages it may.
    # Values are distinct per clause and short enough that no part of a name can skip them.
    clauses = MAX_TOTAL_VALUES // MAX_OR_VALUES
    many = [
        ("name:contains", ",".join(f"q{c}x{v}z" for v in range(MAX_OR_VALUES)))
        for c in range(clauses)
    ]
    per_query = (query_limit - 200) // (MAX_VALUE_LENGTH + 1)
    longest_query = ",".join("q" * MAX_VALUE_LENGTH for _ in range(per_query))
    ten_thousand = ",".join(str(100000 + i) for i in range(10_000))
    return [
        Load(
            "reference: an ordinary search matching nobody (GET name=qqqq)",
            "GET",
            "/fhir/Patient?name=qqqq",
        ),
        Load(
            f"largest body allowed ({body_limit:,} B form name=…), Patient/_search",
            "POST",
            "/fhir/Patient/_search",
            b"name=" + b"a" * (body_limit - 5),
            FORM,
        ),
        Load(
            "body 10 MB (over the limit), Patient/_search",
            "POST",
            "/fhir/Patient/_search",
            b"name=" + b"a" * 10_000_000,
            FORM,
        ),
        Load(
            f"longest query allowed (GET name= {per_query} × {MAX_VALUE_LENGTH} chars)",
            "GET",
            "/fhir/Patient?" + urlencode({"name": longest_query}),
        ),
        Load(
            "query 20 KB (over the limit), GET Patient?name=…",
            "GET",
            "/fhir/Patient?" + urlencode({"name": "q" * 20_000}),
        ),
        Load(
            f"most values allowed (POST {clauses} × name:contains × {MAX_OR_VALUES} values)",
            "POST",
            "/fhir/Patient/_search",
            urlencode(many).encode(),
            FORM,
        ),
        Load(
            "10,000 values (POST _id=…)",
            "POST",
            "/fhir/Patient/_search",
            urlencode({"_id": ten_thousand}).encode(),
            FORM,
        ),
    ]


class ServedFacade:
    """facade over the sandbox on a loopback port, in a child process (so the load
    generator here never competes with the server for one interpreter lock)."""

    def __init__(self, patients: int):
        self.patients = patients
        self.port = 0
        self.token = ""
        self.max_body_bytes = 0
        self.max_query_bytes = 0
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=serve_in_child, args=(patients, child_conn), name="facade-server", daemon=True
        )

    def __enter__(self) -> ServedFacade:
        self._process.start()
        if not self._conn.poll(600):
            self._process.terminate()
            raise RuntimeError("facade did not start within 10 minutes")
        self.port, self.token, self.max_body_bytes, self.max_query_bytes = self._conn.recv()
        return self

    def __exit__(self, *_: object) -> None:
        self._conn.send("stop")
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()


def serve_in_child(patients: int, conn: Connection) -> None:
    logging.getLogger("facade").setLevel(logging.WARNING)
    asyncio.run(_serve(patients, conn))


async def _serve(patients: int, conn: Connection) -> None:
    state = SandboxState.with_default_app(
        generate(patients=patients, seed=SEED),
        seed=SEED,
        limits=SandboxLimits(hourly_limit=UNLIMITED_HOURLY, burst_per_second=None),
    )
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    port = listener.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="facade-bench-") as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            host=HOST,
            port=port,
            upstream_hourly_limit=UNLIMITED_HOURLY,
            upstream_burst_per_second=0,
            client_requests_per_minute=0,
        )
        runtime = await build_runtime(settings, sandbox=state, clock=Clock())
        operator = Operator(runtime.database, runtime.box, Clock(), runtime.tokens)
        operator.add_client(
            name="benchmarks", redirect_uris=[], jwks='{"keys": []}', client_id="benchmarks"
        )
        token = operator.mint_token(client_id="benchmarks", scope="user/*.rs")
        config = uvicorn.Config(
            create_app(settings, runtime), log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        conn.send((port, token, settings.max_body_bytes, settings.max_query_bytes))
        await asyncio.to_thread(conn.recv)  # the parent says stop
        server.should_exit = True
        await serving
        await runtime.aclose()


@dataclass
class Figures:
    label: str
    probe: list[float]
    load_times: list[float]
    load_statuses: dict[str, int]


def _client(served: ServedFacade) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://{HOST}:{served.port}",
        headers={"Authorization": f"Bearer {served.token}"},
        timeout=600,
    )


async def _probe(client: httpx.AsyncClient, count: int, pause: float) -> list[float]:
    times: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get("/fhir/metadata")
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        await asyncio.sleep(pause)
    return times


async def _repeat(
    served: ServedFacade,
    load: Load,
    stop: asyncio.Event,
    times: list[float],
    statuses: dict[str, int],
) -> None:
    async with _client(served) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = await client.request(
                    load.method, load.path, content=load.content or None, headers=load.headers
                )
                outcome = str(response.status_code)
            except httpx.HTTPError as exc:  # counted by kind, e.g. a connection reset
                outcome = type(exc).__name__
            times.append(time.perf_counter() - started)
            statuses[outcome] = statuses.get(outcome, 0) + 1


async def measure(
    served: ServedFacade, probes: int, workers: int, pause: float, loads: list[Load]
) -> list[Figures]:
    figures: list[Figures] = []
    async with _client(served) as probe:
        await _probe(probe, 20, 0)  # warm-up: connections, caches
        figures.append(Figures("no load (baseline)", await _probe(probe, probes, pause), [], {}))
        for load in loads:
            stop = asyncio.Event()
            times: list[float] = []
            statuses: dict[str, int] = {}
            tasks = [
                asyncio.create_task(_repeat(served, load, stop, times, statuses))
                for _ in range(workers)
            ]
            await asyncio.sleep(0.2)  # the load is running before the probe starts
            probed = await _probe(probe, probes, pause)
            stop.set()
            await asyncio.gather(*tasks)
            figures.append(Figures(load.label, probed, times, statuses))
    return figures


def run(
    patients: int,
    probes: int,
    workers: int,
    pause: float = 0.005,
    out: Callable[[str], None] = print,
) -> list[Figures]:
    out("== /fhir/metadata while worst-case requests run (uvicorn on loopback) ==")
    out(
        f"{patients} sandbox patients, {probes} sequential /metadata probes per row, {workers}"
        f" worker(s) repeating the load; {machine()}"
    )
    with ServedFacade(patients) as served:
        out(
            f"limits: body {served.max_body_bytes:,} B, query {served.max_query_bytes:,} B,"
            f" {MAX_OR_VALUES} values a parameter, {MAX_TOTAL_VALUES} a search,"
            f" {MAX_VALUE_LENGTH} chars a value"
        )
        loads = worst_cases(served.max_body_bytes, served.max_query_bytes)
        figures = asyncio.run(measure(served, probes, workers, pause, loads))
    out(
        f"{'load':<66} {'metadata p50':>12} {'p99':>11} {'max':>11}"
        f" {'load p50':>11} {'load max':>11}  answers"
    )
    for row in figures:
        load_p50 = ms(percentile(row.load_times, 0.5)) if row.load_times else f"{'-':>11}"
        load_max = ms(max(row.load_times)) if row.load_times else f"{'-':>11}"
        answers = ", ".join(f"{k}×{v}" for k, v in sorted(row.load_statuses.items())) or "-"
        p50, p99 = percentile(row.probe, 0.5), percentile(row.probe, 0.99)
        out(
            f"{row.label:<66} {ms(p50):>12} {ms(p99)} {ms(max(row.probe))}"
            f" {load_p50} {load_max}  {answers}"
        )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.request_limits")
    parser.add_argument("--patients", type=int, default=1000, help="sandbox patients (1000)")
    parser.add_argument(
        "--iterations", type=int, default=300, help="/metadata probes per row (300)"
    )
    parser.add_argument("--workers", type=int, default=2, help="concurrent load workers (2)")
    args = parser.parse_args(argv)
    run(args.patients, args.iterations, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
