"""`pages` walks a list as its vendor links it: from the list URL, each page's `next_url`
until a page has none, with the caller's reason and cache TTL on every fetch."""

from __future__ import annotations

from typing import Any

from facade.core.vendor import VendorPage
from facade.upstream.paging import pages


class LinkedPages:
    """A vendor client with three linked pages; it records every fetch."""

    def __init__(self) -> None:
        self.fetched: list[tuple[str, str, float]] = []
        self.links = {"list?a=1": "list?p=2", "list?p=2": "list?p=3", "list?p=3": None}

    def list_url(self, endpoint: str, params: dict[str, str]) -> str:
        return endpoint + "?" + "&".join(f"{k}={v}" for k, v in params.items())

    async def fetch_page(self, url: str, *, reason: str, cache_ttl: float = 0.0) -> VendorPage:
        self.fetched.append((url, reason, cache_ttl))
        return VendorPage(url=url, results=[{"id": url}], next_url=self.links[url])


async def test_every_page_is_fetched_once_in_link_order() -> None:
    client: Any = LinkedPages()
    seen = [p.url async for p in pages(client, "list", {"a": "1"}, reason="r", cache_ttl=9.0)]

    assert seen == ["list?a=1", "list?p=2", "list?p=3"]
    assert client.fetched == [(url, "r", 9.0) for url in seen]


async def test_a_caller_that_stops_early_fetches_no_further_page() -> None:
    client: Any = LinkedPages()
    async for _ in pages(client, "list", {"a": "1"}, reason="r"):
        break
    assert [url for url, _, _ in client.fetched] == ["list?a=1"]
