"""What the core needs from a vendor client: list pages, whole lists, single records.

Vendor clients (facade/upstream/<vendor>/) implement this; the core never imports them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from facade.core.mapping import MappingContext

Record = dict[str, Any]


@dataclass(frozen=True)
class VendorPage:
    url: str
    results: list[Record]
    next_url: str | None


class VendorClient(Protocol):
    vendor: str

    def list_url(self, endpoint: str, params: dict[str, str]) -> str: ...

    async def fetch_page(
        self, url: str, *, reason: str, cache_ttl: float = 0.0, max_wait: float | None = None
    ) -> VendorPage: ...

    async def list_all(
        self, endpoint: str, params: dict[str, str], *, reason: str, cache_ttl: float = 0.0
    ) -> list[Record]: ...

    async def get_document(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> bytes | None: ...

    async def fetch_file(self, url: str, *, max_bytes: int = ...) -> tuple[str, bytes]: ...

    async def get_record(
        self,
        endpoint: str,
        record_id: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> Record | None: ...


ContextLoader = Callable[[], Awaitable[MappingContext]]
