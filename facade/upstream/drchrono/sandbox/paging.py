"""DRF CursorPagination as DrChrono serves it: `{previous, next, results}` with opaque cursors.

A cursor holds the sort key of the page boundary (not an offset), so pages stay stable when
rows are added. It must never trust a cursor: anything that does not decode is `InvalidCursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from facade.upstream.drchrono.sandbox.dataset import Record

SortKey = tuple[Any, ...]


class InvalidCursor(Exception):
    """A 404 `{"detail": "Invalid cursor"}`, as DRF answers a tampered cursor."""


@dataclass(frozen=True)
class Cursor:
    position: SortKey
    #: True for a `previous` link: the page ends just before `position`.
    reverse: bool = False

    def encode(self) -> str:
        payload = json.dumps(
            {"p": list(self.position), "r": int(self.reverse)}, separators=(",", ":")
        )
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        try:
            padded = raw + "=" * (-len(raw) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
            position, reverse = payload["p"], payload["r"]
        except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise InvalidCursor from None
        if not isinstance(position, list) or reverse not in (0, 1):
            raise InvalidCursor
        if not all(isinstance(part, int | str) and not isinstance(part, bool) for part in position):
            raise InvalidCursor
        return cls(tuple(position), bool(reverse))


@dataclass(frozen=True)
class Page:
    results: list[Record]
    next_cursor: Cursor | None
    previous_cursor: Cursor | None


def page_size_from(raw: str | None, default: int, maximum: int) -> int:
    """DRF ignores a page_size it cannot read and silently clamps one that is too large."""
    if raw is None:
        return default
    try:
        wanted = int(raw)
    except ValueError:
        return default
    return default if wanted <= 0 else min(wanted, maximum)


@dataclass(frozen=True)
class SortedRecords:
    """A listing's records in page order, with their sort keys (computed once per listing)."""

    keys: list[SortKey]
    records: list[Record]


def sort_records(records: Sequence[Record], order_by: Callable[[Record], SortKey]) -> SortedRecords:
    keyed = sorted(((order_by(record), record) for record in records), key=lambda pair: pair[0])
    return SortedRecords([key for key, _ in keyed], [record for _, record in keyed])


def page_of(listing: SortedRecords, cursor: Cursor | None, page_size: int) -> Page:
    keys, total = listing.keys, len(listing.keys)
    try:
        if cursor is None:
            start, end = 0, min(total, page_size)
        elif cursor.reverse:
            end = bisect_left(keys, cursor.position)
            start = max(0, end - page_size)
        else:
            start = bisect_right(keys, cursor.position)
            end = min(total, start + page_size)
    except TypeError:
        raise InvalidCursor from None
    chosen = listing.records[start:end]
    next_cursor = Cursor(keys[end - 1]) if chosen and end < total else None
    previous_cursor = Cursor(keys[start], reverse=True) if chosen and start > 0 else None
    return Page(chosen, next_cursor, previous_cursor)
