"""Export files on disk: one owner-only directory per job under the data dir, deleted when
the job expires or is cancelled (the job record is kept). Never serves a file itself."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from facade.store.private_files import open_private, private_dir


class ExportFiles:
    def __init__(self, root: Path):
        self.root = root

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
