"""Export files in S3-compatible object storage (FACADE_EXPORT_STORE=s3://...), against a
real S3 API: moto's server, started on loopback for the module. A completed export's files
are published to the bucket (server-side encrypted) and leave the worker's disk; any replica
serves them after the token check, byte for byte what a local export writes; expiry and
cancel delete the objects."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from facade.app import create_app
from facade.clock import FakeClock
from facade.runtime import Runtime, build_runtime
from facade.settings import Settings
from tests.bulk.conftest import KICKOFF_HEADERS, export, job_id_of
from tests.conftest import FACADE_BASE
from tests.test_cli import free_port
from tests.tokens import FreshToken

BUCKET = "facade-exports"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a loopback port, for the module."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **CREDENTIALS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, trust_env=False, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "moto's server did not start"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def settings(settings: Settings, s3_server: str) -> Settings:
    return settings.with_overrides(
        export_store=f"s3://{BUCKET}/deployment-a", s3_endpoint_url=s3_server
    )


@pytest.fixture
async def local(
    settings: Settings, sandbox: Any, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """The same deployment with files on its own disk, for comparison."""
    own = settings.with_overrides(export_store="", data_dir=tmp_path / "local")
    built = await build_runtime(own, sandbox=sandbox, clock=clock)
    assert built.exports is not None
    await built.exports.worker.start()
    yield built
    await built.exports.worker.stop()
    await built.aclose()


def _objects(s3: Any) -> dict[str, dict[str, Any]]:
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {item["Key"]: item for item in listed}


async def test_a_completed_export_is_published_to_the_bucket_and_served_from_it(
    s3: Any, runtime: Runtime, exports: Any, fhir: httpx.AsyncClient, local: Runtime
) -> None:
    manifest = await export(fhir, exports, "$export?_type=Patient,Condition")
    job_id = manifest["output"][0]["url"].split("/")[-2]
    assert manifest["requiresAccessToken"] is True
    keys = _objects(s3)
    names = {entry["url"].rsplit("/", 1)[1] for entry in manifest["output"]}
    assert set(keys) == {f"deployment-a/{job_id}/{name}" for name in names}
    for key in keys:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
    # The worker's copies are gone: the bucket holds the export.
    assert not (runtime.settings.data_dir / "exports" / job_id).exists()

    served = {}
    for entry in manifest["output"]:
        answer = await fhir.get(entry["url"], headers={"Accept": "application/fhir+ndjson"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/fhir+ndjson")
        served[entry["type"]] = answer.content
        key = f"deployment-a/{job_id}/{entry['url'].rsplit('/', 1)[1]}"
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == answer.content

    # Byte for byte what the same export writes to a local disk.
    app = create_app(local.settings, local)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE, auth=FreshToken(local)
    ) as other:
        assert local.exports is not None
        local_manifest = await export(other, local.exports, "$export?_type=Patient,Condition")
        for entry in local_manifest["output"]:
            answer = await other.get(entry["url"])
            assert answer.content == served[entry["type"]]

    # Compressed on the way out when the client asks.
    entry = manifest["output"][0]
    gzipped = await fhir.get(entry["url"], headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.content == served[entry["type"]]  # httpx decodes it

    # Without the export's token: nothing.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime.settings, runtime)),
        base_url=FACADE_BASE,
    ) as anonymous:
        assert (await anonymous.get(entry["url"])).status_code == 401


async def test_cancelling_an_export_deletes_its_objects(
    s3: Any, runtime: Runtime, exports: Any, fhir: httpx.AsyncClient
) -> None:
    manifest = await export(fhir, exports, "$export?_type=Patient")
    job_id = manifest["output"][0]["url"].split("/")[-2]
    assert _objects(s3)
    deleted = await fhir.delete(f"/fhir/$export-status/{job_id}")
    assert deleted.status_code == 202
    assert _objects(s3) == {}
    gone = await fhir.get(manifest["output"][0]["url"])
    assert gone.status_code == 404


async def test_a_bucket_that_cannot_be_written_fails_the_export_with_a_reason(
    s3: Any, runtime: Runtime, exports: Any, fhir: httpx.AsyncClient
) -> None:
    s3.delete_bucket(Bucket=BUCKET)
    try:
        kicked = await fhir.get("/fhir/$export?_type=Patient", headers=KICKOFF_HEADERS)
        job_id = job_id_of(kicked)
        await exports.worker.wait(job_id)
        status = await fhir.get(f"/fhir/$export-status/{job_id}")
        assert status.status_code == 500
        outcome = status.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert "could not be stored" in outcome["issue"][0]["details"]["text"]
        assert "testing" not in status.text  # no credential in the reason
    finally:
        s3.create_bucket(Bucket=BUCKET)
