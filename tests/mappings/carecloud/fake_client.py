"""A stateful stand-in for the CareCloud client in mapping read tests: it serves records by
endpoint and id, as `GET /<endpoint>/<id>` would, and records every call it answered."""

from __future__ import annotations

from typing import Any


class RecordingClient:
    vendor = "carecloud"

    def __init__(self, records: dict[str, dict[str, dict[str, Any]]]):
        self._records = records
        self.calls: list[tuple[str, str]] = []

    async def get_record(
        self,
        endpoint: str,
        record_id: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> dict[str, Any] | None:
        self.calls.append((endpoint, record_id))
        return self._records.get(endpoint, {}).get(record_id)
