"""Page-numbered listings: a fixed page size per endpoint, `?page=N` (1-based), and an RFC 5988
`Link` header with first/prev/next/last that keeps the request's filters.

The body carries only the records; a page past the last is an empty list, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import URL

from facade.upstream.carecloud.sandbox.context import Record

PAGE_SIZES: dict[str, int] = {
    "patients": 50,
    "appointments": 100,
    "providers": 100,
    "locations": 100,
}


class InvalidPage(ValueError):
    pass


@dataclass(frozen=True)
class Page:
    records: list[Record]
    number: int
    last: int


def page_number(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidPage(raw)
    return int(raw)


def page_of(records: list[Record], number: int, size: int) -> Page:
    last = max(1, -(-len(records) // size))
    start = (number - 1) * size
    return Page(records[start : start + size], number, last)


def link_header(url: URL, page: Page) -> str:
    """`<url?page=1>; rel="first", ...` with every other query parameter kept."""

    def at(number: int) -> str:
        return f"<{url.include_query_params(page=number)}>"

    links = [f'{at(1)}; rel="first"']
    if page.number > 1:
        links.append(f'{at(min(page.number - 1, page.last))}; rel="prev"')
    if page.number < page.last:
        links.append(f'{at(page.number + 1)}; rel="next"')
    links.append(f'{at(page.last)}; rel="last"')
    return ", ".join(links)
