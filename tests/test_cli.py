"""The operator's command line: `facade serve`, `facade sandbox drchrono`, `facade connect`.

Real processes on loopback ports, driven over real HTTP: what an operator types and reads is
the contract. Every wait is bounded and every process is killed when its test ends.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facade.settings import Settings, SettingsError

STARTUP_SECONDS = 30.0

FACADE = shutil.which("facade", path=str(Path(sys.executable).parent)) or str(
    Path(sys.executable).parent / "facade"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The test runner's environment without any FACADE_* setting of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACADE_")}
    env.update(PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.update(extra)
    return env


class Running:
    """A facade process whose merged stdout/stderr is read line by line on a thread."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        cwd: Path | None = None,
        *,
        program: str = FACADE,
        own_session: bool = False,
    ):
        self.args = args
        self.process = subprocess.Popen(
            [program, *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=own_session,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = STARTUP_SECONDS) -> re.Match[str]:
        """The first output line (from now on) matching `pattern`; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"facade {self.args[0]} did not print {pattern!r}:\n{self.output}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"facade {self.args[0]} exited before {pattern!r}:\n{self.output}")
            self.lines.append(line)
            if match := compiled.search(line):
                return match

    def drain(self, seconds: float = 0.0) -> None:
        """Collect whatever output has arrived (waiting up to `seconds` for more)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            if line is None:
                return
            self.lines.append(line)

    def wait_exit(self, timeout: float = STARTUP_SECONDS) -> int:
        code = self.process.wait(timeout=timeout)
        self.drain(1.0)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def facade() -> Iterator[type[Running]]:
    """Start facade processes with `facade(args, env)`; all of them are stopped afterwards."""
    started: list[Running] = []

    class Tracked(Running):
        def __init__(self, args: list[str], env: dict[str, str] | None = None):
            super().__init__(args, env if env is not None else clean_env())
            started.append(self)

    yield Tracked
    for process in reversed(started):
        process.stop()


def wait_until_listening(port: int, process: Running, timeout: float = STARTUP_SECONDS) -> None:
    """facade prints its banner at start-up, just before uvicorn binds the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            process.drain()
            pytest.fail(f"facade exited with {process.process.returncode}:\n{process.output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {timeout} s:\n{process.output}")


def http_client() -> httpx.Client:
    return httpx.Client(timeout=20.0, trust_env=False)


def operator_token(data_dir: Path, port: int) -> str:
    """An access token from `facade token`, for the server on `port` using `data_dir`."""
    result = subprocess.run(
        [str(FACADE), "token", "--data-dir", str(data_dir)],
        env=clean_env(FACADE_PORT=str(port)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["access_token"])


def all_patients(base_url: str, token: str) -> list[dict]:
    """Every Patient of `GET {base}/Patient`, following the Bundle's next links."""
    patients: list[dict] = []
    url: str | None = f"{base_url}/Patient?_count=3"
    pages = 0
    with http_client() as client:
        client.headers["Authorization"] = f"Bearer {token}"
        while url is not None:
            response = client.get(url)
            assert response.status_code == 200, response.text
            bundle = response.json()
            assert bundle["resourceType"] == "Bundle"
            assert bundle["type"] == "searchset"
            patients.extend(entry["resource"] for entry in bundle.get("entry", []))
            url = next((li["url"] for li in bundle["link"] if li["relation"] == "next"), None)
            pages += 1
            assert pages <= 20, "paging did not end"
    assert pages > 1, "more than 3 patients at _count=3 take more than one page"
    return patients


def assert_serves_patients(base_url: str, count: int, data_dir: Path) -> None:
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    unauthenticated = httpx.get(f"{base_url}/Patient", trust_env=False, timeout=20.0)
    assert unauthenticated.status_code == 401
    patients = all_patients(base_url, operator_token(data_dir, port))
    assert [p["resourceType"] for p in patients] == ["Patient"] * count
    assert len({p["id"] for p in patients}) == count


def assert_serves_metadata(base_url: str) -> None:
    with http_client() as client:
        response = client.get(f"{base_url}/metadata")
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] == "CapabilityStatement"


# -- facade serve --------------------------------------------------------------------------


def test_serve_with_flags_prints_the_base_url_and_serves_the_embedded_sandbox(
    facade: type[Running], tmp_path: Path
) -> None:
    port = free_port()
    args = ["serve", "--port", str(port), "--data-dir", str(tmp_path / "d")]
    server = facade([*args, "--patients", "7", "--seed", "3"])

    server.wait_for(re.escape(f"FHIR base URL http://127.0.0.1:{port}/fhir"))
    server.wait_for(r"connected to the embedded DrChrono sandbox \(7 synthetic patients")
    wait_until_listening(port, server)

    assert_serves_patients(f"http://127.0.0.1:{port}/fhir", 7, tmp_path / "d")
    assert_serves_metadata(f"http://127.0.0.1:{port}/fhir")


