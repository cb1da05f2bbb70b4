"""The password policy every new login must pass, whichever path creates it (the CLI, the
operator, the user registry): NIST SP 800-63B's length and blocklist rules, with our own
minimum of 12. It never logs a password, and its messages never repeat one.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

#: SP 800-63B §5.1.1.2 asks for at least 8 characters; facade asks 12, because a login here
#: opens health records and argon2 plus a lockout only slow an online guesser down.
MIN_LENGTH = 12
#: Long enough for any passphrase; argon2 itself would take more, but a cap keeps one login
#: request from hashing megabytes.
MAX_LENGTH = 256
#: Words of this service that make a password guessable (SP 800-63B: "context-specific").
CONTEXT_WORDS = ("facade",)
#: A username this short is too likely to appear by chance inside a good password.
SHORTEST_USERNAME_CHECKED = 3

_SEPARATORS = " -_.+"
_RUNS = ("0123456789" * 3, "abcdefghijklmnopqrstuvwxyz" * 2)


class WeakPassword(ValueError):
    """A password the policy refuses; the message says why, without the password."""


def password_problem(password: str, username: str = "") -> str | None:
    """Why `password` may not be used for `username`, or None when it may."""
    if len(password) < MIN_LENGTH:
        return f"the password must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"the password must be at most {MAX_LENGTH} characters long"
    if any(unicodedata.category(c) == "Cc" for c in password):
        return "the password must not contain control characters (a newline, a tab)"
    folded = unicodedata.normalize("NFKC", password).casefold()
    name = unicodedata.normalize("NFKC", username).strip().casefold()
    if name and (folded == name or (len(name) >= SHORTEST_USERNAME_CHECKED and name in folded)):
        return "the password must not contain the username"
    if _repetitive_or_sequential(folded):
        return "the password must not be one character, group or run repeated (aaaa, abab, 1234)"
    common = common_passwords()
    for candidate in _candidates(folded):
        if candidate in common or candidate in CONTEXT_WORDS:
            return "the password is on a list of common passwords that attackers try first"
    return None


def check_password(password: str, username: str = "") -> None:
    """Raise WeakPassword unless the policy accepts `password` for `username`."""
    problem = password_problem(password, username)
    if problem is not None:
        raise WeakPassword(problem)


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list (about 10,000 entries, 80 KB), read once on first use."""
    text = resources.files("facade.auth").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def _candidates(folded: str) -> set[str]:
    """The password as a guesser's list would hold it: as typed, without separators, and
    without the digits and symbols people tack on around a common word ("Password2024!")."""
    joined = "".join(c for c in folded if c not in _SEPARATORS)
    found = {folded, joined}
    for text in (folded, joined):
        core = text.strip("0123456789!@#$%^&*?~" + _SEPARATORS)
        if core:
            found.add(core)
    return found


def _repetitive_or_sequential(folded: str) -> bool:
    joined = "".join(c for c in folded if c not in _SEPARATORS) or folded
    # "aaaa…", "abab…", "passwordpassword": a unit repeated fills the password.
    for size in range(1, len(joined) // 2 + 1):
        if len(joined) % size == 0 and joined[:size] * (len(joined) // size) == joined:
            return True
    # "abcdefghijkl", "987654321098": a run of the alphabet or the digits.
    return any(joined in run or joined in run[::-1] for run in _RUNS)
