"""The password policy (facade/auth/passwords.py) and every path that creates a login: the
user registry, the operator, and the sandbox's demo accounts. A refused password creates
nothing, and no message repeats the password."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from facade.auth.demo import ensure_demo_accounts
from facade.auth.operator import Operator
from facade.auth.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    WeakPassword,
    common_passwords,
    password_problem,
)
from facade.auth.server import Authority
from facade.clock import FakeClock
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.state import SandboxState
from facade.upstream.drchrono.vendor import demo_accounts


@pytest.mark.parametrize(
    ("password", "username", "reason"),
    [
        ("a", "", "at least 12 characters"),
        ("eleven char", "", "at least 12 characters"),
        ("x" * (MAX_LENGTH - 2) + "yz!", "", f"at most {MAX_LENGTH}"),
        ("a long password\nsecond line", "", "control characters"),
        ("password1234", "", "common passwords"),  # on the list as it is
        ("1qaz2wsx3edc", "", "common passwords"),  # a keyboard walk from the list
        ("Password2024!", "", "common passwords"),  # a listed word with digits tacked on
        ("  Baseball-1234  ", "", "common passwords"),
        ("iloveyou 123456", "", "common passwords"),
        ("facade123456!", "", "common passwords"),  # this service's own name
        ("aaaaaaaaaaaaaaaa", "", "repeated"),
        ("abababababab", "", "repeated"),
        ("horse horse horse horse", "", "repeated"),
        ("abcdefghijklmnop", "", "repeated"),
        ("9876543210987", "", "repeated"),
        ("jane.doe.rocks.2024", "jane.doe", "username"),
        ("JANE.DOE.ROCKS.2024", "jane.doe", "username"),
        ("dr.smith-the-surgeon", "dr.smith", "username"),
    ],
)
def test_the_policy_refuses(password: str, username: str, reason: str) -> None:
    problem = password_problem(password, username)
    assert problem is not None and reason in problem
    if len(password.strip()) > 3:
        assert password.strip() not in problem


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("correct horse battery staple", "pat"),
        ("a long browser password", "browser-patient"),
        ("Tr0ub4dor&3 is too short? no", "bo"),  # a 2-letter name may occur by chance
        ("ǅemal's ŝtrange pässword", "jane"),
        ("x" * (MAX_LENGTH - 3) + "yz!", ""),
        (secrets.token_urlsafe(12), "jane.doe"),
    ],
)
def test_the_policy_accepts(password: str, username: str) -> None:
    assert password_problem(password, username) is None


def test_the_minimum_is_twelve_and_the_list_is_the_shipped_one() -> None:
    assert MIN_LENGTH == 12  # SP 800-63B's 8, raised on purpose (see passwords.py)
    words = common_passwords()
    assert len(words) > 10_000
    assert {"123456", "password", "qwerty", "1qaz2wsx3edc"} <= words
    assert not any(word.startswith("#") for word in words)


def test_the_registry_refuses_a_weak_password_and_creates_nothing(authority: Authority) -> None:
    with pytest.raises(WeakPassword, match="at least 12"):
        authority.users.create("jane", "a", "Patient/1")
    assert authority.users.find("jane") is None


def test_the_operator_refuses_a_common_password_and_creates_nothing(
    auth_runtime: Runtime, clock: FakeClock
) -> None:
    operator = Operator(auth_runtime.database, auth_runtime.box, clock, auth_runtime.tokens)
    with pytest.raises(WeakPassword, match="common"):
        operator.add_user(username="jane", password="qwerty123456", fhir_user="Patient/1")
    assert not operator.has_user("jane")
    secret = operator.add_user(
        username="jane", password="seven tall ships at dawn", fhir_user="Patient/1", totp=True
    )
    assert secret and operator.has_user("jane")


def test_demo_accounts_get_passwords_the_policy_accepts(
    auth_runtime: Runtime, clock: FakeClock, sandbox: SandboxState, tmp_path: Path
) -> None:
    operator = Operator(auth_runtime.database, auth_runtime.box, clock, auth_runtime.tokens)
    path = ensure_demo_accounts(operator, demo_accounts(sandbox), tmp_path / "demo")
    accounts = json.loads(path.read_text())
    assert len(accounts) == 4
    for account in accounts:
        assert password_problem(account["password"], account["username"]) is None
        assert operator.has_user(account["username"])
