"""Runs the CareCloud sandbox on its own (`facade sandbox carecloud`), on a real clock, and
hands the embedded runtime its pieces (a generated state, the showcase people). With
`--changes-per-hour N` the practice changes while it runs (see changes.py), on that clock.

The login it accepts goes to owner-only files (`password`, `totp-secret`) that
`facade connect carecloud --password-file ... --totp-secret-file ...` reads: a password and a
TOTP secret are secrets even in a sandbox, so they are never printed or logged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from facade.sandbox.changes import LOGGER_NAME
from facade.upstream.carecloud.sandbox.app import create_sandbox_app
from facade.upstream.carecloud.sandbox.changes import ChangeGenerator
from facade.upstream.carecloud.sandbox.generator import generate
from facade.upstream.carecloud.sandbox.state import DEFAULT_HOURLY_BUDGET, SandboxState

PASSWORD_FILE = "password"
TOTP_SECRET_FILE = "totp-secret"


def embedded_state(
    patients: int = 50,
    seed: int = 1,
    *,
    hourly_budget: int = DEFAULT_HOURLY_BUDGET,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> SandboxState:
    """A freshly generated sandbox; its `default_user` is the login facade uses."""
    return SandboxState.create(
        generate(patients, seed),
        seed=seed,
        hourly_budget=hourly_budget,
        webhook_transport=webhook_transport,
    )


def showcase_people(state: SandboxState) -> list[tuple[str, str, Any]]:
    """(demo username, resource type, vendor id): the three showcase patients and the first
    provider, for the demo logins (the runtime turns vendor ids into FHIR ids)."""
    people: list[tuple[str, str, Any]] = []
    for patient in state.dataset.patients[:3]:
        username = f"{patient['first_name']}.{patient['last_name']}".lower()
        people.append((username, "Patient", patient["id"]))
    provider = state.dataset.providers[0]
    people.append((f"dr.{provider['last_name']}".lower(), "Practitioner", provider["id"]))
    return people


def write_credentials(state: SandboxState, directory: Path) -> tuple[Path, Path]:
    """The default user's password and TOTP secret, one owner-only file each."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    user = state.default_user
    written = []
    for name, secret in ((PASSWORD_FILE, user.password), (TOTP_SECRET_FILE, user.totp_secret)):
        path = directory / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secret)
        os.chmod(path, 0o600)
        written.append(path)
    return written[0], written[1]


def connect_hint(state: SandboxState, base_url: str, directory: Path) -> str:
    return (
        f"facade connect carecloud --base-url {base_url} "
        f"--username {state.default_user.username} "
        f"--password-file {directory / PASSWORD_FILE} "
        f"--totp-secret-file {directory / TOTP_SECRET_FILE}"
    )


def serve_standalone(
    host: str = "127.0.0.1",
    port: int = 8900,
    patients: int = 50,
    seed: int = 1,
    *,
    credentials_dir: Path,
    hourly_budget: int = DEFAULT_HOURLY_BUDGET,
    changes_per_hour: float = 0,
) -> None:
    """Serve the sandbox until interrupted; its login goes to `credentials_dir`."""
    state = embedded_state(patients, seed, hourly_budget=hourly_budget)
    changes = ChangeGenerator(state, changes_per_hour, seed=seed) if changes_per_hour else None
    base_url = f"http://{host}:{port}"
    write_credentials(state, credentials_dir)
    print(f"CareCloud sandbox at {base_url} ({patients} patients, seed {seed})", flush=True)
    print(f"login files in {credentials_dir}", flush=True)
    print(f"connect with: {connect_hint(state, base_url, credentials_dir)}", flush=True)
    if changes is not None:
        print(f"changing records {changes_per_hour:g} times an hour", flush=True)
        _print_changes()
    server = uvicorn.Server(
        uvicorn.Config(create_sandbox_app(state), host=host, port=port, log_level="warning")
    )
    asyncio.run(_serve(server, changes))


def _print_changes() -> None:
    """The change log on standard output, a line per change (ids and kinds, no PHI)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    changes_logger = logging.getLogger(LOGGER_NAME)
    changes_logger.addHandler(handler)
    changes_logger.setLevel(logging.INFO)


async def _serve(server: uvicorn.Server, changes: ChangeGenerator | None) -> None:
    """The server, and beside it on the same loop (the records are not locked) the changes;
    a generator that fails stops the server rather than leave it silently frozen."""
    if changes is None:
        await server.serve()
        return
    task = asyncio.create_task(changes.run_forever())
    task.add_done_callback(lambda _: setattr(server, "should_exit", True))
    try:
        await server.serve()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # a generator's own failure surfaces here


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """`facade sandbox carecloud`'s own arguments (host, port and size are the CLI's)."""
    parser.add_argument(
        "--hourly-budget",
        type=int,
        default=DEFAULT_HOURLY_BUDGET,
        help="API calls per user per rolling hour before 429 (default: %(default)s)",
    )
    parser.add_argument(
        "--credentials-dir",
        type=Path,
        help="where the sandbox login's password and TOTP secret files go "
        "(default: <data dir>/carecloud-sandbox)",
    )
    parser.add_argument(
        "--changes-per-hour",
        type=float,
        default=0,
        help="records the practice creates, changes or deletes an hour while it runs "
        "(default: %(default)s, none)",
    )


def serve_sandbox(args: argparse.Namespace, settings: Any) -> int:
    """The `facade sandbox carecloud` command: (args, Settings) -> exit status."""
    patients = args.patients if args.patients is not None else settings.sandbox_patients
    seed = args.seed if args.seed is not None else settings.sandbox_seed
    directory = args.credentials_dir or Path(settings.data_dir) / "carecloud-sandbox"
    serve_standalone(
        args.host,
        args.port,
        patients,
        seed,
        credentials_dir=directory,
        hourly_budget=args.hourly_budget,
        changes_per_hour=args.changes_per_hour,
    )
    return 0
