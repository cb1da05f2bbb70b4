"""Export files: one owner-only directory per job under the data dir while the job runs (its
checkpoints and crash recovery work on these files), deleted when the job expires or is
cancelled (the job record is kept). With an object store (FACADE_EXPORT_STORE), a completed
job's files are published there and leave the disk. Never serves a file itself."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from facade.errors import FacadeError
from facade.store.objects import ObjectStore, ObjectStoreError
from facade.store.private_files import open_private, private_dir

log = logging.getLogger("facade.bulk")


class ExportFiles:
    def __init__(self, root: Path, store: ObjectStore | None = None):
        self.root = root
        self.store = store

    def job_dir(self, job_id: str) -> Path:
        private_dir(self.root)
        return self.root / job_id

    def path(self, job_id: str, name: str) -> Path | None:
        """The file's path, or None if there is no such file (or the name is not plain)."""
        if "/" in name or "\\" in name or name.startswith("."):
            return None
        path = self.root / job_id / name
        return path if path.is_file() else None

    def write_lines(self, job_id: str, name: str, lines: Iterable[bytes]) -> int:
        directory = private_dir(self.job_dir(job_id))
        size = 0
        with open_private(directory / name, "wb") as handle:
            for line in lines:
                handle.write(line + b"\n")
                size += len(line) + 1
        return size

    def delete(self, job_id: str, name: str) -> None:
        path = self.path(job_id, name)
        if path is not None:
            path.unlink()

    def delete_job(self, job_id: str) -> None:
        shutil.rmtree(self.root / job_id, ignore_errors=True)
        if self.store is not None:
            try:
                self.store.delete_prefix(self.store.key(job_id))
            except Exception as error:  # the expiry sweep tries again; the job is gone anyway
                log.warning("deleting export %s from the object store failed: %s", job_id, error)

    def publish(self, job_id: str, names: Iterable[str]) -> None:
        """Move a completed job's files to the object store (no-op without one). Raises a
        FacadeError saying the files could not be stored; the job must not complete then."""
        if self.store is None:
            return
        try:
            for name in names:
                self.store.put_file(self.store.key(job_id, name), self.root / job_id / name)
        except ObjectStoreError as error:
            raise FacadeError(
                f"The export's files could not be stored ({error}); start a new export."
            ) from None
        shutil.rmtree(self.root / job_id, ignore_errors=True)

    def source(self, job_id: str, name: str) -> Path | Iterator[bytes] | None:
        """A completed job's file to serve: its path on disk, or its bytes from the object
        store; None if there is no such file."""
        if self.store is None:
            return self.path(job_id, name)
        if "/" in name or "\\" in name or name.startswith("."):
            return None
        key = self.store.key(job_id, name)
        return self.store.chunks(key) if self.store.exists(key) else None
