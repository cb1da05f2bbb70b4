"""Demo logins for the embedded sandbox: three showcase patients and a practitioner, so a
newcomer can try a SMART launch at once. Sandbox only; never for a real vendor account.

Passwords are random, made once per data directory and kept (owner-only) in
demo-accounts.json there, so they survive restarts and appear in no log.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from facade.auth.operator import Operator
from facade.auth.passwords import password_problem
from facade.store.private_files import open_private, private_dir

FILE_NAME = "demo-accounts.json"


def ensure_demo_accounts(operator: Operator, wanted: list[tuple[str, str]], data_dir: Path) -> Path:
    """Users for `wanted` (username, fhirUser) pairs, the sandbox's showcase people (its
    vendor entry's `demo_accounts`), unless they exist already."""
    path = data_dir / FILE_NAME
    accounts: list[dict[str, str]] = json.loads(path.read_text()) if path.exists() else []
    known = {a["username"] for a in accounts}
    for username, fhir_user in wanted:
        if username in known or operator.has_user(username):
            continue
        password = _demo_password(username)
        operator.add_user(username=username, password=password, fhir_user=fhir_user)
        accounts.append({"username": username, "password": password, "fhirUser": fhir_user})
    private_dir(data_dir)
    with open_private(path, "w", encoding="utf-8") as handle:
        json.dump(accounts, handle, indent=2)
    return path


def _demo_password(username: str) -> str:
    """16 random URL-safe characters: 96 bits, which the password policy accepts (a random
    draw that happened to contain the username or a run would be drawn again)."""
    while True:
        password = secrets.token_urlsafe(12)
        if password_problem(password, username) is None:
            return password
