"""Status, cancel, files (tokens, gzip, ranges), expiry, crash/resume and the vendor's 429."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from facade.core.mapping import ResourceMapping
from facade.settings import Settings
from facade.upstream.drchrono.sandbox.state import SandboxLimits
from tests.bulk.conftest import (
    Crash,
    crash_at,
    download,
    export,
    finished,
    job_id_of,
    kick_off,
)
from tests.conftest import FHIR_BASE
from tests.tokens import token
from tests.vendors import VENDORS, patient_ids, set_hourly_limit, vendor_calls

pytestmark = VENDORS


@pytest.fixture
def sandbox_limits() -> SandboxLimits:
    # Small DrChrono pages, so every listing has several pages to checkpoint between (a
    # CareCloud export checkpoints after each patient).
    return SandboxLimits(burst_per_second=None, page_size_max=7, verbose_page_size_max=4)


async def test_cancel_then_404(fhir, exports):
    job = job_id_of(await kick_off(fhir, "$export"))
    assert (await fhir.delete(f"/fhir/$export-status/{job}")).status_code == 202
    gone = await fhir.get(f"/fhir/$export-status/{job}")
    assert gone.status_code == 404 and gone.json()["resourceType"] == "OperationOutcome"
    assert not (exports.files.root / job).exists()


async def test_files_need_the_same_clients_token(fhir, runtime, exports):
    manifest = await export(fhir, exports, "$export", params={"_type": "Patient"})
    url = manifest["output"][0]["url"]
    missing = await fhir.get(url, headers={"Authorization": ""})
    assert missing.status_code == 401
    other = token(runtime, "system/*.rs", client_id="another-client")
    assert (await fhir.get(url, headers={"Authorization": f"Bearer {other}"})).status_code == 404
    assert (await fhir.get(url, headers={"Authorization": "Bearer not-a-token"})).status_code == 401


async def test_gzip_and_byte_ranges(fhir, exports):
    manifest = await export(fhir, exports, "$export", params={"_type": "Patient"})
    url = manifest["output"][0]["url"]
    plain = (await fhir.get(url, headers={"Accept-Encoding": "identity"})).content
    zipped = await fhir.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == plain
    part = await fhir.get(url, headers={"Range": "bytes=10-", "Accept-Encoding": "identity"})
    assert part.status_code == 206 and part.content == plain[10:]
    assert gzip.compress(plain)  # the body is the NDJSON itself


async def test_files_split_at_the_size_bound(fhir, runtime, exports):
    exports.runner.limits = exports.limits = type(exports.limits)(file_size_bound=2000)
    manifest = await export(fhir, exports, "$export", params={"_type": "Patient"})
    patients = [o for o in manifest["output"] if o["type"] == "Patient"]
    assert len(patients) > 1
    assert sum(o["count"] for o in patients) == len(patient_ids(runtime.sandbox))


async def test_each_type_is_one_file_whatever_vendor_listings_fed_it(fhir, exports):
    job = job_id_of(await kick_off(fhir, "$export"))
    manifest = await finished(fhir, exports, job)

    fed_by: dict[str, list[tuple[str, str]]] = {}  # type → (listing, source) that fed it
    for part in exports.store.parts(job):
        for kind, source, *_ in json.loads(part.checkpoint)["listing"]["consumers"]:
            fed_by.setdefault(kind, []).append((part.source, source))
    assert all(len(fed_by[kind]) > 1 for kind in ("Condition", "Observation")), fed_by
    types = [o["type"] for o in manifest["output"]]
    assert sorted(types) == sorted(set(types)), "one output entry per type"
    assert {o["url"].rsplit("/", 1)[1] for o in manifest["output"]} == {
        f"{kind}-1.ndjson" for kind in types
    }


async def test_a_type_rolls_to_its_next_file_only_at_the_size_limit(fhir, exports):
    """Conditions (problems, then encounter diagnoses) fill each file up to the limit,
    across listings; the files' lines are the one-file export's, none lost or repeated."""
    whole = await export(fhir, exports, "$export", params={"_type": "Condition"})
    [single] = whole["output"]
    reference = (await fhir.get(single["url"])).content.splitlines()
    bound = sum(len(line) + 1 for line in reference) // 4
    exports.runner.limits = exports.limits = type(exports.limits)(file_size_bound=bound)

    split = await export(fhir, exports, "$export", params={"_type": "Condition"})

    assert [o["type"] for o in split["output"]] == ["Condition"] * len(split["output"])
    assert len(split["output"]) >= 4
    files = [(await fhir.get(o["url"])).content.splitlines() for o in split["output"]]
    assert [len(lines) for lines in files] == [o["count"] for o in split["output"]]
    assert sum(o["count"] for o in split["output"]) == single["count"]
    ids = [json.loads(line)["id"] for lines in files for line in lines]
    assert sorted(ids) == sorted(json.loads(line)["id"] for line in reference)
    for lines, following in zip(files, files[1:], strict=False):
        size = sum(len(line) + 1 for line in lines)
        assert size <= bound < size + len(following[0]) + 1, "rolled over before the limit"


async def test_files_expire_and_are_deleted_the_job_kept(fhir, runtime, clock, exports):
    job = job_id_of(await kick_off(fhir, "$export", params={"_type": "Patient"}))
    manifest = await finished(fhir, exports, job)
    clock.advance(exports.limits.file_expiry_seconds + 1)
    assert (await fhir.get(manifest["output"][0]["url"])).status_code == 404
    assert (await fhir.get(f"/fhir/$export-status/{job}")).status_code == 404
    assert not (exports.files.root / job).exists()
    assert exports.store.job(job).state == "expired"


async def test_crash_mid_export_resumes_without_duplicates_or_gaps(fhir, runtime, exports):
    reference = await export(fhir, exports, "$export")
    reference_files = {
        o["url"].rsplit("/", 1)[1]: (await fhir.get(o["url"])).content for o in reference["output"]
    }
    exports.runner.hook = crash_at(9)
    job = job_id_of(await kick_off(fhir, "$export"))
    await exports.worker.wait(job)
    assert exports.store.job(job).state == "running"  # died mid-export
    await exports.worker.stop()
    exports.runner.hook = None
    await exports.worker.start()  # a new process: resumes from the database
    manifest = await finished(fhir, exports, job)
    resumed = {
        o["url"].rsplit("/", 1)[1]: (await fhir.get(o["url"])).content for o in manifest["output"]
    }
    assert resumed == reference_files
    lines = [line for body in resumed.values() for line in body.splitlines()]
    assert len(lines) == len(set(lines))


async def test_resuming_without_the_earlier_files_fails_the_export_instead_of_padding_them(
    fhir, runtime, exports
):
    """A worker on another machine takes over a job whose partial files were on the dead
    worker's disk: the export fails with the reason, never completes with corrupt files."""
    exports.runner.hook = crash_at(9)
    job = job_id_of(await kick_off(fhir, "$export"))
    await exports.worker.wait(job)
    await exports.worker.stop()
    exports.runner.hook = None
    for written in exports.files.job_dir(job).glob("*.ndjson"):
        written.unlink()  # this machine never had them
    await exports.worker.start()
    await exports.worker.wait(job)
    status = await fhir.get(f"/fhir/$export-status/{job}")
    assert status.status_code == 500
    assert "not where it resumed" in status.json()["issue"][0]["details"]["text"]
    assert not list(exports.files.job_dir(job).glob("*.ndjson"))


