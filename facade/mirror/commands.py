"""`facade mirror status` and `facade mirror purge`: the operator's view of the mirror's
state and the way to delete it, from the database alone (no vendor call, no server needed).

Neither prints a record, an id or a key: status prints endpoint names, counts and times;
purge prints how much it deleted.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from facade.admin import state_options
from facade.clock import Clock
from facade.mirror.progress import Estimate, Progress, describe_seconds
from facade.mirror.runtime import mirror_progress
from facade.mirror.store import MirrorStore
from facade.settings import Settings
from facade.store.database import Database
from facade.store.private_files import secure_data_dir
from facade.store.secrets import deployment_key
from facade.vendors import vendor, vendor_names


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    mirror = commands.add_parser("mirror", help="the change-capture mirror's state")
    actions = mirror.add_subparsers(dest="action", required=True)
    status = actions.add_parser(
        "status",
        help="per endpoint: records, backfilled?, synced-through time, calls spent, ETA; "
        "and the webhook hints waiting",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    _state_options(status)
    purge = actions.add_parser(
        "purge",
        help="delete every mirrored record, watermark, webhook delivery and hint of the connection",
    )
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _state_options(purge)
    for parser in (status, purge):
        parser.set_defaults(mirror_command=run)


def _state_options(parser: argparse.ArgumentParser) -> None:
    state_options(parser)
    parser.add_argument(
        "--vendor", choices=vendor_names(), help="the connection's vendor (FACADE_VENDOR)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.with_overrides(
        data_dir=args.data_dir, database_url=args.database_url, vendor=args.vendor
    )
    secure_data_dir(settings.data_dir)
    database = Database(settings.resolved_database_url)
    try:
        database.migrate()
        store = MirrorStore(
            database, deployment_key(settings.secret_key, settings.data_dir), Clock()
        )
        if args.action == "status":
            return _status(store, settings, as_json=args.json)
        return _purge(store, settings, confirmed=args.yes)
    finally:
        database.dispose()


def _status(store: MirrorStore, settings: Settings, *, as_json: bool) -> int:
    entry = vendor(settings.vendor)
    allowed = int(settings.upstream_hourly_limit * settings.mirror_share)
    progress = mirror_progress(
        store, settings.vendor, entry.registry(), allowed, entry.quota.window_seconds
    )
    if as_json:
        print(json.dumps(_as_json(progress, settings)), flush=True)
        return 0
    print(
        f"mirror of {settings.vendor} (the sync's share: {settings.mirror_share:g} of "
        f"{settings.upstream_hourly_limit} vendor calls an hour)"
    )
    if not progress.endpoints:
        print("nothing mirrored")
    else:
        rows = [("endpoint", "records", "backfilled", "synced through", "calls", "ETA")]
        for e in progress.endpoints:
            rows.append(
                (
                    e.endpoint,
                    str(e.records),
                    "yes" if e.complete else "no",
                    e.synced_through.isoformat(timespec="seconds") if e.synced_through else "-",
                    str(e.calls_spent),
                    _eta(e.eta),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        print(
            "backfill: complete"
            if progress.complete
            else f"backfill: {_eta(progress.eta)} left at the sync's share"
        )
    print(f"webhook hints waiting: {progress.pending_hints}", flush=True)
    return 0


def _eta(estimate: Estimate | None) -> str:
    if estimate is None:
        return "-"
    return ("≥ " if estimate.at_least else "~") + describe_seconds(estimate.seconds)


def _as_json(progress: Progress, settings: Settings) -> dict[str, Any]:
    def eta(estimate: Estimate | None) -> dict[str, Any] | None:
        if estimate is None:
            return None
        return {"calls": estimate.calls, "seconds": estimate.seconds, "atLeast": estimate.at_least}

    return {
        "connection": progress.connection,
        "mirror": settings.mirror,
        "share": settings.mirror_share,
        "complete": progress.complete,
        "pendingHints": progress.pending_hints,
        "eta": eta(progress.eta),
        "endpoints": [
            {
                "endpoint": e.endpoint,
                "records": e.records,
                "complete": e.complete,
                "syncedThrough": e.synced_through.isoformat() if e.synced_through else None,
                "callsSpent": e.calls_spent,
                "eta": eta(e.eta),
            }
            for e in progress.endpoints
        ],
    }


def _purge(store: MirrorStore, settings: Settings, *, confirmed: bool) -> int:
    connection = settings.vendor
    listings = len(store.watermarks(connection))
    hints = store.pending_hints(connection)
    if not confirmed:
        print(
            f"Delete every record the mirror keeps of {connection} in "
            f"{_where(settings)}, with its sync progress and webhook hints? [y/N] ",
            end="",
            flush=True,
        )
        answer = sys.stdin.readline().strip().lower() if not sys.stdin.closed else ""
        if answer not in ("y", "yes"):
            print("nothing deleted", flush=True)
            return 1
    records = store.purge(connection)
    print(
        f"deleted {records} records, {listings} listings' sync progress and {hints} webhook "
        f"hints of {connection}",
        flush=True,
    )
    return 0


def _where(settings: Settings) -> str:
    """The database, as an operator recognises it (no password)."""
    if settings.database_url:
        return "the database FACADE_DATABASE_URL names"
    return str(settings.data_dir / "facade.db")
