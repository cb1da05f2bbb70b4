"""Runs the CareCloud sandbox on its own (`facade sandbox carecloud`), on a real clock.

The login it accepts is written to a 0600 credentials file, never printed: a password and a
TOTP secret are secrets even in a sandbox. The embedded runtime uses `embedded_state` instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import uvicorn

from facade.upstream.carecloud.sandbox.app import create_sandbox_app
from facade.upstream.carecloud.sandbox.generator import generate
from facade.upstream.carecloud.sandbox.state import SandboxState

DEFAULT_PORT = 8091


def embedded_state(
    patients: int = 50,
    seed: int = 1,
    *,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> SandboxState:
    """A freshly generated sandbox; its `default_user` is the login facade uses."""
    return SandboxState.create(
        generate(patients, seed), seed=seed, webhook_transport=webhook_transport
    )


def write_credentials(state: SandboxState, path: Path, base_url: str) -> None:
    """username, password and TOTP secret of the default user, readable by the owner only."""
    user = state.default_user
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "base_url": base_url,
                "username": user.username,
                "password": user.password,
                "totp_secret": user.totp_secret,
            },
            handle,
            indent=1,
        )


def serve_standalone(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    patients: int = 50,
    seed: int = 1,
    *,
    credentials_file: Path | None = None,
) -> None:
    """Serve the sandbox until interrupted; the login goes to `credentials_file` if given."""
    state = embedded_state(patients, seed)
    base_url = f"http://{host}:{port}"
    if credentials_file is not None:
        write_credentials(state, credentials_file, base_url)
        print(f"CareCloud sandbox at {base_url}; login in {credentials_file}")
    else:
        print(f"CareCloud sandbox at {base_url} (username {state.default_user.username})")
    uvicorn.run(create_sandbox_app(state), host=host, port=port, log_level="warning")
