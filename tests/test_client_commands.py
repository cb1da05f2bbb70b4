"""`facade client list|show|approve|add|initial-token`: what an operator types to review
self-registered apps, approve them, vouch for one with an initial access token, and
register a client whose keys live at a URL (refused when that URL points inside)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from sqlmodel import select

from facade.auth.server.clients import ClientRegistry
from facade.auth.server.initial_tokens import InitialAccessTokens
from facade.auth.tokens import token_hash
from facade.cli import main
from facade.clock import Clock
from facade.settings import Settings
from facade.store.database import Database
from facade.store.models import IssuedToken


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("FACADE_"):
            monkeypatch.delenv(name)
    return tmp_path / "state"


@pytest.fixture
def database(data_dir: Path) -> Iterator[Database]:
    assert main(["client", "list", "--data-dir", str(data_dir)]) == 0  # creates the state
    opened = Database(Settings(data_dir=data_dir).resolved_database_url)
    yield opened
    opened.dispose()


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--data-dir", str(data_dir)])
    out, err = capsys.readouterr()
    return code, out, err


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line]


def test_list_show_and_approve_a_self_registered_client(
    data_dir: Path, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    held = ClientRegistry(database, Clock()).register(
        name="Stranger's app", auth_method="client_secret_basic",
        redirect_uris=["https://app.example/cb"], scope="patient/*.rs",
        status="pending", self_registered=True,
    )  # fmt: skip
    ours_args = ["--name", "Ours", "--public", "--redirect-uri", "https://ours.example/cb"]
    code, out, _ = run(capsys, data_dir, "client", "add", *ours_args, "--scope", "patient/*.rs")
    assert code == 0
    ours = json.loads(out)["client_id"]

    code, out, _ = run(capsys, data_dir, "client", "list")
    assert code == 0
    listed = {c["client_id"]: c for c in lines(out)}
    assert listed[held.client.client_id] == {
        "client_id": held.client.client_id,
        "name": "Stranger's app",
        "status": "pending",
        "auth_method": "client_secret_basic",
        "scope": "patient/*.rs",
        "self_registered": True,
        "resource_server": False,
    }
    assert listed[ours]["status"] == "active" and listed[ours]["self_registered"] is False
    code, out, _ = run(capsys, data_dir, "client", "list", "--status", "pending")
    assert [c["client_id"] for c in lines(out)] == [held.client.client_id]

    code, out, _ = run(capsys, data_dir, "client", "show", held.client.client_id)
    assert code == 0
    shown = json.loads(out)
    assert shown["redirect_uris"] == ["https://app.example/cb"]
    assert shown["grant_types"] == ["authorization_code", "refresh_token"]
    assert "secret_hash" not in shown and "registration_token_hash" not in shown
    assert held.client.secret_hash not in out and held.client_secret not in out
    assert held.client.registration_token_hash not in out

    code, out, _ = run(capsys, data_dir, "client", "approve", held.client.client_id)
    assert code == 0 and json.loads(out)["status"] == "active"
    code, out, _ = run(capsys, data_dir, "client", "show", held.client.client_id)
    assert json.loads(out)["status"] == "active"


def test_show_or_approve_an_unknown_client_fails(
    data_dir: Path, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    for action in ("show", "approve"):
        code, out, err = run(capsys, data_dir, "client", action, "nope")
        assert code == 1 and out == "" and "no client 'nope'" in err


def test_add_resource_server(
    data_dir: Path, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code, out, _ = run(capsys, data_dir, "client", "add", "--name", "API gateway",
                       "--resource-server")  # fmt: skip
    assert code == 0
    created = json.loads(out)
    assert created["client_secret"]
    code, out, _ = run(capsys, data_dir, "client", "show", created["client_id"])
    assert json.loads(out)["resource_server"] is True
    code, out, _ = run(capsys, data_dir, "client", "add", "--name", "Plain app")
    code, out, _ = run(capsys, data_dir, "client", "show", json.loads(out)["client_id"])
    assert json.loads(out)["resource_server"] is False


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8080/internal/jwks.json",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/jwks.json",
        "https://10.0.0.1/jwks.json",
        "https://localhost/jwks.json",
        "https://metadata.google.internal/jwks.json",
    ],
)
def test_add_refuses_a_jwks_uri_inside_the_network(
    data_dir: Path, database: Database, capsys: pytest.CaptureFixture[str], uri: str
) -> None:
    """Literal addresses and local names: refused before any DNS lookup or connection."""
    capsys.readouterr()
    code, out, err = run(capsys, data_dir, "client", "add", "--name", "K", "--jwks-uri", uri)
    assert code == 2 and out == "" and "--jwks-uri" in err
    assert lines(run(capsys, data_dir, "client", "list")[1]) == []


def test_add_refuses_a_private_key_file(
    data_dir: Path, database: Database, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    capsys.readouterr()
    key = ECKey.generate_key("P-384", parameters={"kid": "k", "alg": "ES384"})
    leaked = tmp_path / "private.json"
    leaked.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    code, out, err = run(capsys, data_dir, "client", "add", "--name", "K", "--jwks", str(leaked))
    assert code == 2 and "private" in err
    public = tmp_path / "public.json"
    public.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    code, out, err = run(capsys, data_dir, "client", "add", "--name", "K", "--jwks", str(public))
    assert code == 0, err


def test_initial_token_is_single_use_and_expires(
    data_dir: Path, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code, out, _ = run(capsys, data_dir, "client", "initial-token", "--expires-in", "600")
    assert code == 0
    minted = json.loads(out)
    assert minted["uses"] == "1" and minted["expires_at"]
    tokens = InitialAccessTokens(database, Clock())
    assert tokens.is_valid(minted["initial_access_token"])
    assert tokens.use(minted["initial_access_token"])
    assert not tokens.use(minted["initial_access_token"])
    with database.session() as session:
        stored = [row.jti for row in session.exec(select(IssuedToken)).all()]
    assert stored == [token_hash(minted["initial_access_token"])]  # only its hash is kept
    code, out, err = run(capsys, data_dir, "client", "initial-token", "--expires-in", "0")
    assert code == 2 and out == ""