async def test_crash_while_spilling_a_lookup_list_resumes_at_the_next_vendor_page(
    fhir, runtime, exports
):
    reference = await download(fhir, await export(fhir, exports, "$export"))
    spilled = []

    def crash(point: str, part: int, records: int) -> None:
        if point == "lookup-page-spilled":
            spilled.append(records)
            if len(spilled) == 1:
                raise Crash()  # the first lookup page is committed to the spill

    runtime.sandbox.request_log.clear()
    exports.runner.hook = crash
    job = job_id_of(await kick_off(fhir, "$export"))
    await exports.worker.wait(job)
    spill = exports.files.job_dir(job) / ".lookups.sqlite"
    assert exports.store.job(job).state == "running" and spill.is_file()
    # Progress counts a fill's calls as they are spent, not when the listing's pages begin.
    assert exports.store.job(job).calls_spent == len(vendor_calls(runtime.sandbox))
    assert spill.stat().st_mode & 0o777 == 0o600
    assert exports.files.path(job, spill.name) is None  # never served as an export file
    await exports.worker.stop()
    exports.runner.hook = None
    await exports.worker.start()
    got = await download(fhir, await finished(fhir, exports, job))
    assert got == reference
    # Across the crash, every vendor page of the export was fetched once.
    practice = practice_lists(runtime)
    pages = [
        (r.path, tuple(sorted(r.query.items())))
        for r in vendor_calls(runtime.sandbox)
        if r.endpoint not in practice
    ]
    assert len(pages) == len(set(pages))
    assert not spill.exists()  # scratch, gone with the finished job


