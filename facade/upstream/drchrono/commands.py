"""DrChrono's command-line flows: `facade sandbox drchrono` and `facade connect drchrono`.

The generic CLI (facade/cli.py) adds the arguments every vendor shares (host, port, sandbox
size; data directory, database) and dispatches here through the vendor entry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import logging
import secrets
import sys
import threading
import webbrowser
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn

from facade.errors import FacadeError
from facade.secret_input import SecretNotGiven, SecretOption
from facade.settings import Settings

if TYPE_CHECKING:
    from facade.upstream.drchrono.sandbox.state import SandboxState

#: The vendor app's client secret: from a file, stdin, the environment or a prompt. The
#: sandbox reads the same variable, so one export serves `sandbox` and `connect` alike.
VENDOR_CLIENT_SECRET = SecretOption(
    name="client-secret",
    env="FACADE_VENDOR_CLIENT_SECRET",
    what="the client secret",
    note=" (on a terminal without either, facade asks)",
)
SANDBOX_CLIENT_SECRET = SecretOption(
    name="client-secret",
    env="FACADE_VENDOR_CLIENT_SECRET",
    what="the sandbox app's secret",
    required=False,
    note=" (default: made from the seed)",
)


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """`facade sandbox drchrono`'s own arguments (host, port and size are the CLI's)."""
    SANDBOX_CLIENT_SECRET.add_to(parser)
    parser.add_argument(
        "--hourly-limit",
        type=int,
        default=500,
        help="API calls per hour the sandbox allows an app (default: %(default)s)",
    )
    parser.add_argument(
        "--changes-per-hour",
        type=float,
        default=0.0,
        help="records the practice creates, modifies or deletes an hour, announced to the "
        "app's webhook (configure it with POST /sandbox/webhook) (default: none)",
    )


def add_connect_arguments(parser: argparse.ArgumentParser) -> None:
    """`facade connect drchrono`'s own arguments (data directory and database are the CLI's)."""
    parser.add_argument("--base-url", required=True, help="e.g. https://app.drchrono.com")
    parser.add_argument("--client-id", required=True, help="your vendor API app's client id")
    VENDOR_CLIENT_SECRET.add_to(parser)
    parser.add_argument(
        "--redirect-port",
        type=int,
        default=8765,
        help="local port for the OAuth redirect (default: %(default)s)",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="print the URL instead of opening a browser (an EHR that approves at once, "
        "like the sandbox, needs neither)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait (default: %(default)s)"
    )


def serve_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from facade.cli import configure_logging
    from facade.upstream.drchrono.sandbox.app import create_sandbox_app
    from facade.upstream.drchrono.sandbox.generator import generate
    from facade.upstream.drchrono.sandbox.state import SandboxLimits, SandboxState

    patients = args.patients if args.patients is not None else settings.sandbox_patients
    seed = args.seed if args.seed is not None else settings.sandbox_seed
    try:
        client_secret = SANDBOX_CLIENT_SECRET.read(args)
    except SecretNotGiven as refusal:
        print(f"facade: {refusal}", file=sys.stderr)
        return 2
    configure_logging(settings)
    state = SandboxState.with_default_app(
        generate(patients=patients, seed=seed),
        client_secret=client_secret,
        seed=seed,
        limits=SandboxLimits(hourly_limit=args.hourly_limit),
    )
    app = state.default_app
    base = f"http://{args.host}:{args.port}"
    print(f"DrChrono sandbox at {base} ({patients} patients, seed {seed})", flush=True)
    print(f"client id: {app.client_id}", flush=True)
    print(f"client secret: {app.client_secret}", flush=True)
    # The secret goes in through a pipe (printf is a shell builtin), never as an argument.
    print(
        f"connect with: printf '%s' '{app.client_secret}' | facade connect drchrono "
        f"--base-url {base} --client-id {app.client_id} --client-secret-stdin",
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(state),
            host=args.host,
            port=args.port,
            log_level=settings.log_level,
            access_log=False,
        )
    )
    if args.changes_per_hour > 0:
        print(f"changing {args.changes_per_hour:g} records an hour", flush=True)
    asyncio.run(_serve_changing(server, state, args.changes_per_hour, seed, base))
    return 0


async def _serve_changing(
    server: uvicorn.Server, state: SandboxState, changes_per_hour: float, seed: int, base: str
) -> None:
    """Serve until stopped; with a change rate, the practice changes on the real clock and
    due webhook hooks go out, checked every second."""
    from facade.upstream.drchrono.sandbox.changes import ChangeGenerator

    changes = (
        ChangeGenerator(state, changes_per_hour=changes_per_hour, seed=seed, base_url=base)
        if changes_per_hour > 0
        else None
    )

    async def pump() -> None:
        while True:
            try:
                if changes is not None:
                    await changes.run_until(state.clock())
                await state.webhooks.deliver_due()
            except Exception:  # a sandbox bug must not stop the practice for good
                logging.getLogger("facade").exception("sandbox change or webhook pump failed")
            await asyncio.sleep(1.0)

    pumping = asyncio.create_task(pump())
    try:
        await server.serve()
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        await state.webhooks.aclose()


def connect(args: argparse.Namespace, settings: Settings) -> int:
    from facade.store.connections import ConnectionStore
    from facade.store.database import Database
    from facade.store.secrets import SecretBox
    from facade.upstream.drchrono.connection import complete_authorization
    from facade.upstream.drchrono.oauth import authorize_url

    settings = settings.with_overrides(data_dir=args.data_dir, database_url=args.database_url)
    try:
        client_secret = VENDOR_CLIENT_SECRET.read(args) or ""
    except SecretNotGiven as refusal:
        print(f"facade: {refusal}", file=sys.stderr)
        return 2
    redirect_uri = f"http://127.0.0.1:{args.redirect_port}/drchrono/callback"
    state = secrets.token_urlsafe(16)
    url = authorize_url(args.base_url, args.client_id, redirect_uri, state)
    received: dict[str, str] = {}
    done = threading.Event()

    class Callback(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            query = parse_qs(urlsplit(self.path).query)
            if urlsplit(self.path).path != "/drchrono/callback":
                self.send_error(404)
                return
            received.update({k: v[0] for k, v in query.items()})
            ok = query.get("state", [""])[0] == state and "code" in query
            self.send_response(200 if ok else 400)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            message = "facade is connected; you can close this window." if ok else "Failed."
            self.wfile.write(message.encode())
            done.set()

        def log_message(self, format: str, *args: object) -> None:
            return  # the query string carries the authorization code

    approved = _approved_at_once(url, redirect_uri, settings.upstream_timeout_seconds)
    if approved is not None:
        # The EHR (the sandbox does) answered the authorize URL with the code itself:
        # nobody has to open a browser or wait.
        print("the EHR approved at once; no browser needed", flush=True)
        received.update(approved)
    else:
        server = http.server.HTTPServer(("127.0.0.1", args.redirect_port), Callback)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"Open this URL to authorize facade at DrChrono:\n{url}", flush=True)
        if not args.no_browser:
            webbrowser.open(url)
        try:
            if not done.wait(args.timeout):
                print("facade: no authorization arrived in time", file=sys.stderr)
                return 1
        finally:
            server.shutdown()
    if received.get("state") != state or "code" not in received:
        print(f"facade: authorization failed ({received.get('error', 'no code')})", file=sys.stderr)
        return 1

    async def exchange() -> None:
        async with httpx.AsyncClient(timeout=settings.upstream_timeout_seconds) as http_client:
            credentials = await complete_authorization(
                http_client,
                args.base_url,
                args.client_id,
                client_secret,
                received["code"],
                redirect_uri,
                datetime.now(UTC),
            )
        database = Database(settings.resolved_database_url)
        database.migrate()
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        ConnectionStore(database, box).save(args.vendor, credentials)
        database.dispose()

    try:
        asyncio.run(exchange())
    except FacadeError as exc:
        print(f"facade: connecting failed: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # the CLI's last line of defence: no traceback, no SQL, no secrets
        print(f"facade: connecting failed ({type(exc).__name__}); see the log", file=sys.stderr)
        logging.getLogger("facade").debug("connect failed", exc_info=True)
        return 1
    print(f"connected: facade serve --data-dir {settings.data_dir} now serves {args.base_url}")
    return 0


def _approved_at_once(url: str, redirect_uri: str, timeout: float) -> dict[str, str] | None:
    """The redirect's query when the authorize URL redirects straight to `redirect_uri` (an
    EHR that approves without a login, like the sandbox), else None: a login page, an
    error, or no answer means a person has to authorize in a browser."""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            answer = client.get(url)
    except httpx.HTTPError:
        return None
    location = answer.headers.get("location", "")
    if not answer.is_redirect or urlsplit(location)._replace(query="").geturl() != redirect_uri:
        return None
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
