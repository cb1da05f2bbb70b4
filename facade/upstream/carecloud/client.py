"""The CareCloud client: root-keyed bodies, Link-header paging, the call budget, retries,
session renewal and caching.

It and the request loop it runs under CareCloud's rules (facade/upstream/retry.py) are the
one place where CareCloud's HTTP failures become facade errors. It never logs a token, a
record or a record id, and never sends the session token to a URL outside the vendor's base
URL, whoever named it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import httpx
import orjson

from facade.clock import Clock
from facade.core.vendor import VendorClient, VendorPage
from facade.errors import UpstreamError, UpstreamNotFound, UpstreamUnavailable
from facade.upstream.budget import UpstreamBudget
from facade.upstream.cache import ResponseCache
from facade.upstream.carecloud.credentials import CareCloudKeeper
from facade.upstream.carecloud.session import (
    CareCloudSession,
    retry_after_seconds,
    session_ended,
)
from facade.upstream.carecloud.wire import WIRE
from facade.upstream.paging import pages
from facade.upstream.retry import ClientPolicy as ClientPolicy
from facade.upstream.retry import RequestLoop, VendorRules

log = logging.getLogger("facade.upstream.carecloud")

Record = dict[str, Any]

#: A JSON answer larger than this is not a CareCloud answer facade reads.
MAX_JSON_BYTES = 64 * 1024 * 1024
#: The root key of a single record, by collection (GET /patients/{id} -> {"patient": {...}}).
SINGULAR = {
    "patients": "patient",
    "appointments": "appointment",
    "encounters": "encounter",
    "providers": "provider",
    "locations": "location",
    "claims": "claim",
    "webhooks": "webhook",
}
#: Paths that answer one JSON object, not a list: listed, they are that one record.
DOCUMENTS = frozenset({"authorization"})
#: Lists whose start_date..end_date range CareCloud caps, in days (start and end both count).
DATE_RANGE_DAYS = {"appointments": 93}
_ID_SEGMENT = re.compile(
    r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL = re.compile(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))""", re.IGNORECASE)


@dataclass(frozen=True)
class _Answer:
    """A vendor answer, read in full (within its size limit)."""

    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes


