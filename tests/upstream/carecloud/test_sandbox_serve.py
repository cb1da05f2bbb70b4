"""The standalone sandbox's helpers: the embedded state logs in with its default user, the
login files a standalone run writes are the owner's only, and the showcase people are named.
"""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

from facade.upstream.carecloud.sandbox.serve import (
    add_sandbox_arguments,
    connect_hint,
    embedded_state,
    showcase_people,
    write_credentials,
)
from facade.upstream.carecloud.totp import totp


def test_the_embedded_state_accepts_its_default_user() -> None:
    state = embedded_state(5, 3)
    user = state.default_user

    status, body = state.login(user.username, user.password, totp(user.totp_secret, state.clock()))

    assert status == 200
    assert body["business_entity_id"] == state.dataset.business_entity["id"]
    assert len(state.dataset.patients) == 5


def test_the_default_user_is_stable_per_seed() -> None:
    assert embedded_state(3, 4).default_user == embedded_state(3, 4).default_user
    assert embedded_state(3, 4).default_user != embedded_state(3, 5).default_user


def test_login_files_are_the_owners_only_and_the_hint_names_them(tmp_path: Path) -> None:
    state = embedded_state(3, 1)
    directory = tmp_path / "carecloud-sandbox"

    password, secret = write_credentials(state, directory)

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(password.stat().st_mode) == stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert password.read_text() == state.default_user.password
    assert secret.read_text() == state.default_user.totp_secret
    hint = connect_hint(state, "http://127.0.0.1:8900", directory)
    assert f"--password-file {password}" in hint
    assert f"--totp-secret-file {secret}" in hint
    assert state.default_user.password not in hint
    assert state.default_user.totp_secret not in hint


def test_the_showcase_people_are_three_patients_and_a_provider() -> None:
    state = embedded_state(5, 2)

    people = showcase_people(state)

    assert [kind for _, kind, _ in people] == ["Patient", "Patient", "Patient", "Practitioner"]
    assert [vendor_id for _, _, vendor_id in people[:3]] == [
        p["id"] for p in state.dataset.patients[:3]
    ]
    assert people[3][2] == state.dataset.providers[0]["id"]
    assert len({username for username, _, _ in people}) == 4


def test_sandbox_arguments_parse() -> None:
    parser = argparse.ArgumentParser()
    add_sandbox_arguments(parser)

    args = parser.parse_args(["--hourly-budget", "20", "--credentials-dir", "/tmp/x"])
    changing = parser.parse_args(["--changes-per-hour", "30"])

    assert (args.hourly_budget, args.credentials_dir) == (20, Path("/tmp/x"))
    assert (args.changes_per_hour, changing.changes_per_hour) == (0, 30)
