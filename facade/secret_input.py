"""Where the `facade` command reads a secret (a login's password, a vendor client secret): a
file, standard input, an environment variable, or a prompt on a terminal. Never only the
command line, where every user of the machine reads it in `ps`. It never prints a secret.
"""

from __future__ import annotations

import argparse
import getpass
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


class SecretNotGiven(Exception):
    """No secret could be read; the message says how to give one."""


@dataclass(frozen=True)
class SecretOption:
    """One secret the command takes: `--NAME-file F`, `--NAME-stdin`, the environment
    variable `env`, a prompt (when `required` and on a terminal), and the deprecated
    `--NAME VALUE`."""

    name: str  # "password", "client-secret"
    env: str  # "FACADE_USER_PASSWORD"
    what: str  # "the password", "the client secret"
    required: bool = True
    confirm: bool = False  # ask twice at the prompt (a new password)
    note: str = ""  # said in --help, e.g. what happens when none is given

    @property
    def _dest(self) -> str:
        return self.name.replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            f"--{self.name}-file",
            type=Path,
            metavar="FILE",
            help=f"read {self.what} from FILE (its first line); or set {self.env}" + self.note,
        )
        group.add_argument(
            f"--{self.name}-stdin",
            action="store_true",
            help=f"read {self.what} from standard input",
        )
        group.add_argument(
            f"--{self.name}",
            metavar="VALUE",
            help=f"deprecated: {self.what} on the command line is visible to every user "
            f"of the machine (ps); use --{self.name}-file, --{self.name}-stdin or {self.env}",
        )

    def read(
        self,
        args: argparse.Namespace,
        *,
        stdin: TextIO | None = None,
        stderr: TextIO | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> str | None:
        """The secret, from the first source given; None when not `required` and none is.
        Raises SecretNotGiven with a message for the operator."""
        stdin = stdin or sys.stdin
        stderr = stderr or sys.stderr
        environ = os.environ if environ is None else environ
        value: str | None = getattr(args, self._dest, None)
        path: Path | None = getattr(args, f"{self._dest}_file", None)
        if value is not None:
            print(
                f"facade: warning: --{self.name} shows {self.what} to every user of this "
                f"machine (ps, shell history) and will be removed; use --{self.name}-file, "
                f"--{self.name}-stdin or {self.env}",
                file=stderr,
            )
            return self._non_empty(value, f"--{self.name}")
        if path is not None:
            return self._non_empty(_read_file(path, self.what, stderr), str(path))
        if getattr(args, f"{self._dest}_stdin", False):
            return self._non_empty(_first_line(stdin.read()), "standard input")
        if environ.get(self.env):
            return environ[self.env]
        if not self.required:
            return None
        if stdin.isatty():
            return self._prompt()
        raise SecretNotGiven(
            f"no {self.what.removeprefix('the ')} given: use --{self.name}-file FILE, "
            f"--{self.name}-stdin or {self.env} (or run it on a terminal to be asked)"
        )

    def _prompt(self) -> str:
        label = self.what.removeprefix("the ").capitalize()
        first = getpass.getpass(f"{label}: ")
        if self.confirm and getpass.getpass(f"{label} again: ") != first:
            raise SecretNotGiven(f"{self.what} and its repetition differ")
        return self._non_empty(first, "the prompt")

    def _non_empty(self, value: str, source: str) -> str:
        if not value:
            raise SecretNotGiven(f"{self.what} from {source} is empty")
        return value


def _read_file(path: Path, what: str, stderr: TextIO) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretNotGiven(f"cannot read {what} from {path}: {type(exc).__name__}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(
            f"facade: warning: {path} can be read by other users; chmod 600 it",
            file=stderr,
        )
    return _first_line(text)


def _first_line(text: str) -> str:
    """A secret file or pipe ends with a newline that is not part of the secret."""
    return text.split("\n", 1)[0].removesuffix("\r")
