"""Which FHIR base a running `facade serve` answers at, recorded in its data directory.

`facade token`, `launch` and `export` mint or ask for tokens whose `aud` must be that base;
reading it here, rather than rebuilding it from their own settings, keeps a token made for a
server on another port or behind a public URL valid. The record holds no secret.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from facade.settings import Settings
from facade.store.private_files import open_private

RECORD_NAME = "served-base.json"


@dataclass(frozen=True)
class ServedBase:
    #: The FHIR base URL the server advertises (its tokens' `iss` and `aud`).
    base_url: str
    #: The serving process, so a record a crashed server left behind is recognised.
    pid: int
    #: The embedded sandbox's size and seed (0 when serving a real vendor account), so a
    #: command can rebuild the same synthetic practice to check a patient id.
    sandbox_patients: int = 0
    sandbox_seed: int = 0


def record_served_base(data_dir: Path, served: ServedBase) -> Path:
    path = data_dir / RECORD_NAME
    with open_private(path, "w") as handle:
        json.dump(asdict(served), handle)
    return path


def forget_served_base(data_dir: Path, pid: int) -> None:
    """Remove the record at shutdown, if it is still this process's."""
    found = read_served_base(data_dir)
    if found is not None and found.pid == pid:
        (data_dir / RECORD_NAME).unlink(missing_ok=True)


def read_served_base(data_dir: Path) -> ServedBase | None:
    """The record of a server that is still running, or None (no record, a malformed one,
    or one whose process has gone)."""
    try:
        raw = json.loads((data_dir / RECORD_NAME).read_text())
        served = ServedBase(
            base_url=str(raw["base_url"]),
            pid=int(raw["pid"]),
            sandbox_patients=int(raw.get("sandbox_patients", 0)),
            sandbox_seed=int(raw.get("sandbox_seed", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return served if _alive(served.pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return pid > 0


def served_base_url(settings: Settings, explicit: str | None = None) -> str:
    """The FHIR base an operator command works for: `--base` when given, else the running
    server's recorded one, else what the settings make (no server running yet)."""
    if explicit:
        return explicit.rstrip("/")
    served = read_served_base(settings.data_dir)
    return served.base_url if served is not None else settings.base_url
