"""Bulk export helpers: kick off through HTTP, let the in-process worker finish, read files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from facade.bulk.exports import BulkExports
from facade.runtime import Runtime

KICKOFF_HEADERS = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


@pytest.fixture
async def exports(runtime: Runtime) -> AsyncIterator[BulkExports]:
    assert runtime.exports is not None
    await runtime.exports.worker.start()
    yield runtime.exports
    await runtime.exports.worker.stop()


class Crash(BaseException):
    """The process dies here (nothing below the worker catches it)."""


def crash_at(points: int) -> Callable[[str, int, int], None]:
    """A runner hook that kills the export at its `points`-th fault point: after that page's
    lines are written, before its checkpoint."""
    seen = []

    def crash(point: str, part: int, pages: int) -> None:
        seen.append((part, pages))
        if len(seen) == points:
            raise Crash()

    return crash


def job_id_of(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    return response.headers["content-location"].rsplit("/", 1)[1]


async def kick_off(
    fhir: httpx.AsyncClient, path: str, *, body: dict[str, Any] | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {**KICKOFF_HEADERS, **kwargs.pop("headers", {})}
    if body is not None:
        return await fhir.post(f"/fhir/{path}", json=body, headers=headers, **kwargs)
    return await fhir.get(f"/fhir/{path}", headers=headers, **kwargs)


async def finished(fhir: httpx.AsyncClient, exports: BulkExports, job_id: str) -> dict[str, Any]:
    await exports.worker.wait(job_id)
    status = await fhir.get(f"/fhir/$export-status/{job_id}")
    assert status.status_code == 200, (status.status_code, status.headers, status.text)
    manifest: dict[str, Any] = status.json()
    return manifest


async def export(
    fhir: httpx.AsyncClient, exports: BulkExports, path: str, **kwargs: Any
) -> dict[str, Any]:
    return await finished(fhir, exports, job_id_of(await kick_off(fhir, path, **kwargs)))


async def download(fhir: httpx.AsyncClient, manifest: dict[str, Any]) -> dict[str, list[dict]]:
    by_type: dict[str, list[dict]] = {}
    for item in manifest["output"]:
        response = await fhir.get(item["url"])
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in response.content.splitlines() if line]
        assert len(lines) == item["count"]
        assert all(r["resourceType"] == item["type"] for r in lines)
        by_type.setdefault(item["type"], []).extend(lines)
    return by_type
