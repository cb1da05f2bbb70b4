"""The `facade` command: serve, run the DrChrono sandbox on its own, connect an account.

Every option has a FACADE_* environment variable (see `facade --help`); options win.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import logging
import os
import secrets
import sys
import threading
import webbrowser
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn

from facade import __version__
from facade.clock import Clock
from facade.errors import FacadeError
from facade.secret_input import SecretNotGiven, SecretOption
from facade.settings import Settings, SettingsError, setting_names
from facade.store.served_base import ServedBase, forget_served_base, record_served_base

#: Settings as they are with nothing set, for the defaults help texts show.
DEFAULTS = Settings()


def _add_sandbox_size(parser: argparse.ArgumentParser) -> None:
    """The embedded sandbox's size and seed, as `serve` and `sandbox` both take them."""
    parser.add_argument(
        "--patients",
        type=int,
        help=f"synthetic patients (FACADE_SANDBOX_PATIENTS, default: {DEFAULTS.sandbox_patients})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help=f"sandbox generator seed (FACADE_SANDBOX_SEED, default: {DEFAULTS.sandbox_seed})",
    )


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


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return _run(args, Settings.from_env())
    except SettingsError as exc:  # from the environment, or an option of the same name
        print(f"facade: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in ("user", "client", "token", "launch", "audit"):
        from facade import admin

        return admin.run(args, settings)
    if hasattr(args, "bulk_command"):  # facade export | facade group (facade/bulk/client.py)
        return int(args.bulk_command(args, settings))
    handler = {"serve": _serve, "sandbox": _sandbox, "connect": _connect}[args.command]
    return handler(args, settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facade",
        description="A US Core 6.1.0 FHIR server in front of EHR APIs that do not speak FHIR.",
        epilog="Environment variables: " + ", ".join(setting_names()),
    )
    parser.add_argument("--version", action="version", version=f"facade {__version__}")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="serve FHIR (on the embedded sandbox by default)")
    serve.add_argument("--host", help="address to listen on (FACADE_HOST, default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (FACADE_PORT, default: 8080)")
    serve.add_argument(
        "--data-dir", type=Path, help="state directory (FACADE_DATA_DIR, default: .facade)"
    )
    serve.add_argument(
        "--vendor", choices=["drchrono"], help="EHR vendor (FACADE_VENDOR, default: drchrono)"
    )
    _add_sandbox_size(serve)
    serve.add_argument(
        "--database-url",
        help="SQLAlchemy URL (FACADE_DATABASE_URL, default: SQLite in the data directory)",
    )

    sandbox = commands.add_parser("sandbox", help="run a vendor sandbox on its own")
    sandbox.add_argument("vendor", choices=["drchrono"], help="the EHR the sandbox imitates")
    sandbox.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    sandbox.add_argument("--port", type=int, default=8900, help="port (default: %(default)s)")
    _add_sandbox_size(sandbox)
    SANDBOX_CLIENT_SECRET.add_to(sandbox)
    sandbox.add_argument(
        "--hourly-limit",
        type=int,
        default=500,
        help="API calls per hour the sandbox allows an app (default: %(default)s)",
    )

    connect = commands.add_parser("connect", help="authorize facade at a vendor account")
    connect.add_argument("vendor", choices=["drchrono"], help="the EHR vendor")
    connect.add_argument("--base-url", required=True, help="e.g. https://app.drchrono.com")
    connect.add_argument("--client-id", required=True, help="your vendor API app's client id")
    VENDOR_CLIENT_SECRET.add_to(connect)
    connect.add_argument("--data-dir", type=Path, help="state directory (FACADE_DATA_DIR)")
    connect.add_argument("--database-url", help="SQLAlchemy URL (FACADE_DATABASE_URL)")
    connect.add_argument(
        "--redirect-port",
        type=int,
        default=8765,
        help="local port for the OAuth redirect (default: %(default)s)",
    )
    connect.add_argument(
        "--no-browser",
        action="store_true",
        help="print the URL instead of opening a browser (an EHR that approves at once, "
        "like the sandbox, needs neither)",
    )
    connect.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait (default: %(default)s)"
    )

    from facade import admin
    from facade.bulk import client as bulk_client

    admin.add_parsers(commands)
    bulk_client.add_parsers(commands)
    return parser


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # httpx logs every request URL at INFO, query string included: vendor filters carry PHI
    # (names, birth dates). facade's own lines say what was called without the values.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from facade.app import create_app
    from facade.runtime import Runtime, insecure_http_refusal, stored_vendor_url

    settings = settings.with_overrides(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        vendor=args.vendor,
        sandbox_patients=args.patients,
        sandbox_seed=args.seed,
        database_url=args.database_url,
    )
    _configure_logging(settings)
    vendor_url = stored_vendor_url(settings)
    refusal = insecure_http_refusal(settings, vendor_url) if vendor_url else None
    if refusal:
        print(f"facade: {refusal}", file=sys.stderr)
        return 2

    if settings.binds_wildcard and not settings.public_base_url:
        print(
            f"facade: warning: listening on every interface ({settings.host or 'all'}) without "
            f"FACADE_PUBLIC_BASE_URL; advertising {settings.base_url} in discovery and token "
            "audiences. Set FACADE_PUBLIC_BASE_URL to the URL clients reach this server at.",
            file=sys.stderr,
            flush=True,
        )

    async def announce(runtime: Runtime) -> None:
        print(f"facade {__version__}: FHIR base URL {settings.base_url}", flush=True)
        # First, so `facade token` fits this server even while the EHR is being asked.
        record_served_base(
            settings.data_dir,
            ServedBase(
                base_url=settings.base_url,
                pid=os.getpid(),
                sandbox_patients=settings.sandbox_patients if runtime.sandbox else 0,
                sandbox_seed=settings.sandbox_seed if runtime.sandbox else 0,
            ),
        )
        problem = await runtime.upstream_problem()
        if problem is not None:
            print(
                f"facade: NOT connected to {runtime.upstream_description}: {problem} FHIR "
                "requests get a 5xx OperationOutcome (upstream-…) until the EHR answers"
                + ("" if runtime.sandbox else "; `facade connect` renews the authorization")
                + ".",
                file=sys.stderr,
                flush=True,
            )
        else:
            print(f"connected to {runtime.upstream_description}", flush=True)
        if runtime.sandbox is not None:
            from facade.auth.demo import ensure_demo_accounts
            from facade.auth.operator import Operator

            operator = Operator(runtime.database, runtime.box, Clock(), runtime.tokens)
            accounts = ensure_demo_accounts(operator, runtime.sandbox, settings.data_dir)
            print(f"sandbox logins (SMART launch at {settings.base_url}): {accounts}", flush=True)
            print(
                f"a token for curl: facade token --data-dir {settings.data_dir} "
                "--scope 'system/*.rs'",
                flush=True,
            )

    app = create_app(
        settings,
        on_ready=announce,
        on_stop=lambda: forget_served_base(settings.data_dir, os.getpid()),
    )
    # uvicorn's own access log would print query strings, which can hold PHI.
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False
    )
    return 0


def _sandbox(args: argparse.Namespace, settings: Settings) -> int:
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
    _configure_logging(settings)
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
    uvicorn.run(
        create_sandbox_app(state),
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        access_log=False,
    )
    return 0


def _connect(args: argparse.Namespace, settings: Settings) -> int:
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


if __name__ == "__main__":
    raise SystemExit(main())
