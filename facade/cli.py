"""The `facade` command: serve, run a vendor sandbox on its own, connect an account.

Every option has a FACADE_* environment variable (see `facade --help`); options win.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from facade import __version__
from facade.clock import Clock
from facade.settings import Settings, SettingsError, setting_names
from facade.store.database import Database
from facade.store.private_files import secure_data_dir
from facade.store.served_base import (
    ServedBase,
    forget_served_base,
    read_served_base,
    record_served_base,
)
from facade.tenants import (
    Tenant,
    TenantRefused,
    TenantRegistry,
    create_tenant_schema,
    tenant_settings,
)
from facade.vendors import vendor, vendor_names

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp

    from facade.runtime import Runtime

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
    if args.command == "tenant":
        return _tenant_command(args, settings)
    if getattr(args, "tenant", None):
        resolved = _tenant_of(args, settings)
        if isinstance(resolved, int):
            return resolved
        settings = resolved
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

    tenant = commands.add_parser(
        "tenant", help="manage the practices this deployment serves, each at /NAME/fhir"
    )
    tenant_actions = tenant.add_subparsers(dest="action", required=True)
    add = tenant_actions.add_parser(
        "add", help="register a practice (served from the next request)"
    )
    add.add_argument("name", help="its path segment: lower-case letters, digits, hyphens")
    add.add_argument("--vendor", required=True, choices=vendor_names(), help="its EHR vendor")
    add.add_argument(
        "--hourly-limit",
        type=int,
        help="its vendor account's calls an hour (default: FACADE_UPSTREAM_HOURLY_LIMIT)",
    )
    listing = tenant_actions.add_parser("list", help="list the practices, one JSON line each")
    changes = [listing]
    for action, what in (
        ("disable", "stop serving a practice (refused at once, in every process)"),
        ("enable", "serve a disabled practice again"),
    ):
        change = tenant_actions.add_parser(action, help=what)
        change.add_argument("name", help="the tenant's name")
        changes.append(change)
    for command in (add, *changes):
        command.add_argument("--data-dir", type=Path, help="the deployment's state directory")
        command.add_argument("--database-url", help="the deployment's database")

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
        own.add_argument("--tenant", help="the practice (`facade tenant add`) this account serves")
        own.set_defaults(vendor_command=entry.connect.run)

    from facade import admin
    from facade.bulk import client as bulk_client
    from facade.mirror import commands as mirror_commands

    admin.add_parsers(commands)
    bulk_client.add_parsers(commands)
    mirror_commands.add_parsers(commands)
    return parser


def _tenant_registry(settings: Settings) -> TenantRegistry:
    """The deployment's tenants (its database migrated first)."""
    secure_data_dir(settings.data_dir)
    database = Database(settings.resolved_database_url)
    database.migrate()
    return TenantRegistry(database)


def _tenant_of(args: argparse.Namespace, settings: Settings) -> Settings | int:
    """The settings of the tenant `--tenant` names (its own data directory, database, key and
    vendor); the command's --data-dir and --database-url name the deployment's."""
    settings = settings.with_overrides(
        data_dir=getattr(args, "data_dir", None), database_url=getattr(args, "database_url", None)
    )
    registry = _tenant_registry(settings)
    tenant = registry.get(args.tenant)
    registry.database.dispose()
    if tenant is None:
        print(f"facade: there is no tenant named {args.tenant!r}", file=sys.stderr)
        return 2
    if args.command == "connect" and args.vendor != tenant.vendor:
        print(
            f"facade: tenant {tenant.name} is served by {tenant.vendor}, not {args.vendor}",
            file=sys.stderr,
        )
        return 2
    own = tenant_settings(settings, tenant)  # its schema was made by `facade tenant add`
    # What the command reads as its own options now names the tenant's state.
    args.data_dir, args.database_url = own.data_dir, own.database_url or None
    return own


