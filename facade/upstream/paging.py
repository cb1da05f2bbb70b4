"""Walking a vendor list page by page, as the vendor links its pages: the same for every
vendor client, whatever its pages look like on the wire (each client's fetch_page reads them).

It never follows a link a client's fetch_page did not check and hand back as `next_url`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from facade.core.vendor import VendorClient, VendorPage


async def pages(
    client: VendorClient,
    endpoint: str,
    params: dict[str, str],
    *,
    reason: str,
    cache_ttl: float = 0.0,
) -> AsyncIterator[VendorPage]:
    """Every page of `endpoint?params`, first to last."""
    url: str | None = client.list_url(endpoint, params)
    while url is not None:
        page = await client.fetch_page(url, reason=reason, cache_ttl=cache_ttl)
        yield page
        url = page.next_url
