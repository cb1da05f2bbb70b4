"""A standalone patient launch in real headless Chromium, over real HTTP.

facade runs under uvicorn on a loopback port; a tiny in-test app listens on another port
for the redirect. Chromium is driven through the Chrome DevTools Protocol over
--remote-debugging-pipe (no chromedriver, no network). It opens the authorize URL, logs in,
consents and lands on the app's redirect_uri; the test then exchanges the code with PKCE.
Needs Debian's `chromium` package at /usr/bin/chromium: without it this test FAILS.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet

from facade.app import create_app
from facade.core.compartment import CompartmentMapping
from facade.runtime import Runtime
from facade.settings import Settings
from mappings.drchrono import REGISTRY
from tests.chart import patient_of

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
]
PASSWORD = "a long browser password"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"
STEP_TIMEOUT = 30.0
#: Run in the child: put the pipe ends at fds 3 and 4, where chromium looks, then exec it.
_PLACE_PIPES = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedirectCatcher:
    """The app's redirect_uri: records the query of every request to /callback."""

    def __init__(self) -> None:
        self.queries: list[dict[str, list[str]]] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if urlsplit(self.path).path != "/callback":  # e.g. the browser's /favicon.ico
                    self.send_error(404)
                    return
                catcher.queries.append(parse_qs(urlsplit(self.path).query))
                body = b"<!doctype html><title>app</title><p id='done'>received</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RedirectCatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Browser:
    """Chromium over CDP on a pipe: fd 3 carries our commands in, fd 4 its answers out."""

    def __init__(self, profile: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Move chromium's ends above 3 and 4 so that placing them there cannot clobber them.
        to_chrome_r, from_chrome_w = (_above_ten(to_chrome_r), _above_ten(from_chrome_w))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PLACE_PIPES,
                str(to_chrome_r),
                str(from_chrome_w),
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.session = ""

    def send(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if kw.get("session", self.session):
            message["sessionId"] = kw.get("session", self.session)
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"CDP {method}: {answer['error']}")
                return answer.get("result", {})

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return dict(json.loads(raw))

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url}, session="")
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, session=""
        )
        self.session = attached["sessionId"]

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, what: str) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.evaluate(expression):
                    return
            except RuntimeError:
                pass  # the page is navigating
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; at {self.evaluate('location.href')}")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            self.send("Browser.close", session="")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def _above_ten(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class FacadeServer:
    """facade under uvicorn in a thread, on a free loopback port, with its own data dir."""

    def __init__(self, data_dir: Path, on_ready: Any):
        self.port = free_port()
        self.settings = Settings(
            host="127.0.0.1",
            port=self.port,
            data_dir=data_dir,
            secret_key=Fernet.generate_key().decode(),
            sandbox_patients=3,
        )
        app = create_app(self.settings, on_ready=on_ready)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", ws="none", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FacadeServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("facade did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"Chromium is required at {CHROMIUM} for the browser launch test: "
            "install Debian's packages with `apt-get install -y chromium chromium-driver`."
        )
    return CHROMIUM


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[Browser]:
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    driven = Browser(profile)
    try:
        yield driven
    finally:
        driven.close()


