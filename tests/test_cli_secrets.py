"""`facade user add` takes its password from a file, standard input, FACADE_USER_PASSWORD or
a terminal prompt, never only from the command line, and refuses one the policy refuses
(exit 2, nothing created). `facade connect` and `facade sandbox` read the vendor client
secret the same ways (their end-to-end run is in test_cli.py).

Real `facade` processes; each login is then checked with the registry the login page uses.
The logins are practitioners': a patient login's id is first checked at the EHR
(test_operator_commands.py), which has nothing to do with where a password comes from.
"""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from facade.auth.server.users import LoginOutcome, UserRegistry
from facade.clock import Clock
from facade.store.database import Database
from facade.store.secrets import SecretBox
from tests.test_cli import FACADE, clean_env, free_port

GOOD = "seven tall ships at dawn"


def user_add(
    data_dir: Path, *extra: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FACADE, "user", "add", "--username", "jane", "--practitioner", "7",
         "--data-dir", str(data_dir), *extra],
        env=clean_env(**env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def login(data_dir: Path, password: str) -> LoginOutcome:
    database = Database(f"sqlite:///{data_dir / 'facade.db'}")
    try:
        users = UserRegistry(database, SecretBox.from_settings("", data_dir), Clock())
        return users.check_password("jane", password)
    finally:
        database.dispose()


def user_rows(data_dir: Path) -> int:
    if not (data_dir / "facade.db").exists():
        return 0
    with sqlite3.connect(data_dir / "facade.db") as db:
        return int(db.execute("SELECT count(*) FROM user_account").fetchone()[0])


def private_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


# -- the password policy at the command line ---------------------------------------------


def test_a_one_letter_password_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    result = user_add(tmp_path, "--password", "a")
    assert result.returncode == 2
    assert "at least 12 characters" in result.stderr
    assert "deprecated" in result.stderr or "will be removed" in result.stderr
    assert "Traceback" not in result.stderr
    assert user_rows(tmp_path) == 0


def test_a_common_password_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    result = user_add(
        tmp_path, "--password-file", str(private_file(tmp_path / "pw", "qwerty123456\n"))
    )
    assert result.returncode == 2
    assert "common passwords" in result.stderr
    assert "qwerty123456" not in result.stderr + result.stdout
    assert user_rows(tmp_path) == 0


# -- where the password comes from -------------------------------------------------------


def test_password_from_a_file(tmp_path: Path) -> None:
    secret = private_file(tmp_path / "pw", GOOD + "\n")
    result = user_add(tmp_path / "d", "--password-file", str(secret))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"username": "jane", "fhirUser": "Practitioner/7"}
    assert result.stderr == ""
    assert login(tmp_path / "d", GOOD) is LoginOutcome.OK


