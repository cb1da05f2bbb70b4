"""DRF CursorPagination as DrChrono serves it: `{previous, next, results}` with opaque cursors.

A cursor holds the sort key of the page boundary (not an offset), so pages stay stable when
rows are added. It must never trust a cursor: anything that does not decode is `InvalidCursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
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


def select_page(
    records: Sequence[Record],
    order_by: Callable[[Record], SortKey],
    cursor: Cursor | None,
    page_size: int,
) -> Page:
    keyed = sorted(((order_by(record), record) for record in records), key=lambda pair: pair[0])
    keys = [key for key, _ in keyed]
    try:
        if cursor is None:
            start, end = 0, min(len(keyed), page_size)
        elif cursor.reverse:
            end = sum(1 for key in keys if key < cursor.position)
            start = max(0, end - page_size)
        else:
            start = sum(1 for key in keys if key <= cursor.position)
            end = min(len(keyed), start + page_size)
    except TypeError:
        raise InvalidCursor from None
    chosen = keyed[start:end]
    next_cursor = Cursor(chosen[-1][0]) if chosen and end < len(keyed) else None
    previous_cursor = Cursor(chosen[0][0], reverse=True) if chosen and start > 0 else None
    return Page([record for _, record in chosen], next_cursor, previous_cursor)
