"""Fetching an asymmetric client's public keys from its registered `jwks_uri`.

https only (plain http only when facade itself runs without TLS, i.e. locally), a size and
time limit, no redirects, and a cache that honours Cache-Control max-age (never longer).
The HTTP client is injected, so tests route it to an in-process JWKS app.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from facade.clock import Clock

MAX_JWKS_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 5.0
#: Without a max-age the keys are used for this one request and then fetched again.
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)
#: However long a server says, refetch at least daily (key rotation).
MAX_CACHE = timedelta(days=1)


class JwksUnavailable(Exception):
    """The client's JWK Set could not be fetched or is not a JWK Set."""


@dataclass
class _Cached:
    jwks: dict[str, Any]
    expires_at: datetime


class JwksFetcher:
    def __init__(self, http: httpx.AsyncClient, clock: Clock, *, allow_http: bool = False):
        self._http = http
        self._clock = clock
        self._allow_http = allow_http
        self._cache: dict[str, _Cached] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(self, uri: str, *, refresh: bool = False) -> dict[str, Any]:
        now = self._clock.now()
        cached = self._cache.get(uri)
        if cached is not None and not refresh and cached.expires_at > now:
            return cached.jwks
        jwks, max_age = await self._fetch(uri)
        if max_age > 0:
            self._cache[uri] = _Cached(jwks, now + min(timedelta(seconds=max_age), MAX_CACHE))
        else:
            self._cache.pop(uri, None)
        return jwks

    async def _fetch(self, uri: str) -> tuple[dict[str, Any], int]:
        parts = urlsplit(uri)
        if parts.scheme != "https" and not (self._allow_http and parts.scheme == "http"):
            raise JwksUnavailable("jwks_uri must use https")
        if not parts.hostname:
            raise JwksUnavailable("jwks_uri has no host")
        try:
            async with self._http.stream(
                "GET",
                uri,
                headers={"Accept": "application/json"},
                follow_redirects=False,
                timeout=FETCH_TIMEOUT_SECONDS,
            ) as response:
                if response.status_code != 200:
                    raise JwksUnavailable(f"jwks_uri answered {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksUnavailable("jwks_uri answer is too large")
                cache_control = response.headers.get("cache-control", "")
        except httpx.HTTPError as exc:
            raise JwksUnavailable(f"jwks_uri unreachable ({type(exc).__name__})") from None
        try:
            jwks = json.loads(bytes(body))
        except ValueError:
            raise JwksUnavailable("jwks_uri answer is not JSON") from None
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise JwksUnavailable("jwks_uri answer is not a JWK Set")
        max_age = 0
        if not _NO_CACHE.search(cache_control):
            match = _MAX_AGE.search(cache_control)
            max_age = int(match.group(1)) if match else 0
        return jwks, max_age
