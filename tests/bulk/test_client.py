"""`facade export` against facade itself, in-process: SMART backend authentication with an
RS384 (PEM) or ES384 (JWK) key, kick-off, polling, downloads, count checks, the files."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from joserfc.jwk import ECKey, RSAKey

from facade.app import create_app
from facade.bulk.client import (
    ExportError,
    ExportOptions,
    ExportResult,
    load_credentials,
    options_from_args,
    run_export,
    summary,
)
from facade.bulk.exports import BulkExports
from facade.cli import _parser
from facade.clock import FakeClock
from facade.runtime import Runtime
from tests.conftest import FHIR_BASE


@pytest.fixture
async def plain_http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to facade with no credentials of its own (the export client logs in)."""
    transport = httpx.ASGITransport(app=create_app(runtime.settings, runtime))
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


def register_backend(runtime: Runtime, tmp_path: Path, alg: str, scope: str) -> Path:
    """Registers a backend service with a public JWK Set; returns its private key file."""
    params = {"kid": secrets.token_hex(6), "alg": alg, "use": "sig"}
    key: RSAKey | ECKey
    if alg == "RS384":
        key = RSAKey.generate_key(2048, parameters=params, private=True)
    else:
        key = ECKey.generate_key("P-384", parameters=params, private=True)
    assert runtime.authorization is not None
    made = runtime.authorization.clients.register(
        name=f"exporter {alg}",
        auth_method="private_key_jwt",
        redirect_uris=[],
        scope=scope,
        grant_types=["client_credentials"],
        jwks={"keys": [key.as_dict(private=False)]},
    )
    path = tmp_path / f"{made.client.client_id}.key"
    if alg == "RS384":  # a PEM file: the kid is given on the command line
        path.write_bytes(key.as_pem(private=True))
        (tmp_path / "kid").write_text(key.kid or "")
    else:
        path.write_text(json.dumps(key.as_dict(private=True)))
    (tmp_path / "client_id").write_text(made.client.client_id)
    return path


def options_for(tmp_path: Path, key_file: Path, *extra: str, out: str = "out") -> ExportOptions:
    kid = (tmp_path / "kid").read_text() if (tmp_path / "kid").exists() else ""
    argv = ["export", FHIR_BASE, "--out", str(tmp_path / out)]
    argv += [f"--client-id={(tmp_path / 'client_id').read_text()}", "--key", str(key_file)]
    if kid:
        argv += ["--kid", kid]
    return options_from_args(_parser().parse_args([*argv, *extra]))


