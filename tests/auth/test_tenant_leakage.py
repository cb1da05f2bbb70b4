"""Two practices in one deployment, on different vendors (tenants `north` on DrChrono and
`south` on CareCloud, each on its embedded sandbox), served by one `facade serve`: each
serves its own data at its own base, and nothing of one works at the other. A token, a
client, an export job or a patient id of one tenant is refused at the other exactly as
something that does not exist, and an unknown or disabled tenant answers as any address facade
does not serve. On SQLite (a database file per tenant) and PostgreSQL (a schema per tenant).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from facade.bulk.client import client_assertion, load_credentials
from tests.databases import fresh_postgres_database
from tests.test_cli import FACADE, Running, clean_env, free_port, wait_until_listening

TENANTS = {"north": "drchrono", "south": "carecloud"}
#: Each tenant's vendor account's quota: south's is its own, north's the deployment default.
QUOTAS = {"north": 500, "south": 300}


@dataclass
class Deployment:
    server: Running
    data_dir: Path
    database_url: str
    port: int

    def facade(self, *args: str) -> subprocess.CompletedProcess[str]:
        options = ["--data-dir", str(self.data_dir)]
        if self.database_url:
            options += ["--database-url", self.database_url]
        return subprocess.run(
            [FACADE, *args, *options], env=clean_env(), capture_output=True, text=True, timeout=60
        )

    def token(self, tenant: str) -> str:
        minted = self.facade("token", "--tenant", tenant, "--scope", "system/*.rs")
        assert minted.returncode == 0, minted.stderr
        return str(json.loads(minted.stdout)["access_token"])

    def get(self, path: str, token: str = "", **headers: str) -> httpx.Response:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        with httpx.Client(trust_env=False, timeout=60) as http:
            return http.get(f"http://127.0.0.1:{self.port}{path}", headers=headers)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    data_dir = tmp_path_factory.mktemp("tenants") / "state"
    with (
        fresh_postgres_database("facade_tenants")
        if request.param == "postgresql"
        else _no_database()
    ) as url:
        port = free_port()
        unstarted = Deployment(None, data_dir, url, port)  # type: ignore[arg-type]
        for name, vendor in TENANTS.items():
            quota = ["--hourly-limit", str(QUOTAS[name])] if name == "south" else []
            added = unstarted.facade("tenant", "add", name, "--vendor", vendor, *quota)
            assert added.returncode == 0, added.stderr
        args = ["serve", "--data-dir", str(data_dir), "--port", str(port), "--patients", "8"]
        if url:
            args += ["--database-url", url]
        server = Running(args, clean_env())
        try:
            wait_until_listening(port, server, timeout=120)
            yield Deployment(server, data_dir, url, port)
        finally:
            server.stop()


class _no_database:
    def __enter__(self) -> str:
        return ""

    def __exit__(self, *_: object) -> None:
        return None


def test_each_tenant_serves_its_own_vendor_at_its_own_base(deployment: Deployment) -> None:
    for name, vendor in TENANTS.items():
        metadata = deployment.get(f"/{name}/fhir/metadata")
        assert metadata.status_code == 200, metadata.text
        assert metadata.json()["implementation"]["url"].endswith(f"/{name}/fhir")
        assert vendor in metadata.json()["implementation"]["description"]
        smart = deployment.get(f"/{name}/fhir/.well-known/smart-configuration").json()
        assert smart["issuer"].endswith(f"/{name}/fhir")
        assert smart["token_endpoint"].endswith(f"/{name}/auth/token")
        patients = deployment.get(f"/{name}/fhir/Patient?_count=3", deployment.token(name))
        assert patients.status_code == 200, patients.text
        assert patients.json()["entry"]
        assert all(f"/{name}/fhir/" in link["url"] for link in patients.json()["link"])
        health = deployment.get(f"/{name}/health").json()
        assert health["vendorBudget"]["hourlyLimit"] == QUOTAS[name]
        assert health["fhirBase"].endswith(f"/{name}/fhir")
    # The single-practice base is not served: every practice has its own.
    assert deployment.get("/fhir/metadata").status_code == 404


def test_a_token_of_one_tenant_is_refused_at_the_other(deployment: Deployment) -> None:
    north, south = deployment.token("north"), deployment.token("south")
    for tenant, foreign in (("north", south), ("south", north)):
        refused = deployment.get(f"/{tenant}/fhir/Patient?_count=1", foreign)
        assert refused.status_code == 401, refused.text
        assert refused.json()["resourceType"] == "OperationOutcome"
        with httpx.Client(trust_env=False) as http:
            introspected = http.post(
                f"http://127.0.0.1:{deployment.port}/{tenant}/auth/introspect",
                data={"token": foreign},
                headers={"Authorization": f"Bearer {deployment.token(tenant)}"},
            )
        assert introspected.json() == {"active": False}


def test_a_client_registered_at_one_tenant_does_not_exist_at_the_other(
    deployment: Deployment, tmp_path: Path
) -> None:
    key_file = tmp_path / "payer.jwk"
    added = deployment.facade(
        "client", "add", "--tenant", "north", "--name", "payer", "--scope", "system/*.rs",
        "--generate-key", "ES384", "--private-key-out", str(key_file),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    client_id = json.loads(added.stdout)["client_id"]
    credentials = load_credentials(client_id, key_file)
    answers = {}
    for tenant in TENANTS:
        token_url = f"http://127.0.0.1:{deployment.port}/{tenant}/auth/token"
        with httpx.Client(trust_env=False) as http:
            answers[tenant] = http.post(
                token_url,
                data={
                    "grant_type": "client_credentials",
                    "scope": "system/Patient.rs",
                    "client_assertion_type": (
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                    ),
                    "client_assertion": client_assertion(credentials, token_url, time.time()),
                },
            )
    assert answers["north"].status_code == 200, answers["north"].text
    # As a client that was never registered anywhere (RFC 6749 §5.2).
    assert answers["south"].status_code in (400, 401)
    assert answers["south"].json()["error"] == "invalid_client", answers["south"].text
    listed = deployment.facade("client", "list", "--tenant", "south")
    assert client_id not in listed.stdout


def test_an_export_and_a_patient_of_one_tenant_are_not_found_at_the_other(
    deployment: Deployment,
) -> None:
    north, south = deployment.token("north"), deployment.token("south")
    kicked = deployment.get(
        "/north/fhir/$export?_type=Patient",
        north,
        Prefer="respond-async",
        Accept="application/fhir+json",
    )
    assert kicked.status_code == 202, kicked.text
    job = kicked.headers["Content-Location"].rsplit("/", 1)[1]
    assert deployment.get(f"/south/fhir/$export-status/{job}", south).status_code == 404
    deadline = time.monotonic() + 60
    while (status := deployment.get(f"/north/fhir/$export-status/{job}", north)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert status.status_code == 200, status.text
    [output] = status.json()["output"]
    name = output["url"].rsplit("/", 1)[1]
    assert deployment.get(f"/south/fhir/$export-file/{job}/{name}", south).status_code == 404
    accept = {"Accept": "application/fhir+ndjson"}
    assert (
        deployment.get(f"/north/fhir/$export-file/{job}/{name}", north, **accept).status_code == 200
    )

    patient = deployment.get("/north/fhir/Patient?_count=1", north).json()["entry"][0]
    pid = patient["resource"]["id"]
    assert deployment.get(f"/south/fhir/Patient/{pid}", south).status_code == 404
    # Each tenant's audit log holds its own accesses only.
    north_audit = deployment.facade("audit", "--tenant", "north", "--patient", pid)
    south_audit = deployment.facade("audit", "--tenant", "south", "--patient", pid)
    assert north_audit.returncode == south_audit.returncode == 0
    assert pid in north_audit.stdout
    assert all(json.loads(line)["outcome"] != "success" for line in south_audit.stdout.splitlines())


def test_an_unknown_or_disabled_tenant_answers_as_nothing_served(
    deployment: Deployment,
) -> None:
    token = deployment.token("south")
    unknown = deployment.get("/east/fhir/Patient", token)
    assert unknown.status_code == 404
    disabled = deployment.facade("tenant", "disable", "south")
    assert disabled.returncode == 0, disabled.stderr
    try:
        refused = deployment.get("/south/fhir/Patient", token)
        assert refused.status_code == 404
        assert refused.json() == unknown.json()  # the same answer: its existence is not told
        assert deployment.get("/north/fhir/metadata").status_code == 200
    finally:
        assert deployment.facade("tenant", "enable", "south").returncode == 0
    assert deployment.get("/south/fhir/Patient?_count=1", token).status_code == 200


def test_operator_groups_and_the_export_command_work_on_one_tenant(
    deployment: Deployment, tmp_path: Path
) -> None:
    token = deployment.token("north")
    patient = deployment.get("/north/fhir/Patient?_count=1", token).json()["entry"][0]
    pid = patient["resource"]["id"]
    added = deployment.facade(
        "group", "add", "--tenant", "north", "--name", "north cohort", "--member", pid
    )
    assert added.returncode == 0, added.stderr
    assert "north cohort" in deployment.facade("group", "list", "--tenant", "north").stdout
    assert "north cohort" not in deployment.facade("group", "list", "--tenant", "south").stdout

    key_file = tmp_path / "exporter.jwk"
    client = deployment.facade(
        "client", "add", "--tenant", "north", "--name", "exporter", "--scope", "system/*.rs",
        "--generate-key", "ES384", "--private-key-out", str(key_file),
    )  # fmt: skip
    client_id = json.loads(client.stdout)["client_id"]
    out = tmp_path / "north-export"
    exported = subprocess.run(
        [FACADE, "export", "--data-dir", str(deployment.data_dir), "--tenant", "north",
         "--type", "Patient", "--out", str(out), "--client-id", client_id, "--key", str(key_file)],
        # `facade export` finds the deployment's database as every command does.
        env=clean_env(**({"FACADE_DATABASE_URL": deployment.database_url}
                         if deployment.database_url else {})),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    [written] = [path for path in out.rglob("*.ndjson") if "Patient" in path.name]
    lines = written.read_bytes().splitlines()
    assert pid in {json.loads(line)["id"] for line in lines}