def test_a_password_file_others_can_read_is_used_with_a_warning(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(GOOD)
    secret.chmod(0o644)
    result = user_add(tmp_path / "d", "--password-file", str(secret))
    assert result.returncode == 0, result.stderr
    assert "chmod 600" in result.stderr
    assert login(tmp_path / "d", GOOD) is LoginOutcome.OK


def test_password_from_standard_input(tmp_path: Path) -> None:
    result = user_add(tmp_path, "--password-stdin", stdin=GOOD + "\n")
    assert result.returncode == 0, result.stderr
    assert login(tmp_path, GOOD) is LoginOutcome.OK
    assert login(tmp_path, GOOD + "\n") is LoginOutcome.INVALID


def test_password_from_the_environment(tmp_path: Path) -> None:
    result = user_add(tmp_path, FACADE_USER_PASSWORD=GOOD)
    assert result.returncode == 0, result.stderr
    assert login(tmp_path, GOOD) is LoginOutcome.OK


def test_no_password_and_no_terminal_is_a_usage_error(tmp_path: Path) -> None:
    result = user_add(tmp_path)
    assert result.returncode == 2
    for way in ("--password-file", "--password-stdin", "FACADE_USER_PASSWORD"):
        assert way in result.stderr
    assert user_rows(tmp_path) == 0


def test_the_deprecated_option_still_works_with_a_warning(tmp_path: Path) -> None:
    result = user_add(tmp_path, "--password", GOOD)
    assert result.returncode == 0, result.stderr
    assert "--password-file" in result.stderr and "ps" in result.stderr
    assert login(tmp_path, GOOD) is LoginOutcome.OK


def on_terminal(args: list[str], answers: list[str], timeout: float = 60.0) -> tuple[int, str]:
    """Run facade with a pseudo-terminal as its controlling terminal, typing each answer
    when a prompt ending in ': ' appears. Returns the exit code and everything shown."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become facade
        os.execve(FACADE, [FACADE, *args], clean_env())
    shown = b""
    pending = list(answers)
    answered = 0  # where the output stood when the last answer was typed
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal: it has exited
                    break
                if not chunk:
                    break
                shown += chunk
                if pending and shown[answered:].endswith(b": "):
                    os.write(fd, pending.pop(0).encode() + b"\n")
                    answered = len(shown)
        else:
            os.kill(pid, 9)
            pytest.fail(f"facade did not finish on the terminal:\n{shown.decode(errors='replace')}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_on_a_terminal_it_asks_twice_without_echo(tmp_path: Path) -> None:
    code, shown = on_terminal(
        ["user", "add", "--username", "jane", "--practitioner", "7", "--data-dir", str(tmp_path)],
        [GOOD, GOOD],
    )
    assert code == 0, shown
    assert "Password: " in shown and "Password again: " in shown
    assert GOOD not in shown  # getpass turned echo off
    assert login(tmp_path, GOOD) is LoginOutcome.OK


def test_on_a_terminal_two_different_answers_create_nothing(tmp_path: Path) -> None:
    code, shown = on_terminal(
        ["user", "add", "--username", "jane", "--practitioner", "7", "--data-dir", str(tmp_path)],
        [GOOD, GOOD + "!"],
    )
    assert code == 2, shown
    assert "differ" in shown
    assert user_rows(tmp_path) == 0


# -- the vendor client secret ------------------------------------------------------------


def connect(*extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FACADE, "connect", "drchrono", "--base-url", "http://127.0.0.1:9", "--client-id", "app",
         "--redirect-port", str(free_port()), "--no-browser", "--timeout", "0.2", *extra],
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def test_connect_without_a_client_secret_is_a_usage_error(tmp_path: Path) -> None:
    result = connect("--data-dir", str(tmp_path))
    assert result.returncode == 2
    for way in ("--client-secret-file", "--client-secret-stdin", "FACADE_VENDOR_CLIENT_SECRET"):
        assert way in result.stderr
    assert "Open this URL" not in result.stdout  # refused before anything started


@pytest.mark.parametrize("how", ["file", "environment"])
def test_connect_takes_the_client_secret_without_the_command_line(tmp_path: Path, how: str) -> None:
    if how == "file":
        secret = private_file(tmp_path / "secret", "s3cret-from-a-file\n")
        result = connect("--data-dir", str(tmp_path), "--client-secret-file", str(secret))
    else:
        result = connect("--data-dir", str(tmp_path), FACADE_VENDOR_CLIENT_SECRET="s3cret")
    # It got as far as waiting for the vendor's redirect: the secret was accepted.
    assert "Open this URL" in result.stdout
    assert "no authorization arrived in time" in result.stderr
    assert "warning" not in result.stderr
    assert "s3cret" not in result.stdout + result.stderr


def test_connect_warns_about_a_client_secret_on_the_command_line(tmp_path: Path) -> None:
    result = connect("--data-dir", str(tmp_path), "--client-secret", "s3cret")
    assert "warning: --client-secret" in result.stderr
    assert "--client-secret-file" in result.stderr
    assert "s3cret" not in result.stderr
