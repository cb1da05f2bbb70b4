"""The `facade` command: serve, run a vendor sandbox on its own, connect an account.

Every option has a FACADE_* environment variable (see `facade --help`); options win.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from facade import __version__
from facade.clock import Clock
from facade.settings import Settings, SettingsError, setting_names
from facade.store.served_base import ServedBase, forget_served_base, record_served_base
from facade.vendors import vendor, vendor_names

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
    if hasattr(args, "mirror_command"):  # facade mirror status | purge
        return int(args.mirror_command(args, settings))
    if hasattr(args, "vendor_command"):  # facade sandbox <vendor> | facade connect <vendor>
        return int(args.vendor_command(args, settings))
    if args.command == "worker":
        return _work(args, settings)
    return _serve(args, settings)


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
        "--vendor",
        choices=vendor_names(),
        help=f"EHR vendor (FACADE_VENDOR, default: {DEFAULTS.vendor})",
    )
    _add_sandbox_size(serve)
    serve.add_argument(
        "--database-url",
        help="SQLAlchemy URL (FACADE_DATABASE_URL, default: SQLite in the data directory)",
    )
    serve.add_argument(
        "--mirror",
        action="store_const",
        const=True,
        help="keep a local, encrypted copy of the vendor's records, synced in the background "
        "(FACADE_MIRROR=on; see the README's Change-capture mirror)",
    )

    worker = commands.add_parser(
        "worker",
        help="run exports from the job queue (FACADE_JOBS=queue; any number, on any machine "
        "that reaches the database)",
    )
    worker.add_argument(
        "--data-dir", type=Path, help="state directory (FACADE_DATA_DIR, default: .facade)"
    )
    worker.add_argument(
        "--database-url", help="the deployment's PostgreSQL URL (FACADE_DATABASE_URL)"
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        help="exports run at once "
        f"(FACADE_BULK_WORKER_CONCURRENCY, default: {DEFAULTS.bulk_worker_concurrency})",
    )

    sandbox = commands.add_parser("sandbox", help="run a vendor sandbox on its own")
    sandboxes = sandbox.add_subparsers(dest="vendor", metavar="vendor", required=True)
    connect = commands.add_parser("connect", help="authorize facade at a vendor account")
    connects = connect.add_subparsers(dest="vendor", metavar="vendor", required=True)
    for name in vendor_names():
        entry = vendor(name)
        own = sandboxes.add_parser(name, help=f"the {entry.title} sandbox")
        own.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
        )
        own.add_argument("--port", type=int, default=8900, help="port (default: %(default)s)")
        _add_sandbox_size(own)
        entry.serve_sandbox.add_arguments(own)
        own.set_defaults(vendor_command=entry.serve_sandbox.run)
        own = connects.add_parser(name, help=f"authorize facade at a {entry.title} account")
        entry.connect.add_arguments(own)
        own.add_argument("--data-dir", type=Path, help="state directory (FACADE_DATA_DIR)")
        own.add_argument("--database-url", help="SQLAlchemy URL (FACADE_DATABASE_URL)")
        own.set_defaults(vendor_command=entry.connect.run)

    from facade import admin
    from facade.bulk import client as bulk_client
    from facade.mirror import commands as mirror_commands

    admin.add_parsers(commands)
    bulk_client.add_parsers(commands)
    mirror_commands.add_parsers(commands)
    return parser


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # httpx logs every request URL at INFO, query string included: vendor filters carry PHI
    # (names, birth dates). facade's own lines say what was called without the values.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _work(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from facade.jobs import run_worker
    from facade.runtime import build_runtime, stored_vendor_url

    settings = settings.with_overrides(
        data_dir=args.data_dir,
        database_url=args.database_url,
        bulk_worker_concurrency=args.concurrency,
    )
    configure_logging(settings)
    if not settings.database_url.startswith("postgresql"):
        print(
            "facade: a worker runs jobs from the PostgreSQL database the API processes share; "
            "give it with --database-url or FACADE_DATABASE_URL",
            file=sys.stderr,
        )
        return 2
    settings = settings.with_overrides(jobs="queue")
    if stored_vendor_url(settings) is None:
        print(
            f"facade: no {settings.vendor} connection is stored in this database; a worker "
            "serves the deployment's vendor account (`facade connect` first)",
            file=sys.stderr,
        )
        return 2

    async def work() -> None:
        runtime = await build_runtime(settings)
        assert runtime.exports is not None
        print(
            f"facade worker: running exports for {runtime.upstream_description}, "
            f"{settings.bulk_worker_concurrency} at a time",
            flush=True,
        )
        if runtime.mirror is not None:
            # Exports read the mirror here too, whichever worker runs its sync.
            runtime.mirror.serve_only()
        try:
            exports = runtime.exports
            concurrency = settings.bulk_worker_concurrency
            await run_worker(
                runtime.database, exports.runner, exports.store, concurrency, runtime.mirror
            )
        finally:
            await runtime.audit.drain()
            await runtime.aclose()

    asyncio.run(work())
    return 0


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
        mirror=args.mirror,
    )
    configure_logging(settings)
    vendor_url = stored_vendor_url(settings)
    refusal = insecure_http_refusal(settings, vendor_url) if vendor_url else None
    if refusal:
        print(f"facade: {refusal}", file=sys.stderr)
        return 2
    if settings.jobs == "queue" and vendor_url is None:
        print(
            f"facade: FACADE_JOBS=queue serves the deployment's stored {settings.vendor} "
            "connection, and none is stored in this database (`facade connect` first; the "
            "embedded sandbox is one process's own)",
            file=sys.stderr,
        )
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
        if runtime.mirror is not None:
            print(
                "mirror on: facade keeps an encrypted copy of the vendor's records, synced "
                f"within {settings.mirror_share:g} of its hourly calls; `facade mirror status "
                f"--data-dir {settings.data_dir}` shows how far it is",
                flush=True,
            )
        if runtime.sandbox is not None:
            from facade.auth.demo import ensure_demo_accounts
            from facade.auth.operator import Operator

            operator = Operator(runtime.database, runtime.box, Clock(), runtime.tokens)
            wanted = vendor(settings.vendor).sandbox.demo_accounts(runtime.sandbox)
            accounts = ensure_demo_accounts(operator, wanted, settings.data_dir)
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


if __name__ == "__main__":
    raise SystemExit(main())