class CareCloudClient:
    vendor = "carecloud"
    wire = WIRE

    def __init__(
        self,
        http: httpx.AsyncClient,
        session: CareCloudSession,
        budget: UpstreamBudget,
        cache: ResponseCache,
        clock: Clock,
        policy: ClientPolicy | None = None,
    ):
        self._http = http
        self.session = session
        self.budget = budget
        self.cache = cache
        self._clock = clock
        self.policy = policy or ClientPolicy()
        self._requests = RequestLoop(
            VendorRules(
                name="CareCloud",
                token=session.token,
                renew=session.renew,
                session_ended=_ended,
                throttle_wait=_throttle_wait,
                own_url=self._same_origin,
                endpoint_of=self._endpoint_of,
                log_call=_log_call,
            ),
            budget,
            clock,
            self.policy,
        )

    @property
    def base_url(self) -> str:
        return self.session.base_url

    def list_url(self, endpoint: str, params: dict[str, str]) -> str:
        query = urlencode(sorted(params.items()))
        return f"{self.base_url}/{endpoint}" + (f"?{query}" if query else "")

    def record_url(
        self, endpoint: str, record_id: str, params: dict[str, str] | None = None
    ) -> str:
        query = urlencode(sorted((params or {}).items()))
        return f"{self.base_url}/{endpoint}/{quote(record_id, safe='')}" + (
            f"?{query}" if query else ""
        )

    async def fetch_page(
        self, url: str, *, reason: str, cache_ttl: float = 0.0, max_wait: float | None = None
    ) -> VendorPage:
        """One list page (`{"<endpoint>": [...]}`), its next page named by the Link header;
        served from the cache when the same URL was fetched within its TTL."""
        key = self._path_of(url).rsplit("/", 1)[-1]
        if key in DOCUMENTS:
            document = await self.get_path(f"/{key}", reason=reason, cache_ttl=cache_ttl)
            return VendorPage(url=url, results=[document], next_url=None)
        cached = self.cache.get(url)
        if isinstance(cached, VendorPage):
            return cached
        answer = await self._get(self._same_origin(url), reason=reason, max_wait=max_wait)
        body = _json(answer)
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise UpstreamUnavailable("CareCloud answered a list request with an unexpected body.")
        next_url = link_target(answer.headers.get("link", ""), "next")
        if next_url is not None:
            next_url = self._same_origin(urljoin(url, next_url))
            if next_url == url:  # a page naming itself as next would never end
                next_url = None
        page = VendorPage(url=url, results=body[key], next_url=next_url)
        self.cache.put(url, page, cache_ttl)
        return page

    async def list_all(
        self, endpoint: str, params: dict[str, str], *, reason: str, cache_ttl: float = 0.0
    ) -> list[Record]:
        """Every record of a list, page after page (an unpaged list, like /encounters, is
        one page without a Link header). A date range longer than CareCloud allows in one
        request (appointments: 93 days) is asked for window by window."""
        records: list[Record] = []
        seen: set[str] = set()
        for window in _windowed(endpoint, params):
            async for page in pages(self, endpoint, window, reason=reason, cache_ttl=cache_ttl):
                for record in page.results:
                    key = str(record.get("id", ""))
                    if not key or key not in seen:
                        seen.add(key)
                        records.append(record)
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
        """One record by id (`{"patient": {...}}` → the patient), or None when CareCloud has
        no such record."""
        url = self.record_url(endpoint, record_id, params)
        cached = self.cache.get(url)
        if isinstance(cached, dict):
            return cached
        answer = await self._fetch(url, reason=reason, missing_ok=True)
        if answer is None:
            return None
        body = _json(answer)
        key = SINGULAR.get(endpoint, endpoint.removesuffix("s"))
        record = body.get(key) if isinstance(body, dict) else None
        if not isinstance(record, dict):
            raise UpstreamUnavailable(
                "CareCloud answered a record request with an unexpected body."
            )
        self.cache.put(url, record, cache_ttl)
        return record

    async def get_document(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> bytes | None:
        """A non-JSON document (the C-CDA XML) by API path, or None when CareCloud has none."""
        query = urlencode(sorted((params or {}).items()))
        url = self._same_origin(f"{self.base_url}{path}" + (f"?{query}" if query else ""))
        cached = self.cache.get(url)
        if isinstance(cached, bytes):
            return cached
        answer = await self._fetch(url, reason=reason, missing_ok=True, raw=True)
        if answer is None:
            return None
        self.cache.put(url, answer.content, cache_ttl)
        return answer.content

    async def fetch_file(self, url: str, *, max_bytes: int = 25 * 1024 * 1024) -> tuple[str, bytes]:
        """A file CareCloud serves under its API (content type, bytes). Only under the base
        URL: the session token goes with it, so a URL a record names elsewhere is refused."""
        absolute = self._same_origin(urljoin(self.base_url + "/", url))
        answer = await self._fetch(
            absolute, reason="file", missing_ok=True, raw=True, max_bytes=max_bytes
        )
        if answer is None:
            raise UpstreamError("CareCloud has no such file.")
        content_type = answer.headers.get("content-type", "application/octet-stream")
        return content_type.split(";")[0].strip(), answer.content

    async def get_path(self, path: str, *, reason: str, cache_ttl: float = 0.0) -> Any:
        """A JSON document by path (e.g. /authorization)."""
        url = self._same_origin(f"{self.base_url}{path}")
        cached = self.cache.get(url)
        if cached is not None and not isinstance(cached, VendorPage):
            return cached
        answer = await self._get(url, reason=reason)
        body = _json(answer)
        self.cache.put(url, body, cache_ttl)
        return body

    # -- the one request loop ------------------------------------------------------------

    async def _get(self, url: str, *, reason: str, max_wait: float | None = None) -> _Answer:
        """A JSON answer that must be there: a 404 is an error like any other refusal."""
        answer = await self._fetch(url, reason=reason, max_wait=max_wait)
        if answer is None:  # only with missing_ok
            raise UpstreamNotFound("CareCloud has no such resource.")
        return answer

    async def _fetch(
        self,
        url: str,
        *,
        reason: str,
        missing_ok: bool = False,
        max_wait: float | None = None,
        raw: bool = False,
        max_bytes: int = MAX_JSON_BYTES,
    ) -> _Answer | None:
        async def send(target: str, token: str) -> _Answer:
            return await self._send(target, token, raw=raw, max_bytes=max_bytes)

        return await self._requests.get(
            url, send, reason=reason, max_wait=max_wait, missing_ok=missing_ok
        )

    async def _send(self, url: str, token: str, *, raw: bool, max_bytes: int) -> _Answer:
        """One GET, its answer read in full; the request loop bounds how long it takes."""
        request = self._http.build_request(
            "GET",
            url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "*/*" if raw else "application/json",
            },
        )
        response = await self._http.send(request, stream=True, follow_redirects=False)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise UpstreamUnavailable("CareCloud's answer is larger than facade reads.")
                chunks.append(chunk)
        finally:
            await response.aclose()
        return _Answer(url, response.status_code, response.headers, b"".join(chunks))

    def _same_origin(self, url: str) -> str:
        """Refuse URLs that would carry the session token outside CareCloud's API."""
        target, base = urlsplit(url), urlsplit(self.base_url)
        inside = target.path == base.path or target.path.startswith(base.path.rstrip("/") + "/")
        if (target.scheme, target.netloc) != (base.scheme, base.netloc) or not inside:
            raise UpstreamUnavailable("CareCloud pointed facade at another host; refused.")
        return url

    def _path_of(self, url: str) -> str:
        """The API path of `url` below the base URL ("patients", "patients/<id>/ccda")."""
        base_path = urlsplit(self.base_url).path.rstrip("/")
        return urlsplit(url).path.removeprefix(base_path).strip("/")

    def _endpoint_of(self, url: str) -> str:
        """The path with its ids replaced ("patients/{id}"): what is metered and logged."""
        segments = self._path_of(url).split("/")
        return "/".join("{id}" if _ID_SEGMENT.match(s) else s for s in segments)


