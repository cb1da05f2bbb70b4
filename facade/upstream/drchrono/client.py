"""The DrChrono v4 client: tokens, paging, the call budget, retries, redirects and caching.

It and the request loop it runs under DrChrono's rules (facade/upstream/retry.py) are the one
place where DrChrono's HTTP failures become facade errors. It never logs a token or a record,
and it never sends the bearer token to a host other than the vendor's.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol, cast
from urllib.parse import urlencode, urljoin, urlsplit

import anyio
import httpx
import orjson

from facade.clock import Clock
from facade.core.vendor import VendorPage
from facade.errors import UpstreamAuthFailed, UpstreamTimeout, UpstreamUnavailable
from facade.store.connections import VendorCredentials
from facade.upstream.budget import UpstreamBudget, parse_throttle_wait
from facade.upstream.cache import ResponseCache
from facade.upstream.drchrono.oauth import refresh_tokens
from facade.upstream.drchrono.wire import WIRE
from facade.upstream.paging import pages
from facade.upstream.retry import ClientPolicy as ClientPolicy
from facade.upstream.retry import RequestLoop, VendorRules, retry_after

log = logging.getLogger("facade.upstream.drchrono")

Record = dict[str, Any]

#: Refresh the access token this long before it expires.
REFRESH_MARGIN = timedelta(minutes=5)
#: A 429 that names no wait at all is waited out this long before facade asks again.
UNSTATED_THROTTLE_SECONDS = 60.0


class CredentialKeeper(Protocol):
    """Where the client reads its credentials and writes refreshed tokens."""

    def load(self) -> VendorCredentials: ...

    def save(self, credentials: VendorCredentials) -> None: ...


class DrChronoClient:
    vendor = "drchrono"
    wire = WIRE

    def __init__(
        self,
        http: httpx.AsyncClient,
        keeper: CredentialKeeper,
        budget: UpstreamBudget,
        cache: ResponseCache,
        clock: Clock,
        policy: ClientPolicy | None = None,
    ):
        self._http = http
        self._keeper = keeper
        self.budget = budget
        self.cache = cache
        self._clock = clock
        self.policy = policy or ClientPolicy()
        self._credentials = keeper.load()
        self._refresh_lock = asyncio.Lock()
        self._requests = RequestLoop(
            VendorRules(
                name="The EHR",
                token=self._access_token,
                renew=self._renew,
                # DrChrono's 401 names no cause: the token is refreshed once, whatever it says.
                session_ended=lambda response: True,
                throttle_wait=_throttle_wait,
                own_url=self._same_origin,
                endpoint_of=_endpoint_of,
                log_call=_log_call,
            ),
            budget,
            clock,
            self.policy,
        )

    @property
    def base_url(self) -> str:
        return self._credentials.base_url.rstrip("/")

    def list_url(self, endpoint: str, params: dict[str, str]) -> str:
        query = urlencode(sorted(params.items()))
        return f"{self.base_url}/api/{endpoint}" + (f"?{query}" if query else "")

    def record_url(
        self, endpoint: str, record_id: str, params: dict[str, str] | None = None
    ) -> str:
        query = urlencode(sorted((params or {}).items()))
        return f"{self.base_url}/api/{endpoint}/{record_id}" + (f"?{query}" if query else "")

    async def fetch_page(
        self, url: str, *, reason: str, cache_ttl: float = 0.0, max_wait: float | None = None
    ) -> VendorPage:
        """One list page; served from the cache when the same URL was fetched within its TTL."""
        cached = self.cache.get(url)
        if isinstance(cached, VendorPage):
            return cached
        body = await self._get_json(url, reason=reason, max_wait=max_wait)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise UpstreamUnavailable("The EHR answered a list request with an unexpected body.")
        next_url = body.get("next")
        if next_url is not None:
            next_url = self._same_origin(str(next_url))
        page = VendorPage(url=url, results=body["results"], next_url=next_url)
        self.cache.put(url, page, cache_ttl)
        return page

    async def list_all(
        self, endpoint: str, params: dict[str, str], *, reason: str, cache_ttl: float = 0.0
    ) -> list[Record]:
        records: list[Record] = []
        async for page in pages(self, endpoint, params, reason=reason, cache_ttl=cache_ttl):
            records.extend(page.results)
        return records

    async def get_record(
        self,
        endpoint: str,
        record_id: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> Record | None:
        """One record by id, or None when the vendor has no such record."""
        url = self.record_url(endpoint, record_id, params)
        cached = self.cache.get(url)
        if isinstance(cached, dict):
            return cached
        body = await self._get_json(url, reason=reason, missing_ok=True)
        if body is None:
            return None
        if not isinstance(body, dict):
            raise UpstreamUnavailable("The EHR answered a record request with an unexpected body.")
        self.cache.put(url, body, cache_ttl)
        return body

    async def get_document(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> bytes | None:
        """A non-JSON document (the C-CDA XML) by API path, or None when the vendor has none."""
        query = urlencode(sorted((params or {}).items()))
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        cached = self.cache.get(url)
        if isinstance(cached, bytes):
            return cached
        body = await self._get_json(url, reason=reason, missing_ok=True, raw=True)
        if body is None:
            return None
        self.cache.put(url, body, cache_ttl)
        return cast(bytes, body)

    async def fetch_file(self, url: str, *, max_bytes: int = 25 * 1024 * 1024) -> tuple[str, bytes]:
        """A file from one of the vendor's pre-signed URLs (content type, bytes).

        Signed URLs authorize themselves: facade's bearer token is never sent with them, and
        they are not vendor API calls (no budget)."""
        absolute = urljoin(self.base_url + "/", url)
        try:
            with anyio.fail_after(self.policy.timeout_seconds):
                async with self._http.stream("GET", absolute, follow_redirects=False) as response:
                    if response.status_code != 200:
                        raise UpstreamUnavailable(
                            f"The EHR's file store answered HTTP {response.status_code}."
                        )
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise UpstreamUnavailable(
                                "The EHR's file is larger than facade serves."
                            )
                        chunks.append(chunk)
                    content_type = response.headers.get("content-type", "application/octet-stream")
        except (TimeoutError, httpx.TimeoutException):
            raise UpstreamTimeout() from None
        except httpx.TransportError:
            raise UpstreamUnavailable() from None
        return content_type.split(";")[0].strip(), b"".join(chunks)

    async def get_path(self, path: str, *, reason: str) -> Any:
        """A JSON document by path (e.g. /api/users/current), following the vendor's 302s."""
        return await self._get_json(f"{self.base_url}{path}", reason=reason)

    # -- the one request loop ------------------------------------------------------------

    async def _get_json(
        self,
        url: str,
        *,
        reason: str,
        missing_ok: bool = False,
        max_wait: float | None = None,
        raw: bool = False,
    ) -> Any:
        async def send(target: str, token: str) -> httpx.Response:
            return await self._http.get(
                target,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "*/*" if raw else "application/json",
                },
                follow_redirects=False,
            )

        # A redirect (users/current -> users/<id>) is metered as the endpoint asked for.
        response = await self._requests.get(
            url,
            send,
            reason=reason,
            max_wait=max_wait,
            missing_ok=missing_ok,
            endpoint=_endpoint_of(url),
        )
        if response is None:
            return None
        if raw:
            return response.content
        try:
            return orjson.loads(response.content)
        except ValueError:
            raise UpstreamUnavailable("The EHR answered with a body that is not JSON.") from None

    def _same_origin(self, url: str) -> str:
        """Refuse URLs that would carry facade's bearer token to another host."""
        target, base = urlsplit(url), urlsplit(self.base_url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise UpstreamUnavailable("The EHR pointed facade at another host; refused.")
        return url

    # -- tokens ----------------------------------------------------------------------------

    async def _renew(self, stale_token: str) -> None:
        await self._refresh(force=True)

    async def _access_token(self) -> str:
        if self._credentials.expires_at - REFRESH_MARGIN <= self._clock.now():
            await self._refresh(force=False)
        return self._credentials.access_token

    def _adopt_stored(self, stale: str) -> bool:
        """Take the stored credentials if another process refreshed since `stale` was read."""
        stored = self._keeper.load()
        if stored.access_token == stale or stored.expires_at <= self._clock.now():
            return False
        self._credentials = stored
        return True

    async def _refresh(self, *, force: bool) -> None:
        stale = self._credentials.access_token
        async with self._refresh_lock:
            # Another task may have refreshed while this one waited for the lock.
            if self._credentials.access_token != stale:
                return
            if not force and self._credentials.expires_at - REFRESH_MARGIN > self._clock.now():
                return
            # Another process sharing the store (a replica, a worker) may have refreshed: its
            # tokens are the ones that work now, and the refresh token this one holds is spent.
            if self._adopt_stored(stale):
                return
            current = self._credentials
            try:
                tokens = await refresh_tokens(
                    self._http,
                    current.base_url,
                    current.client_id,
                    current.client_secret,
                    current.refresh_token,
                )
            except UpstreamAuthFailed:
                # Refused because another process refreshed with the same token a moment
                # before (DrChrono rotates refresh tokens): its tokens are in the store.
                if self._adopt_stored(stale):
                    return
                raise
            self._credentials = VendorCredentials(
                base_url=current.base_url,
                client_id=current.client_id,
                client_secret=current.client_secret,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                expires_at=tokens.expires_at(self._clock.now()),
                scope=tokens.scope or current.scope,
            )
            self._keeper.save(self._credentials)
            log.info("drchrono access token refreshed")


def _endpoint_of(url: str) -> str:
    path = urlsplit(url).path
    return path.removeprefix("/api/") if path.startswith("/api/") else path


def _log_call(endpoint: str, status: int) -> None:
    log.debug("drchrono GET /api/%s -> %s", endpoint, status)


def _throttle_wait(response: httpx.Response, now: datetime) -> float:
    """Seconds the vendor asked for: DRF's "Expected available in N seconds" in the body, or
    Retry-After (seconds or an HTTP date); the longer when both are given, a minute if none."""
    try:
        detail = str(response.json().get("detail", ""))
    except (ValueError, AttributeError):
        detail = ""
    header = retry_after(response.headers.get("retry-after", ""), now)
    waits = [w for w in (parse_throttle_wait(detail), header) if w is not None]
    return max(waits) if waits else UNSTATED_THROTTLE_SECONDS
