"""Owner-only files and directories: the one way facade creates anything on disk.

Directories are 0700 and files 0600 whatever the process umask is (a mode is set on the
open descriptor, not left to the umask), and final path components that are symlinks are
refused. It never widens a mode, and it never touches files it does not know to be its own.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("facade.store")

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700

#: Files an older facade left in the data directory with the umask's mode (0644): the SQLite
#: database and its companions, the Fernet key file and the demo logins.
_STATE_FILES = ("facade.db", "secret.key", "demo-accounts.json")
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
#: Subdirectories that are wholly facade's (export files and their lookup spills).
_STATE_TREES = ("exports",)

_WRITE_FLAGS = {
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


class NotPrivate(OSError):
    """A path facade must keep owner-only cannot be made so (another owner, or a symlink)."""


def private_dir(path: Path) -> Path:
    """Create `path` (and any missing parents) 0700; an existing `path` is tightened to 0700.

    Existing parents are left alone: they are not facade's (think of /tmp or a home). `path`
    itself may be the operator's symlink to a directory (a data dir on another volume): the
    directory it names is the one made private."""
    if path.is_symlink() and path.is_dir():
        path = path.resolve()
    missing: list[Path] = []
    probe = path
    while not probe.exists() and not probe.is_symlink():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        # Another process may make it at the same moment; it is tightened below either way.
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIRECTORY_MODE)
    if path.is_symlink() or not path.is_dir():
        raise NotPrivate(f"{path} is not a directory facade can keep owner-only")
    for directory in [*missing, path]:
        tighten(directory)
    return path


def private_descriptor(path: Path, flags: int) -> int:
    """os.open with mode 0600, no symlink as the last component, then the mode enforced."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise NotPrivate(
                f"{path} is a symlink; facade writes its files only as plain files"
            ) from None
        raise
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            # O_CREAT's mode applies only to a file it creates (and the umask may cut it).
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private(path: Path, mode: str = "wb", **kwargs: Any) -> IO[Any]:
    """Open `path` for writing as an owner-only file: mode is w, a or x, text or binary
    (`wb` truncates, `ab` appends, `xb` refuses an existing file); kwargs go to os.fdopen."""
    flags = _WRITE_FLAGS.get(mode[:1])
    if flags is None or set(mode[1:]) - {"b", "t", "+"}:
        raise ValueError(f"open_private writes; mode {mode!r} is not w, a or x")
    if "+" in mode:
        flags = (flags & ~os.O_WRONLY) | os.O_RDWR
    return os.fdopen(private_descriptor(path, flags), mode, **kwargs)


def create_private(path: Path) -> None:
    """Make sure `path` exists as an owner-only file, without changing its content."""
    os.close(private_descriptor(path, os.O_WRONLY | os.O_CREAT))


def tighten(path: Path) -> bool:
    """Take group and other permissions off an existing file or directory (never a symlink).

    True if the mode changed; False if it was already private or does not exist."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(found.st_mode):
        raise NotPrivate(f"{path} is a symlink; facade keeps its state in plain files")
    wanted = DIRECTORY_MODE if stat.S_ISDIR(found.st_mode) else FILE_MODE
    if stat.S_IMODE(found.st_mode) == wanted:
        return False
    try:
        os.chmod(path, wanted)
    except PermissionError:
        raise NotPrivate(
            f"{path} belongs to another user; facade cannot make it owner-only"
        ) from None
    return True


def sqlite_files(database: Path) -> list[Path]:
    """A SQLite database file and the companions SQLite creates beside it."""
    return [database, *(Path(f"{database}{suffix}") for suffix in SQLITE_COMPANIONS)]


def secure_data_dir(data_dir: Path) -> Path:
    """Make the data directory 0700 (created if missing) and tighten the state files an
    older facade left readable by others; one log line says how many (never which)."""
    existed = data_dir.is_dir()
    mode_before = stat.S_IMODE(data_dir.stat().st_mode) if existed else DIRECTORY_MODE
    private_dir(data_dir)
    tightened = 0
    for name in _STATE_FILES:
        for path in sqlite_files(data_dir / name):
            tightened += tighten(path)
    for tree in _STATE_TREES:
        root = data_dir / tree
        if not root.is_dir() or root.is_symlink():
            continue
        tightened += tighten(root)
        for parent, directories, files in os.walk(root):
            for name in [*directories, *files]:
                path = Path(parent) / name
                if not path.is_symlink():
                    tightened += tighten(path)
    if mode_before != DIRECTORY_MODE or tightened:
        log.warning(
            "data directory made owner-only: directory was %o, %d file(s) or folder(s) in it "
            "were readable by others and are now 0600/0700",
            mode_before,
            tightened,
        )
    return data_dir
