"""The standalone sandbox's helpers: the embedded state logs in with its default user, and
the credentials file a standalone run writes is readable by its owner only.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from facade.upstream.carecloud.sandbox.serve import embedded_state, write_credentials
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


def test_credentials_are_written_for_the_owner_only(tmp_path: Path) -> None:
    state = embedded_state(3, 1)
    path = tmp_path / "login" / "carecloud.json"

    write_credentials(state, path, "http://127.0.0.1:8091")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved == {
        "base_url": "http://127.0.0.1:8091",
        "username": state.default_user.username,
        "password": state.default_user.password,
        "totp_secret": state.default_user.totp_secret,
    }
