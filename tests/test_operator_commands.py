"""What a newcomer types after `facade serve`: tokens for the server that runs (whatever its
port), launches and logins for patients that exist, keys for backend services, users listed
and disabled, and clear refusals instead of tracebacks.

Real `facade` processes against one real server on a free loopback port.
"""

from __future__ import annotations

import argparse
import json
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facade.auth.server.clients import new_client_id
from facade.bulk.client import client_assertion, load_credentials
from facade.cli import _parser
from facade.settings import Settings
from facade.store.served_base import (
    ServedBase,
    read_served_base,
    record_served_base,
    served_base_url,
)
from tests.test_cli import (
    FACADE,
    Running,
    clean_env,
    free_port,
    http_client,
    wait_until_listening,
)


class Served:
    def __init__(self, data_dir: Path, port: int, process: Running):
        self.data_dir = data_dir
        self.port = port
        self.process = process
        self.base = f"http://127.0.0.1:{port}/fhir"

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """A facade command on this server's data directory, with no FACADE_PORT set."""
        return subprocess.run(
            [FACADE, *args, "--data-dir", str(self.data_dir)],
            env=clean_env(),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def token(self, *extra: str) -> str:
        result = self.run("token", *extra)
        assert result.returncode == 0, result.stderr
        return str(json.loads(result.stdout)["access_token"])

    def get(self, path: str, token: str) -> httpx.Response:
        with http_client() as client:
            return client.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`facade serve` on a port that is not 8080, and no FACADE_PORT for the commands."""
    data_dir = tmp_path_factory.mktemp("served") / "d"
    port = free_port()
    process = Running(
        ["serve", "--port", str(port), "--data-dir", str(data_dir), "--patients", "4"],
        clean_env(),
    )
    try:
        process.wait_for(r"^connected to the embedded DrChrono sandbox")
        wait_until_listening(port, process)
        yield Served(data_dir, port, process)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def patient_id(served: Served) -> str:
    response = served.get("/Patient?_count=1", served.token())
    assert response.status_code == 200, response.text
    return str(response.json()["entry"][0]["resource"]["id"])


# -- the running server's base ---------------------------------------------------------------


def test_token_is_for_the_running_server_whatever_its_port(served: Served) -> None:
    assert served.port != 8080
    record = served.data_dir / "served-base.json"
    assert json.loads(record.read_text())["base_url"] == served.base
    assert stat.S_IMODE(record.stat().st_mode) == 0o600

    response = served.get("/Patient?_count=1", served.token())

    assert response.status_code == 200, response.text


def test_a_token_for_another_base_gets_a_401_that_names_both_audiences(served: Served) -> None:
    other = "http://127.0.0.1:9/fhir"
    token = served.token("--base", other)

    response = served.get("/Patient", token)

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f"audience is {other}; this server is {served.base}" in challenge
    text = response.json()["issue"][0]["details"]["text"]
    assert f"audience is {other}; this server is {served.base}" in text
    assert token not in challenge + text


def test_launch_prints_the_running_servers_iss_for_a_patient_that_exists(
    served: Served, patient_id: str
) -> None:
    result = served.run("launch", "--patient", patient_id, "--app-launch-uri", "https://app/l")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["iss"] == served.base
    assert out["url"].startswith("https://app/l?iss=http%3A%2F%2F127.0.0.1%3A")


# -- patients that do not exist ----------------------------------------------------------------


def test_a_launch_costs_one_vendor_call_and_the_audit_says_so(
    served: Served, patient_id: str
) -> None:
    launched = served.run("launch", "--patient", patient_id)
    assert launched.returncode == 0, launched.stderr

    audit = served.run("audit", "--patient", patient_id)

    launches = [json.loads(line) for line in audit.stdout.splitlines()]
    launches = [r for r in launches if r["interaction"] == "launch"]
    assert launches and all(r["vendor_calls"] == 1 for r in launches)


def test_launch_refuses_a_patient_the_ehr_does_not_have(served: Served) -> None:
    result = served.run("launch", "--patient", "999")

    assert result.returncode == 2
    assert "no patient with id '999'" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_user_add_refuses_a_patient_the_ehr_does_not_have(served: Served) -> None:
    result = served.run(
        "user", "add", "--username", "ghost", "--patient", "999999", "--password-stdin",
        stdin="seven tall ships at dawn",
    )  # fmt: skip

    assert result.returncode == 2
    assert "no patient with id '999999'" in result.stderr
    listed = served.run("user", "list")
    assert "ghost" not in listed.stdout


def test_user_add_takes_a_patient_the_ehr_has(served: Served, patient_id: str) -> None:
    result = served.run(
        "user", "add", "--username", "real.patient", "--patient", patient_id, "--password-stdin",
        stdin="seven tall ships at dawn",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fhirUser"] == f"Patient/{patient_id}"


# -- users listed and disabled ---------------------------------------------------------------


def test_user_list_shows_every_login_without_secrets(served: Served) -> None:
    result = served.run("user", "list")

    assert result.returncode == 0, result.stderr
    users = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"maria.garcia", "dr.whitfield"} <= {u["username"] for u in users}
    assert all(u["status"] == "active" for u in users)
    assert all(set(u) == {"username", "fhirUser", "totp", "status", "created_at"} for u in users)
    assert "password" not in result.stdout


def test_user_disable_of_an_unknown_user_fails(served: Served) -> None:
    result = served.run("user", "disable", "nobody-here")
    assert result.returncode == 1
    assert "no user 'nobody-here'" in result.stderr


# -- the audit log -----------------------------------------------------------------------------


def test_audit_since_garbage_is_a_usage_error_without_traceback(served: Served) -> None:
    result = served.run("audit", "--since", "garbage")

    assert result.returncode == 2
    assert "--since 'garbage' is not an ISO 8601 date or time" in result.stderr
    assert "Traceback" not in result.stderr


def test_audit_since_a_date_works(served: Served) -> None:
    served.get("/Patient?_count=1", served.token())
    result = served.run("audit", "--since", "2000-01-01")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


# -- backend-service keys ----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES384", "RS384"])
def test_client_add_generates_a_key_pair_and_registers_the_public_half(
    served: Served, tmp_path: Path, algorithm: str
) -> None:
    key_file = tmp_path / "backend.jwk"
    result = served.run(
        "client", "add", "--name", f"backend {algorithm}", "--scope", "system/*.rs",
        "--generate-key", algorithm, "--private-key-out", str(key_file),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert "client_secret" not in out
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = json.loads(key_file.read_text())
    assert private["alg"] == algorithm and private["kid"] == out["kid"] and "d" in private
    assert private["d"] not in result.stdout
    shown = json.loads(served.run("client", "show", out["client_id"]).stdout)
    assert shown["auth_method"] == "private_key_jwt"
    [public] = shown["jwks"]["keys"]
    assert public["kid"] == out["kid"] and public["alg"] == algorithm
    assert "d" not in public and "p" not in public

    # The key works: a client_credentials token from the running server.
    credentials = load_credentials(out["client_id"], key_file)
    with http_client() as client:
        token_url = f"http://127.0.0.1:{served.port}/auth/token"
        answer = client.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "scope": "system/Patient.rs",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": client_assertion(credentials, token_url, time.time()),
            },
        )
    assert answer.status_code == 200, answer.text


def test_client_add_never_overwrites_a_key_file(served: Served, tmp_path: Path) -> None:
    key_file = tmp_path / "kept.jwk"
    key_file.write_text("mine")
    result = served.run(
        "client", "add", "--name", "x", "--generate-key", "ES384",
        "--private-key-out", str(key_file),
    )  # fmt: skip
    assert result.returncode == 2
    assert "exists" in result.stderr
    assert key_file.read_text() == "mine"


def test_generate_key_needs_a_private_key_file(served: Served) -> None:
    result = served.run("client", "add", "--name", "x", "--generate-key", "ES384")
    assert result.returncode == 2
    assert "--generate-key and --private-key-out go together" in result.stderr


# -- client ids ----------------------------------------------------------------------------------


def test_generated_client_ids_never_start_with_a_dash() -> None:
    """token_urlsafe's ids start with "-" one time in 64: `facade client show -abc` then
    reads the id as an option."""
    assert not any(new_client_id().startswith("-") for _ in range(5000))


def test_client_list_and_show_work_with_a_generated_id(served: Served) -> None:
    made = served.run("client", "add", "--name", "Listed app", "--redirect-uri", "https://a/cb")
    client_id = json.loads(made.stdout)["client_id"]
    listed = [json.loads(line) for line in served.run("client", "list").stdout.splitlines()]
    assert client_id in {c["client_id"] for c in listed}
    shown = served.run("client", "show", client_id)
    assert shown.returncode == 0, shown.stderr


# -- help ------------------------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, deeper in _subparsers(sub):
                    yield f"{name} {inner}", deeper


def test_every_option_of_every_command_has_help_text() -> None:
    missing = [
        f"facade {name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in _subparsers(_parser())
        for action in sub._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and not action.help
    ]
    assert missing == []


def test_sandbox_help_shows_its_defaults() -> None:
    result = subprocess.run(
        [FACADE, "sandbox", "drchrono", "--help"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    text = " ".join(result.stdout.split())
    assert "(default: 127.0.0.1)" in text
    assert "(default: 8900)" in text
    assert f"default: {Settings().sandbox_patients})" in text
    assert f"default: {Settings().sandbox_seed})" in text
    assert "(default: 500)" in text


# -- serve: the advertised base, and the vendor connection ---------------------------------------


def test_a_wildcard_bind_is_advertised_as_localhost_with_a_warning(tmp_path: Path) -> None:
    port = free_port()
    server = Running(
        ["serve", "--host", "0.0.0.0", "--port", str(port), "--data-dir", str(tmp_path / "d"),
         "--patients", "2"],
        clean_env(),
    )  # fmt: skip
    try:
        warning = server.wait_for(r"listening on every interface")
        assert "FACADE_PUBLIC_BASE_URL" in warning.string
        server.wait_for(re.escape(f"FHIR base URL http://localhost:{port}/fhir"))
        wait_until_listening(port, server)
        with http_client() as client:
            smart = client.get(f"http://127.0.0.1:{port}/fhir/.well-known/smart-configuration")
        assert smart.json()["token_endpoint"] == f"http://localhost:{port}/auth/token"
        assert "0.0.0.0" not in smart.text
    finally:
        server.stop()
    # A server that stopped leaves no record: commands fall back to the settings' base.
    assert not (tmp_path / "d" / "served-base.json").exists()


def test_a_record_left_by_a_dead_server_is_ignored(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, port=8123)
    # Above Linux's largest pid (2**22): no process has it.
    record_served_base(tmp_path, ServedBase(base_url="http://old:1/fhir", pid=2**22 + 12345))
    assert read_served_base(tmp_path) is None
    assert served_base_url(settings) == "http://127.0.0.1:8123/fhir"
    assert served_base_url(settings, "https://given/fhir/") == "https://given/fhir"


def test_a_public_base_url_wins_over_a_wildcard_bind_without_warning() -> None:
    settings = Settings(host="0.0.0.0", public_base_url="https://fhir.example/fhir")
    assert settings.base_url == "https://fhir.example/fhir"
    assert Settings(host="0.0.0.0", port=9000).base_url == "http://localhost:9000/fhir"
    assert Settings(host="::", port=9000).base_url == "http://localhost:9000/fhir"


def test_serve_says_not_connected_when_the_vendor_does_not_answer(tmp_path: Path) -> None:
    """A stored connection to a sandbox that has since stopped: serve starts, but says
    plainly that it is not connected instead of "connected to DrChrono"."""
    data_dir = tmp_path / "d"
    sandbox_port, serve_port = free_port(), free_port()
    secret = tmp_path / "secret"
    secret.write_text("a-sandbox-secret")
    secret.chmod(0o600)
    sandbox = Running(
        ["sandbox", "drchrono", "--port", str(sandbox_port), "--patients", "2",
         "--client-secret-file", str(secret)],
        clean_env(),
    )  # fmt: skip
    server: Running | None = None
    try:
        client_id = sandbox.wait_for(r"client id: (\S+)").group(1)
        wait_until_listening(sandbox_port, sandbox)
        connect = subprocess.run(
            [FACADE, "connect", "drchrono", "--base-url", f"http://127.0.0.1:{sandbox_port}",
             "--client-id", client_id, "--client-secret-file", str(secret),
             "--data-dir", str(data_dir), "--redirect-port", str(free_port()), "--no-browser",
             "--timeout", "60"],
            env=clean_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert connect.returncode == 0, connect.stderr
        sandbox.stop()

        server = Running(
            ["serve", "--data-dir", str(data_dir), "--port", str(serve_port)],
            clean_env(FACADE_ALLOW_HTTP="local-development", FACADE_UPSTREAM_TIMEOUT_SECONDS="2"),
        )
        line = server.wait_for(r"connected to ", timeout=60)
        assert "NOT connected to DrChrono at" in line.string
        assert "The EHR is unavailable" in line.string or "did not answer" in line.string
        assert "until the EHR answers" in line.string
    finally:
        sandbox.stop()
        if server is not None:
            server.stop()
