"""Real headless Chromium for tests, driven over the Chrome DevTools Protocol on a pipe
(--remote-debugging-pipe: no chromedriver, no network), and facade under uvicorn on a
loopback port, so browser tests meet real HTTP, real CORS and real cookies.

Needs Debian's `chromium` package at /usr/bin/chromium: without it the browser tests FAIL
(the `chromium` and `browser` fixtures are in tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import uvicorn
from cryptography.fernet import Fernet

from facade.app import create_app
from facade.settings import Settings

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


#: What the redirect_uri shows by default: a page that only says it received the redirect.
RECEIVED_PAGE = "<!doctype html><title>app</title><p id='done'>received</p>"


class RedirectCatcher:
    """An app on its own origin: serves `page` at /callback (its redirect_uri) and records
    the query of every request there. A test may set `page` once it knows what to put in."""

    def __init__(self, page: str = RECEIVED_PAGE) -> None:
        self.page = page
        self.queries: list[dict[str, list[str]]] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if urlsplit(self.path).path != "/callback":  # e.g. the browser's /favicon.ico
                    self.send_error(404)
                    return
                catcher.queries.append(parse_qs(urlsplit(self.path).query))
                body = catcher.page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.origin}/callback"
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

    def __init__(self, data_dir: Path, on_ready: Any, **settings: Any):
        self.port = free_port()
        self.settings = Settings(
            host="127.0.0.1",
            port=self.port,
            data_dir=data_dir,
            secret_key=Fernet.generate_key().decode(),
            sandbox_patients=3,
            **settings,
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


def log_in_and_consent(
    browser: Browser, username: str, password: str, *, consent_shows: str = "true"
) -> None:
    """On facade's login page: sign in, then allow every scope offered on the consent page
    once the JavaScript expression `consent_shows` holds there."""
    browser.wait_for("!!document.getElementById('password')", "the login page")
    assert browser.evaluate("document.querySelector('label[for=username]') !== null")
    browser.evaluate(
        f"document.getElementById('username').value = {json.dumps(username)};"
        f"document.getElementById('password').value = {json.dumps(password)};"
        "document.getElementById('login').click();"
    )
    browser.wait_for("!!document.getElementById('allow')", "the consent page")
    assert browser.evaluate(consent_shows), consent_shows
    browser.evaluate("document.getElementById('allow').click()")


def missing_chromium() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        return (
            f"Chromium is required at {CHROMIUM} for the browser tests: "
            "install Debian's packages with `apt-get install -y chromium chromium-driver`."
        )
    return None