def build_client(
    http: httpx.AsyncClient,
    keeper: CareCloudKeeper,
    budget: UpstreamBudget,
    cache: ResponseCache,
    clock: Clock,
    policy: ClientPolicy | None = None,
) -> CareCloudClient:
    """A client and its session over one keeper (the vendor entry's client factory)."""
    policy = policy or ClientPolicy()
    session = CareCloudSession(http, keeper, clock, timeout_seconds=policy.timeout_seconds)
    return CareCloudClient(http, session, budget, cache, clock, policy)


def _conforms(client: CareCloudClient) -> VendorClient:
    """mypy proves here that the client is what the core asks for."""
    return client


def _windowed(endpoint: str, params: dict[str, str]) -> list[dict[str, str]]:
    """`params` as one request, or as consecutive date windows CareCloud accepts when its
    start_date..end_date range is longer than the endpoint allows."""
    days = DATE_RANGE_DAYS.get(endpoint)
    try:
        start = date.fromisoformat(params["start_date"])
        end = date.fromisoformat(params["end_date"])
    except (KeyError, ValueError):
        return [params]
    if days is None or (end - start).days + 1 <= days:
        return [params]
    windows: list[dict[str, str]] = []
    while start <= end:
        last = min(end, start + timedelta(days=days - 1))
        windows.append({**params, "start_date": start.isoformat(), "end_date": last.isoformat()})
        start = last + timedelta(days=1)
    return windows


def _json(answer: _Answer) -> Any:
    try:
        return orjson.loads(answer.content)
    except ValueError:
        raise UpstreamUnavailable("CareCloud answered with a body that is not JSON.") from None


def _as_response(answer: _Answer) -> httpx.Response:
    return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def _ended(answer: _Answer) -> bool:
    return session_ended(_as_response(answer))


def _throttle_wait(answer: _Answer, now: datetime) -> float:
    return retry_after_seconds(_as_response(answer), now)


def _log_call(endpoint: str, status: int) -> None:
    log.debug("carecloud GET /%s -> %s", endpoint, status)


def link_target(header: str, rel: str) -> str | None:
    """The URL of relation `rel` in an RFC 5988 Link header, or None."""
    for match in _LINK.finditer(header):
        for found in _REL.finditer(match.group(2)):
            values = (found.group(1) or found.group(2) or "").lower().split()
            if rel in values:
                return match.group(1).strip()
    return None