class Recorder:
    """Progress lines and the client's sleeps (each yields to the in-process worker)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.progress: list[tuple[str, float | None]] = []
        self.sleeps: list[float] = []

    def __call__(self, text: str, percent: float | None) -> None:
        self.progress.append((text, percent))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0.01)

    def now(self) -> float:
        return self.clock.now().timestamp()


async def export_with(
    options: ExportOptions, http: httpx.AsyncClient, clock: FakeClock
) -> tuple[ExportResult, Recorder]:
    recorder = Recorder(clock)
    result = await run_export(
        options, http, progress=recorder, sleep=recorder.sleep, now=recorder.now
    )
    return result, recorder


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_full_system_export_lands_in_the_out_directory_verified(
    alg: str, runtime: Runtime, exports: BulkExports, plain_http, clock, tmp_path
):
    key_file = register_backend(runtime, tmp_path, alg, "system/*.rs")
    result, recorder = await export_with(options_for(tmp_path, key_file), plain_http, clock)

    data = runtime.sandbox.dataset
    out = tmp_path / "out"
    written = sorted(p.name for p in out.iterdir() if p.name != ".facade-export.json")
    assert written == sorted(f.path.name for f in result.files)
    for item in result.outputs:
        lines = read_ndjson(item.path)
        assert len(lines) == item.count == item.expected
        assert {r["resourceType"] for r in lines} == {item.resource_type}
    patients = [
        r for f in result.outputs if f.resource_type == "Patient" for r in read_ndjson(f.path)
    ]
    assert {p["id"] for p in patients} == {str(p["id"]) for p in data.endpoint("patients")}
    counts = result.counts()
    assert counts["AllergyIntolerance"] == len(data.endpoint("allergies"))
    assert counts["Practitioner"] == len(data.endpoint("doctors"))
    # Every manifest entry became one file, counts as the manifest said.
    manifest_counts: dict[str, int] = {}
    for entry in result.manifest["output"]:
        manifest_counts[entry["type"]] = manifest_counts.get(entry["type"], 0) + entry["count"]
    assert manifest_counts == counts
    assert recorder.progress[-1] == ("complete", 100.0)
    assert recorder.sleeps and set(recorder.sleeps) == {2.0}  # facade says Retry-After: 2
    lines = summary(result)
    assert lines[0].startswith("export complete") and "counts verified" in lines[-1]


async def test_types_and_since_narrow_the_export_and_the_scope(
    runtime: Runtime, exports: BulkExports, plain_http, clock, tmp_path
):
    key_file = register_backend(runtime, tmp_path, "ES384", "system/*.rs")
    options = options_for(tmp_path, key_file, "--type", "Patient,AllergyIntolerance")
    assert options.requested_scope() == "system/Patient.rs system/AllergyIntolerance.rs"
    result, _ = await export_with(options, plain_http, clock)
    assert set(result.counts()) == {"Patient", "AllergyIntolerance"}
    assert "_type=" in result.manifest["request"]

    later = options_for(
        tmp_path, key_file, "--type", "Patient", "--since", "2999-01-01T00:00:00Z", out="later"
    )
    nothing, _ = await export_with(later, plain_http, clock)
    assert sum(nothing.counts().values()) == 0


async def test_patient_list_is_a_post_kickoff_with_only_those_patients(
    runtime: Runtime, exports: BulkExports, plain_http, clock, tmp_path
):
    key_file = register_backend(runtime, tmp_path, "ES384", "system/*.rs")
    chosen = [str(p["id"]) for p in runtime.sandbox.dataset.endpoint("patients")[:2]]
    options = options_for(tmp_path, key_file, "--patient", chosen[0], "--patient", chosen[1])
    result, _ = await export_with(options, plain_http, clock)
    assert result.manifest["request"].endswith("/Patient/$export")
    patients = [
        r for f in result.outputs if f.resource_type == "Patient" for r in read_ndjson(f.path)
    ]
    assert sorted(p["id"] for p in patients) == sorted(chosen)
    allergies = [
        r
        for f in result.outputs
        if f.resource_type == "AllergyIntolerance"
        for r in read_ndjson(f.path)
    ]
    assert {a["patient"]["reference"].rpartition("/")[2] for a in allergies} <= set(chosen)


async def test_group_export_of_an_operator_group(
    runtime: Runtime, exports: BulkExports, plain_http, clock, tmp_path
):
    from facade.bulk.client import add_group

    chosen = [str(p["id"]) for p in runtime.sandbox.dataset.endpoint("patients")[3:6]]
    group = await add_group(runtime, "Payer attribution list", chosen)
    assert group["id"] == "Payer-attribution-list" and group["quantity"] == 3
    key_file = register_backend(runtime, tmp_path, "RS384", "system/*.rs")
    options = options_for(tmp_path, key_file, "--group", group["id"], "--type", "Patient")
    assert options.requested_scope() == "system/Patient.rs system/Group.rs"
    result, _ = await export_with(options, plain_http, clock)
    patients = [r for f in result.outputs for r in read_ndjson(f.path)]
    assert sorted(p["id"] for p in patients) == sorted(chosen)


async def test_a_refused_kickoff_is_reported_with_the_servers_diagnostics(
    runtime: Runtime, exports: BulkExports, plain_http, clock, tmp_path
):
    key_file = register_backend(runtime, tmp_path, "ES384", "system/*.rs")
    options = options_for(tmp_path, key_file, "--type", "NotAType")
    with pytest.raises(ExportError, match=r"kick-off refused \(400\).*NotAType"):
        await export_with(options, plain_http, clock)


async def test_an_unregistered_key_is_refused_at_the_token_endpoint(
    runtime: Runtime, exports: BulkExports, plain_http, clock, tmp_path
):
    register_backend(runtime, tmp_path, "ES384", "system/*.rs")
    stranger = ECKey.generate_key("P-384", parameters={"kid": "stranger"}, private=True)
    other = tmp_path / "stranger.jwk"
    other.write_text(json.dumps(stranger.as_dict(private=True)))
    with pytest.raises(ExportError, match=r"token endpoint refused"):
        await export_with(options_for(tmp_path, other), plain_http, clock)


def test_key_files_pick_the_algorithm_and_kid(tmp_path):
    rsa = RSAKey.generate_key(2048, private=True)
    pem = tmp_path / "rsa.pem"
    pem.write_bytes(rsa.as_pem(private=True))
    loaded = load_credentials("c", pem)
    assert loaded.alg == "RS384" and loaded.kid == rsa.thumbprint()
    ec = ECKey.generate_key("P-384", parameters={"kid": "k1"}, private=True)
    jwks = tmp_path / "set.json"
    jwks.write_text(json.dumps({"keys": [ec.as_dict(private=True)]}))
    assert (load_credentials("c", jwks).alg, load_credentials("c", jwks).kid) == ("ES384", "k1")
    public = tmp_path / "public.json"
    public.write_text(json.dumps(ec.as_dict(private=False)))
    with pytest.raises(ExportError, match="not a private key"):
        load_credentials("c", public)
    p256 = tmp_path / "p256.json"
    p256.write_text(json.dumps(ECKey.generate_key("P-256", private=True).as_dict(private=True)))
    with pytest.raises(ExportError, match="P-384"):
        load_credentials("c", p256)


def test_the_cli_parses_export_options(tmp_path):
    args = _parser().parse_args(
        ["export", "http://x/fhir/", "--patient", "1", "--patient", "2", "--type", "Patient"]
    )
    options = options_from_args(args)
    assert (options.base, options.patients, options.types) == (
        "http://x/fhir",
        ("1", "2"),
        ("Patient",),
    )
    with pytest.raises(SystemExit):
        _parser().parse_args(["export", "http://x/fhir", "--group", "g", "--patient", "1"])
    with pytest.raises(ExportError, match="go together"):
        options_from_args(_parser().parse_args(["export", "http://x/fhir", "--client-id", "c"]))
