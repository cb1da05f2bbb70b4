"""HTTP caching words for answers the mirror served (RFC 9111 / 9110).

A request's `Cache-Control` says what the mirror may answer: `no-cache` (or HTTP/1.0's
`Pragma: no-cache`) asks the vendor for everything, `max-age=N` lets the mirror answer only
from listings synced within N seconds. An answer the mirror served (in whole or in part)
says how fresh it is: `Age` (seconds since the stalest listing it used was synced through),
`Last-Modified` (the newest change among the records it used) and, for a search, a weak
`ETag` over the page's entries (the next link's cursor is sealed anew each time, so it is
left out). A live answer carries none of these: it is as fresh as the vendor.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime
from math import floor
from typing import Any

import orjson
from starlette.requests import Request

from facade.mirror.serve import MirrorPolicy, MirrorServed


def mirror_policy(request: Request) -> MirrorPolicy:
    """What the request's Cache-Control lets the mirror answer (invalid directives are
    ignored, as RFC 9111 §5.2 says)."""
    directives = [
        part.strip().lower()
        for header in ("cache-control", "pragma")
        for part in request.headers.get(header, "").split(",")
    ]
    if "no-cache" in directives or "no-store" in directives:
        return MirrorPolicy(use=False)
    max_age: float | None = None
    for directive in directives:
        name, _, value = directive.partition("=")
        value = value.strip().strip('"')
        if name.strip() == "max-age" and value.isdigit():
            seconds = float(value)
            max_age = seconds if max_age is None else min(max_age, seconds)
    return MirrorPolicy(use=True, max_age=max_age)


def freshness_headers(
    served: MirrorServed, now: datetime, *, entries: list[dict[str, Any]] | None = None
) -> dict[str, str]:
    """`Age`, `Last-Modified` and (with a search's `entries`) `ETag` for an answer the
    mirror served; none when it served nothing."""
    if not served.calls or served.synced_through is None:
        return {}
    headers = {"Age": str(max(0, floor((now - served.synced_through).total_seconds())))}
    if served.last_modified is not None:
        headers["Last-Modified"] = format_datetime(
            served.last_modified.astimezone(UTC), usegmt=True
        )
    if entries is not None:
        digest = hashlib.sha256(orjson.dumps(entries, option=orjson.OPT_SORT_KEYS)).hexdigest()
        headers["ETag"] = f'W/"{digest[:32]}"'
    return headers