async def test_a_first_export_extrapolates_its_progress_once_past_its_plan(fhir, exports):
    # No export ran before: every listing is planned at one call, far below what it spends.
    def stop(point: str, part: int, count: int) -> None:
        record = exports.store.job(job)
        if record.calls_spent > record.estimated_calls:  # a page written past the plan
            raise Crash()

    exports.runner.hook = stop
    job = job_id_of(await kick_off(fhir, "$export"))
    await exports.worker.wait(job)
    record = exports.store.job(job)
    assert record.calls_spent > record.estimated_calls  # past the plan
    poll = await fhir.get(f"/fhir/$export-status/{job}")
    assert poll.status_code == 202
    progress = poll.headers["x-progress"]
    percent, spent, estimate = re.match(
        r"exporting: (\d+)%, (\d+)/~(\d+) vendor", progress
    ).groups()
    assert int(spent) == record.calls_spent < int(estimate)
    parts = exports.store.parts(job)
    done = sum(1 for part in parts if part.state != "pending")
    assert int(percent) == 100 * int(spent) // int(estimate) < 99
    assert int(estimate) == -(-record.calls_spent * len(parts) * 2 // (2 * done + 1))


async def test_an_internal_error_fails_the_export_with_a_reason(fhir, exports, caplog):
    def disk_full(point: str, part: int, count: int) -> None:
        if point == "lookup-page-spilled":
            raise OSError(28, "No space left on device (message that could quote a record)")

    exports.runner.hook = disk_full
    job = job_id_of(await kick_off(fhir, "$export"))
    await exports.worker.wait(job)
    assert exports.store.job(job).state == "failed"
    status = await fhir.get(f"/fhir/$export-status/{job}")
    assert status.status_code == 500
    outcome = status.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "internal error (OSError)" in outcome["issue"][0]["details"]["text"]
    assert not (exports.files.job_dir(job) / ".lookups.sqlite").exists()
    assert "internal error: OSError at" in caplog.text
    assert "could quote a record" not in caplog.text  # the log names the error, not its text


@pytest.fixture
def settings(tmp_path, vendor_name) -> Settings:
    return Settings(
        vendor=vendor_name,
        data_dir=tmp_path / "data",
        public_base_url=FHIR_BASE,
        upstream_burst_per_second=0,
        upstream_timeout_seconds=0.5,
        upstream_hourly_limit=100_000,  # facade does not know the vendor's limit: it learns by 429
    )


async def test_vendor_429_pauses_until_the_quota_resets_then_finishes(
    fhir, runtime, clock, exports
):
    reference = await download(fhir, await export(fhir, exports, "$export"))
    # Half the calls the export makes: it runs into the limit, waits, and goes on.
    set_hourly_limit(runtime.sandbox, len(vendor_calls(runtime.sandbox)) // 2)
    clock.advance(3600)
    job = job_id_of(await kick_off(fhir, "$export"))
    manifest = await finished(fhir, exports, job)
    throttled = [r for r in vendor_calls(runtime.sandbox) if r.status == 429]
    assert throttled, "the export ran into the vendor's hourly limit"
    got = await download(fhir, manifest)
    assert {t: {r["id"] for r in v} for t, v in got.items()} == {
        t: {r["id"] for r in v} for t, v in reference.items()
    }


async def test_vendor_5xx_that_persists_fails_only_that_part(fhir, runtime, exports):
    await runtime.service.context()
    runtime.sandbox.fail_next(4, "500")  # the first listing's call and its 3 retries
    job = job_id_of(await kick_off(fhir, "$export", params={"_type": "Patient,AllergyIntolerance"}))
    manifest = await finished(fhir, exports, job)
    errors = await fhir.get(manifest["error"][0]["url"])
    assert b"export-part-failed" in errors.content
    [failed] = [p for p in exports.store.parts(job) if p.state == "failed"]
    others = {"Patient", "AllergyIntolerance"} - set(failed.resource_type.split(","))
    assert others and {o["type"] for o in manifest["output"]} == others


def practice_lists(runtime) -> set[str]:
    """The practice lists facade keeps in its own cache (re-read after a restart, never
    paged twice within one run)."""
    return {
        m.endpoint
        for m in runtime.service.registry
        if isinstance(m, ResourceMapping) and m.lookup_data
    }
