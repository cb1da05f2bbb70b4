"""The directory `facade export` writes into: owner-only, and holding one export only.

A marker file (`.facade-export.json`) names the export request the directory belongs to and
the files it wrote. A directory that is not empty and does not belong to the same request is
refused before anything is sent or written, so two exports' NDJSON never mix. Running the same
export again into its directory replaces the earlier run's files once the new manifest is in;
if the new run fails before that, the earlier files stay as they were.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facade.store.private_files import open_private, private_dir, tighten

MARKER = ".facade-export.json"
_FORMAT = 1


class ExportDirectoryRefused(Exception):
    """The output directory holds something other than this export; nothing was written."""


def request_identity(
    base_url: str,
    group: str | None,
    patients: tuple[str, ...],
    types: tuple[str, ...],
    since: str | None,
) -> dict[str, Any]:
    """What makes two runs the same export (the credentials and scope do not)."""
    return {
        "server": base_url.rstrip("/"),
        "group": group,
        "patients": sorted(p if "/" in p else f"Patient/{p}" for p in patients),
        "types": sorted(set(types)),
        "since": since,
    }


@dataclass
class ExportDirectory:
    path: Path
    request: dict[str, Any]
    #: Files the directory's previous run of this export wrote (replaced by this run's).
    previous: list[str] = field(default_factory=list)

    @classmethod
    def claim(cls, path: Path, request: dict[str, Any]) -> ExportDirectory:
        """Check the directory may take this export and make it owner-only (0700).

        Raises ExportDirectoryRefused, having written nothing, when it holds other files."""
        if path.exists() and not path.is_dir():
            raise ExportDirectoryRefused(f"{path} exists and is not a directory.")
        entries = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
        previous: list[str] = []
        if entries:
            marker = _read_marker(path)
            if marker is None:
                raise ExportDirectoryRefused(
                    f"{path} is not empty ({len(entries)} entries) and holds no facade export; "
                    "give --out a new or empty directory."
                )
            if marker.get("request") != request:
                raise ExportDirectoryRefused(
                    f"{path} holds another export ({_describe(marker.get('request'))}); "
                    "give --out a new or empty directory, so the two exports' files do not mix."
                )
            previous = [str(name) for name in marker.get("files", [])]
            ours = {MARKER, f"{MARKER}.new", *previous}
            strangers = [n for n in entries if n not in ours]
            if strangers:
                raise ExportDirectoryRefused(
                    f"{path} holds {len(strangers)} file(s) that are not this export's "
                    f"(e.g. {strangers[0]}); give --out a new or empty directory."
                )
        private_dir(path)
        for name in entries:
            tighten(path / name)
        return cls(path, request, previous)

    def begin(self, names: list[str]) -> None:
        """Before the first file is written: record the files this run writes, then remove
        the earlier run's other files (the marker lists both until they are gone)."""
        self._write_marker("downloading", sorted(set(names) | set(self.previous)))
        for name in self.previous:
            if name not in names:
                (self.path / name).unlink(missing_ok=True)
        self._write_marker("downloading", names)
        self.previous = list(names)

    def complete(self, names: list[str], transaction_time: object) -> None:
        self._write_marker("complete", names, transactionTime=transaction_time)

    def _write_marker(self, state: str, files: list[str], **extra: object) -> None:
        body = {
            "format": _FORMAT,
            "writer": "facade export",
            "state": state,
            "request": self.request,
            "files": files,
            **extra,
        }
        staged = self.path / f"{MARKER}.new"
        with open_private(staged, "w", encoding="utf-8") as handle:
            json.dump(body, handle, indent=2)
        os.replace(staged, self.path / MARKER)


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        body = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("format") != _FORMAT:
        return None
    return body


def _describe(request: object) -> str:
    if not isinstance(request, dict):
        return "unknown request"
    scope = (
        f"Group/{request.get('group')}"
        if request.get("group")
        else f"{len(request.get('patients') or [])} patient(s)"
        if request.get("patients")
        else "system"
    )
    types = ",".join(request.get("types") or []) or "all types"
    since = f", since {request['since']}" if request.get("since") else ""
    return f"{scope} export of {types}{since} from {request.get('server')}"