def test_every_serve_option_is_also_an_environment_variable(
    facade: type[Running], tmp_path: Path
) -> None:
    port = free_port()
    env = clean_env(
        FACADE_PORT=str(port),
        FACADE_DATA_DIR=str(tmp_path / "d"),
        FACADE_SANDBOX_PATIENTS="7",
        FACADE_SANDBOX_SEED="3",
    )
    server = facade(["serve"], env)

    server.wait_for(re.escape(f"FHIR base URL http://127.0.0.1:{port}/fhir"))
    server.wait_for(r"connected to the embedded DrChrono sandbox \(7 synthetic patients, seed 3\)")
    wait_until_listening(port, server)

    assert_serves_patients(f"http://127.0.0.1:{port}/fhir", 7, tmp_path / "d")
    assert_serves_metadata(f"http://127.0.0.1:{port}/fhir")


def test_serve_never_logs_search_values(facade: type[Running], tmp_path: Path) -> None:
    port = free_port()
    args = ["serve", "--port", str(port), "--data-dir", str(tmp_path / "d"), "--patients", "3"]
    server = facade(args)
    wait_until_listening(port, server)

    token = operator_token(tmp_path / "d", port)
    with http_client() as client:
        response = client.get(
            f"http://127.0.0.1:{port}/fhir/Patient?birthdate=1961-07-23",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    server.stop()
    server.drain(2.0)

    assert "date_of_birth" not in server.output
    assert "1961-07-23" not in server.output


# -- the real-account path: sandbox on its own, connect, serve -------------------------------


def test_connect_stores_encrypted_credentials_and_serve_uses_that_account(
    facade: type[Running], tmp_path: Path
) -> None:
    data_dir = tmp_path / "d"
    sandbox_port, redirect_port, serve_port = free_port(), free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"

    # The secret reaches both processes through a file, never their command lines (ps).
    client_secret = "sandbox-secret-from-a-file"
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(client_secret + "\n")
    secret_file.chmod(0o600)
    sandbox = facade(
        ["sandbox", "drchrono", "--port", str(sandbox_port), "--patients", "5", "--seed", "2",
         "--client-secret-file", str(secret_file)]
    )  # fmt: skip
    client_id = sandbox.wait_for(r"client id: (\S+)").group(1)
    assert sandbox.wait_for(r"client secret: (\S+)").group(1) == client_secret
    assert "--client-secret-stdin" in sandbox.wait_for(r"^connect with: ").string
    wait_until_listening(sandbox_port, sandbox)

    connect = facade(
        [
            "connect",
            "drchrono",
            "--base-url",
            sandbox_url,
            "--client-id",
            client_id,
            "--client-secret-file",
            str(secret_file),
            "--data-dir",
            str(data_dir),
            "--redirect-port",
            str(redirect_port),
            "--no-browser",
            "--timeout",
            "30",
        ]
    )
    # The sandbox approves at once: connect takes the code from the authorize answer
    # itself, with no browser and no wait for its callback (--timeout is 30 s).
    started = time.monotonic()
    assert connect.wait_exit() == 0, connect.output
    assert time.monotonic() - started < 20
    assert "approved at once" in connect.output
    assert "connected" in connect.output
    assert "warning: --client-secret" not in connect.output
    assert not any(client_secret in arg for arg in sandbox.args + connect.args)

    # The stored connection's secrets are Fernet tokens, and the client secret is nowhere
    # in the database files in plain text.
    with sqlite3.connect(data_dir / "facade.db") as db:
        rows = db.execute(
            "SELECT base_url, client_id, client_secret_enc, access_token_enc, refresh_token_enc"
            " FROM upstream_connection"
        ).fetchall()
    assert len(rows) == 1
    base_url, stored_client_id, *secrets = rows[0]
    assert (base_url, stored_client_id) == (sandbox_url, client_id)
    assert all(value.startswith("gAAAAA") for value in secrets)
    for db_file in data_dir.glob("facade.db*"):
        assert client_secret.encode() not in db_file.read_bytes(), db_file.name

    # Real patient data over plain HTTP needs an explicit word that this is local development.
    refused = subprocess.run(
        [str(FACADE), "serve", "--data-dir", str(data_dir), "--port", str(serve_port)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "FACADE_ALLOW_HTTP=local-development" in refused.stdout + refused.stderr
    server = facade(
        ["serve", "--data-dir", str(data_dir), "--port", str(serve_port)],
        clean_env(FACADE_ALLOW_HTTP="local-development"),
    )
    line = server.wait_for(r"^connected to ")
    assert f"DrChrono at {sandbox_url}" in line.string
    assert "embedded" not in line.string
    wait_until_listening(serve_port, server)

    assert_serves_patients(f"http://127.0.0.1:{serve_port}/fhir", 5, data_dir)


# -- help and bad settings -----------------------------------------------------------------


def test_a_changing_sandbox_announces_its_changes_to_a_verified_webhook_on_the_real_clock(
    facade: type[Running],
) -> None:
    import hashlib
    import hmac
    import http.server
    from urllib.parse import parse_qs, urlsplit

    secret = "e3b1c4a9f07d2865b1a3c9d04f7e2b68a5c1d3e9"
    hooks: queue.Queue[tuple[str, dict]] = queue.Queue()

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            msg = parse_qs(urlsplit(self.path).query)["msg"][0]
            answer = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()
            self._answer(json.dumps({"secret_token": answer}).encode())

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.headers["X-drchrono-signature"] == secret:
                hooks.put((self.headers["X-drchrono-event"], body))
            self._answer(b"{}")

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    receiver = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        port = free_port()
        sandbox = facade(
            ["sandbox", "drchrono", "--port", str(port), "--patients", "3",
             "--changes-per-hour", "7200"]
        )  # fmt: skip
        client_id = sandbox.wait_for(r"client id: (\S+)").group(1)
        client_secret = sandbox.wait_for(r"client secret: (\S+)").group(1)
        sandbox.wait_for(r"changing 7200 records an hour")
        wait_until_listening(port, sandbox)
        setup = {
            "callback_url": f"http://127.0.0.1:{receiver.server_port}/hooks",
            "secret_token": secret,
            "events": ["PATIENT_CREATE", "PATIENT_MODIFY", "APPOINTMENT_CREATE",
                       "APPOINTMENT_MODIFY"],
        }  # fmt: skip
        answer = httpx.post(
            f"http://127.0.0.1:{port}/sandbox/webhook", json=setup, auth=(client_id, client_secret)
        )
        assert answer.json()["active"] is True
        event, body = hooks.get(timeout=20)  # two changes a second: one of these comes soon
        assert event in setup["events"]
        assert body["receiver"]["callback_url"] == setup["callback_url"]
        assert "id" in body["object"]
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_help_lists_every_environment_variable() -> None:
    result = subprocess.run(
        [FACADE, "--help"], env=clean_env(), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    for name in (
        "FACADE_HOST",
        "FACADE_PORT",
        "FACADE_DATA_DIR",
        "FACADE_DATABASE_URL",
        "FACADE_SECRET_KEY",
        "FACADE_SANDBOX_PATIENTS",
        "FACADE_SANDBOX_SEED",
        "FACADE_UPSTREAM_HOURLY_LIMIT",
        "FACADE_LOG_LEVEL",
    ):
        assert name in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("FACADE_PORT", "abc", "valid integer"),
        ("FACADE_PORT", "80000", "less than or equal to 65535"),
        ("FACADE_LOG_LEVEL", "loud", "'info'"),
        ("FACADE_ALLOW_HTTP", "yes", "'local-development'"),
        ("FACADE_UPSTREAM_TIMEOUT_SECONDS", "-1", "greater than 0"),
        ("FACADE_SANDBOX_PATIENTS", "0", "greater than or equal to 1"),
        ("FACADE_REGISTRATION", "wide-open", "'approval' or 'open'"),
    ],
)
def test_a_bad_environment_value_exits_2_with_a_message_and_no_traceback(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    result = subprocess.run(
        [FACADE, "serve", "--data-dir", str(tmp_path)],
        env=clean_env(**{variable: value}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"facade: setting {variable}: "), result.stderr
    assert says in result.stderr and repr(value) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_bad_option_value_is_refused_like_its_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [FACADE, "serve", "--data-dir", str(tmp_path), "--patients", "0"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "FACADE_SANDBOX_PATIENTS" in result.stderr and "Traceback" not in result.stderr


def test_a_secret_setting_is_checked_but_never_echoed() -> None:
    with pytest.raises(SettingsError, match="FACADE_SECRET_KEY: .*must be a Fernet key") as refused:
        Settings.from_env({"FACADE_SECRET_KEY": "s3cret-value"})
    assert "s3cret" not in str(refused.value)
    key = "A" * 43 + "="
    assert key not in repr(Settings.from_env({"FACADE_SECRET_KEY": key}))
    assert Settings.from_env({"FACADE_PORT": "", "FACADE_LOG_LEVEL": "DEBUG"}).log_level == "debug"
