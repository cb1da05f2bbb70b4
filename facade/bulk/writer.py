"""NDJSON output streams of one export, with checkpoints a restart can resume from.

An export appends lines to one file per resource type, `<type>-1.ndjson`, and starts the
next file of that type only when the size bound is reached. Its parts (one vendor listing
each: Conditions come from problems and from appointments) run one after another and write
to the same files, each resuming from the state the previous one left. `checkpoint()` makes
what was written durable and returns the streams' state; `open(state)` truncates every file
back to that state (dropping lines written after the last checkpoint) and removes output
files started after it, so a resumed part neither repeats nor loses a line. Lines are
written as they come: memory does not grow with the export. No file is listed in a manifest
before the export completes, so a client never sees one half-written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from facade.errors import FacadeError
from facade.store.private_files import DIRECTORY_MODE, FILE_MODE, open_private, private_dir

__all__ = [
    "DIRECTORY_MODE",
    "FILE_MODE",
    "ExportFilesLost",
    "ExportStreams",
    "StreamState",
    "ensure_private_directory",
]

#: type → [[file name, lines, bytes], ...]; the last file of a type is the one being written.
StreamState = dict[str, list[list[Any]]]
#: An output file's name (`Condition-2.ndjson`); the error file's (`errors-…`) never matches.
_OUTPUT_NAME = re.compile(r"[A-Z][A-Za-z]*-\d+\.ndjson")


class ExportFilesLost(FacadeError):
    """An export resumed without the files its checkpoints describe (the job fails with this
    message; its status answers `export-failed`)."""

    default_message = (
        "The export's partly written files are not where it resumed (its earlier worker's "
        "disk is not shared with this one); start a new export."
    )


def ensure_private_directory(path: Path) -> None:
    private_dir(path)


@dataclass
class _OpenFile:
    name: str
    handle: IO[bytes]
    lines: int
    size: int


class ExportStreams:
    def __init__(self, directory: Path, size_bound: int):
        self.directory = directory
        self.size_bound = size_bound
        self._closed: StreamState = {}
        self._open: dict[str, _OpenFile] = {}

    def open(self, state: StreamState) -> None:
        """Resume from a checkpoint's state (an empty state starts afresh)."""
        ensure_private_directory(self.directory)
        known = {entry[0] for files in state.values() for entry in files}
        for stray in self.directory.glob("*.ndjson"):
            if _OUTPUT_NAME.fullmatch(stray.name) and stray.name not in known:
                stray.unlink()
        for files in state.values():
            for name, _lines, size in files:
                found = self.directory / name
                if not found.is_file() or found.stat().st_size < int(size):
                    # Resumed where the earlier run's files are not (another machine's disk):
                    # padding them out would report a corrupt file as complete.
                    raise ExportFilesLost()
        for resource_type, files in state.items():
            self._closed[resource_type] = [list(f) for f in files[:-1]]
            name, lines, size = files[-1]
            handle = open_private(self.directory / name, "ab", buffering=1 << 16)
            # Appends land at the end, so cutting the file back to the checkpoint is enough.
            os.ftruncate(handle.fileno(), size)
            self._open[resource_type] = _OpenFile(name, handle, int(lines), int(size))

    def write(self, resource: dict[str, Any]) -> None:
        line = orjson.dumps(resource) + b"\n"
        resource_type = resource["resourceType"]
        current = self._open.get(resource_type)
        if current is None or (current.lines and current.size + len(line) > self.size_bound):
            current = self._start(resource_type)
        current.handle.write(line)
        current.lines += 1
        current.size += len(line)

    def _start(self, resource_type: str) -> _OpenFile:
        previous = self._open.pop(resource_type, None)
        files = self._closed.setdefault(resource_type, [])
        if previous is not None:
            previous.handle.close()
            files.append([previous.name, previous.lines, previous.size])
        name = f"{resource_type}-{len(files) + 1}.ndjson"
        handle = open_private(self.directory / name, "wb", buffering=1 << 16)
        opened = _OpenFile(name, handle, 0, 0)
        self._open[resource_type] = opened
        return opened

    def state(self) -> StreamState:
        state: StreamState = {t: [list(f) for f in files] for t, files in self._closed.items()}
        for resource_type, current in self._open.items():
            state.setdefault(resource_type, []).append([current.name, current.lines, current.size])
        return state

    def checkpoint(self) -> StreamState:
        """Make everything written so far durable and return the state to resume from."""
        for current in self._open.values():
            current.handle.flush()
            os.fsync(current.handle.fileno())
        return self.state()

    def close(self) -> None:
        for current in self._open.values():
            current.handle.close()
        self._open.clear()

    @property
    def lines(self) -> int:
        return sum(int(f[1]) for files in self.state().values() for f in files)