def test_standalone_patient_launch_in_chromium(browser: Browser, tmp_path: Path) -> None:
    prepared: dict[str, str] = {}
    runtimes: list[Runtime] = []

    def on_ready(runtime: Runtime) -> None:
        assert runtime.authorization is not None and runtime.sandbox is not None
        patients = runtime.sandbox.dataset.endpoint("patients")
        patient = str(patients[0]["id"])
        prepared["other"] = str(patients[1]["id"])
        runtime.authorization.users.create("browser-patient", PASSWORD, f"Patient/{patient}")
        made = runtime.authorization.clients.register(
            name="Browser test app",
            auth_method="none",
            redirect_uris=[prepared["redirect_uri"]],
            scope="",
        )
        prepared.update(patient=patient, client_id=made.client.client_id)
        runtimes.append(runtime)

    with RedirectCatcher() as app:
        prepared["redirect_uri"] = app.url
        with FacadeServer(tmp_path / "facade", on_ready) as facade:
            fhir_base = f"{facade.base}/fhir"
            discovery = httpx.get(f"{fhir_base}/.well-known/smart-configuration").json()
            verifier = f"{secrets.token_hex(18)}-{secrets.token_hex(18)}"
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .decode()
                .rstrip("=")
            )
            state = secrets.token_hex(8)
            query = urlencode(
                {
                    "response_type": "code",
                    "client_id": prepared["client_id"],
                    "redirect_uri": app.url,
                    "scope": SCOPE,
                    "state": state,
                    "aud": fhir_base,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                }
            )
            browser.open(f"{discovery['authorization_endpoint']}?{query}")

            browser.wait_for("!!document.getElementById('password')", "the login page")
            assert browser.evaluate("document.querySelector('label[for=username]') !== null")
            browser.evaluate(
                "document.getElementById('username').value = 'browser-patient';"
                f"document.getElementById('password').value = {json.dumps(PASSWORD)};"
                "document.getElementById('login').click();"
            )
            browser.wait_for("!!document.getElementById('allow')", "the consent page")
            assert browser.evaluate("!!document.getElementById('offline-notice')")
            browser.evaluate("document.getElementById('allow').click()")
            browser.wait_for("!!document.getElementById('done')", "the app's redirect_uri")

            assert len(app.queries) == 1
            received = app.queries[0]
            assert received["state"] == [state] and "error" not in received
            token = httpx.post(
                discovery["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": received["code"][0],
                    "redirect_uri": app.url,
                    "code_verifier": verifier,
                    "client_id": prepared["client_id"],
                },
            )
            assert token.status_code == 200, token.text
            assert "no-store" in token.headers["cache-control"]
            body = token.json()
            assert body["token_type"] == "Bearer"
            assert body["patient"] == prepared["patient"]
            assert set(body["scope"].split()) == set(SCOPE.split())
            assert body["access_token"] and body["id_token"] and body["refresh_token"]
            assert_reads_the_whole_chart_and_nothing_else(
                fhir_base, body["access_token"], prepared["patient"], prepared["other"]
            )
            # The audit log holds the launch (authorization, token) and the chart reads.
            records = runtimes[0].audit.query(client_id=prepared["client_id"])
            kinds = {(r.interaction, r.patient_id, r.outcome) for r in records}
            assert ("authorize", prepared["patient"], "success") in kinds
            assert ("token", prepared["patient"], "success") in kinds
            assert ("read", prepared["patient"], "success") in kinds
            assert ("search", prepared["patient"], "success") in kinds
            assert ("read", prepared["patient"], "not-found") in kinds  # the other patient


def assert_reads_the_whole_chart_and_nothing_else(
    fhir_base: str, access_token: str, mine: str, other: str
) -> None:
    """The launch's token reads every patient-data type of its patient, and none of another."""
    headers = {"Authorization": f"Bearer {access_token}"}
    with httpx.Client(headers=headers, timeout=30, trust_env=False) as client:
        assert client.get(f"{fhir_base}/Patient/{mine}").status_code == 200
        assert client.get(f"{fhir_base}/Patient/{other}").status_code == 404
        types_with_data = 0
        for mapping in REGISTRY:
            if not isinstance(mapping, CompartmentMapping):
                continue
            url: str | None = f"{fhir_base}/{mapping.resource_type}?patient={mine}&_count=200"
            found: list[dict[str, Any]] = []
            while url:
                response = client.get(url)
                assert response.status_code == 200, (mapping.resource_type, response.text)
                bundle = response.json()
                found += [e["resource"] for e in bundle.get("entry", [])]
                url = next((k["url"] for k in bundle["link"] if k["relation"] == "next"), None)
            types_with_data += bool(found)
            for resource in found:
                assert patient_of(resource) == mine, (mapping.resource_type, resource["id"])
            theirs = client.get(f"{fhir_base}/{mapping.resource_type}?patient={other}").json()
            assert not theirs.get("entry"), mapping.resource_type
        assert types_with_data >= 15, "the showcase patient's chart spans every clinical type"
