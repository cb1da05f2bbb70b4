"""The practice facts CareCloud mappings need: the business entity (the practice) and its
time zone, read once from GET /authorization through the same client and call budget as
everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from facade.core.mapping import MappingContext
from facade.errors import UpstreamUnavailable

log = logging.getLogger("facade.upstream.carecloud")


class AuthorizationReader(Protocol):
    async def get_path(self, path: str, *, reason: str, cache_ttl: float = 0.0) -> Any: ...


def context_loader(
    client: AuthorizationReader, lookup_ttl: float
) -> Callable[[], Awaitable[MappingContext]]:
    """The vendor entry's context loader: the practice context, read when first needed."""

    async def load() -> MappingContext:
        return await load_practice_context(client, lookup_ttl)

    return load


async def readiness_probe(client: AuthorizationReader) -> object:
    """One authorized call that proves the session still reads the practice (uncached)."""
    return await client.get_path("/authorization", reason="readiness probe")


async def load_practice_context(client: AuthorizationReader, lookup_ttl: float) -> MappingContext:
    body = await client.get_path(
        "/authorization", reason="practice context: authorization", cache_ttl=lookup_ttl
    )
    return context_from_authorization(body)


def context_from_authorization(body: Any) -> MappingContext:
    """`{"user": ..., "business_entity": {"id", "name", "time_zone", ...}}` → the context."""
    entity = body.get("business_entity") if isinstance(body, dict) else None
    if not isinstance(entity, dict) or not entity.get("id"):
        raise UpstreamUnavailable("CareCloud's /authorization answer names no business entity.")
    zone_name = str(entity.get("time_zone") or "UTC")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown practice time zone; using UTC")
        zone = ZoneInfo("UTC")
    return MappingContext(
        practice_group_id=str(entity["id"]),
        practice_name=str(entity.get("name") or "Practice"),
        timezone=zone,
    )