def _tenant_command(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.with_overrides(data_dir=args.data_dir, database_url=args.database_url)
    registry = _tenant_registry(settings)
    try:
        if args.action == "add":
            tenant = registry.add(args.name, args.vendor, args.hourly_limit)
            create_tenant_schema(registry.database, tenant.name)
            shown = [tenant]
        elif args.action == "list":
            shown = registry.all()
        else:
            status = "disabled" if args.action == "disable" else "active"
            shown = [registry.set_status(args.name, status)]
    except TenantRefused as refused:
        print(f"facade: {refused}", file=sys.stderr)
        return 2
    finally:
        registry.database.dispose()
    origin = settings.base_url.removesuffix("/fhir")
    for tenant in shown:
        # The running server's address for it when one serves it, else the settings'.
        served = read_served_base(settings.data_dir / "tenants" / tenant.name)
        base = served.base_url if served else f"{origin}/{tenant.name}/fhir"
        row = {**asdict(tenant), "fhir_base": base}
        print(json.dumps(row), flush=True)
    return 0


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

    from facade.jobs import queue_database, run_worker

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
    practices = _Practices(settings, _tenant_registry(settings))
    missing = practices.unconnected()
    if missing:
        print(f"facade: {missing}", file=sys.stderr)
        return 2

    async def work() -> None:
        queue = queue_database(settings.database_url)
        for name in practices.names():
            runtime = await practices.runtime(name)
            print(
                f"facade worker: running exports for {runtime.upstream_description}"
                + (f" (tenant {name})" if name else "")
                + f", {settings.bulk_worker_concurrency} at a time",
                flush=True,
            )
        try:
            await run_worker(queue, practices, settings.bulk_worker_concurrency)
        finally:
            await practices.aclose()
            queue.dispose()

    asyncio.run(work())
    return 0


class _Practices:
    """The practices a worker runs jobs for: the deployment's own (""), or each tenant; a
    runtime is built for each on first use (a tenant added later is found then)."""

    def __init__(self, settings: Settings, registry: TenantRegistry):
        import asyncio

        self._settings = settings
        self._registry = registry
        self._runtimes: dict[str, Runtime] = {}
        self._building = asyncio.Lock()

    def _settings_of(self, tenant: str) -> Settings:
        if not tenant:
            return self._settings
        found = self._registry.get(tenant)
        if found is None:
            raise LookupError(f"there is no tenant named {tenant!r}")
        return tenant_settings(self._settings, found)

    def names(self) -> list[str]:
        tenants = self._registry.all()
        return [t.name for t in tenants if t.active] if tenants else [""]

    def unconnected(self) -> str:
        """Why a practice cannot be served by workers (no stored connection), or ""."""
        from facade.runtime import stored_vendor_url

        for name in self.names():
            own = self._settings_of(name)
            if stored_vendor_url(own) is None:
                where = f" for tenant {name}" if name else ""
                return (
                    f"no {own.vendor} connection is stored{where}; workers serve the "
                    f"practice's vendor account (`facade connect {own.vendor}"
                    + (f" --tenant {name}" if name else "")
                    + "` first)"
                )
        return ""

    async def runtime(self, tenant: str) -> Runtime:
        from facade.runtime import build_runtime

        async with self._building:
            if tenant not in self._runtimes:
                runtime = await build_runtime(self._settings_of(tenant), tenant=tenant)
                if runtime.mirror is not None:
                    # Exports read the mirror here too, whichever worker runs its sync.
                    runtime.mirror.serve_only()
                self._runtimes[tenant] = runtime
            return self._runtimes[tenant]

    async def aclose(self) -> None:
        for runtime in self._runtimes.values():
            await runtime.audit.drain()
            await runtime.aclose()
        self._registry.database.dispose()


def _announcer(settings: Settings, tenant: str = "") -> Callable[[Runtime], Awaitable[None]]:
    """What `facade serve` prints once a facade (the deployment's, or a tenant's) serves."""
    # A tenant's data directory is DATA_DIR/tenants/NAME; its commands name the deployment's.
    deployment_dir = settings.data_dir.parent.parent if tenant else settings.data_dir
    option = f"--data-dir {deployment_dir}" + (f" --tenant {tenant}" if tenant else "")

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
                f"{option}` shows how far it is",
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
                f"a token for curl: facade token {option} --scope 'system/*.rs'",
                flush=True,
            )

    return announce


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from facade.app import create_app
    from facade.runtime import insecure_http_refusal, stored_vendor_url

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
    tenants = _tenant_registry(settings)
    if settings.jobs == "queue":
        # The embedded sandbox is one process's own: every process of a queue deployment
        # serves the stored vendor accounts.
        missing = _Practices(settings, tenants).unconnected()
        if missing:
            print(f"facade: FACADE_JOBS=queue: {missing}", file=sys.stderr)
            return 2

    if settings.binds_wildcard and not settings.public_base_url:
        print(
            f"facade: warning: listening on every interface ({settings.host or 'all'}) without "
            f"FACADE_PUBLIC_BASE_URL; advertising {settings.base_url} in discovery and token "
            "audiences. Set FACADE_PUBLIC_BASE_URL to the URL clients reach this server at.",
            file=sys.stderr,
            flush=True,
        )

    app: ASGIApp = create_app(
        settings,
        on_ready=_announcer(settings),
        on_stop=lambda: forget_served_base(settings.data_dir, os.getpid()),
    )
    if not tenants.all():
        tenants.database.dispose()  # the single practice's runtime opens its own
    else:
        from facade.rest.tenants import TenantRouter

        def tenant_app(own: Settings, tenant: Tenant) -> FastAPI:
            if settings.jobs == "queue" and stored_vendor_url(own) is None:
                raise LookupError(f"tenant {tenant.name} has no stored vendor connection")
            return create_app(
                own,
                on_ready=_announcer(own, tenant.name),
                on_stop=lambda: forget_served_base(own.data_dir, os.getpid()),
                tenant=tenant.name,
            )

        app = TenantRouter(settings, tenants, tenant_app)
    # uvicorn's own access log would print query strings, which can hold PHI.
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
