"""The two headers CareCloud steers the client with: RFC 5988 Link (rel="next") and a 429's
Retry-After (delta seconds, as the sandbox sends it, or an HTTP date)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from facade.upstream.carecloud.client import link_target
from facade.upstream.carecloud.session import UNSTATED_THROTTLE_SECONDS, retry_after_seconds

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
BASE = "http://carecloud.sandbox/patients"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f'<{BASE}?page=1>; rel="first", <{BASE}?page=2>; rel="next"', f"{BASE}?page=2"),
        (f"<{BASE}?page=3>; rel=next", f"{BASE}?page=3"),
        (f'<{BASE}?page=4>; rel="next last"', f"{BASE}?page=4"),
        (f'<{BASE}?page=5>; title="x, y"; rel="NEXT"', f"{BASE}?page=5"),
        (f'<{BASE}?page=1>; rel="first", <{BASE}?page=9>; rel="last"', None),
        ("", None),
    ],
)
def test_the_next_link_is_read_from_any_well_formed_header(
    header: str, expected: str | None
) -> None:
    assert link_target(header, "next") == expected


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("Mon, 01 Jun 2026 12:00:30 GMT", 30.0),
        ("Mon, 01 Jun 2026 11:00:00 GMT", 0.0),
        ("Mon, 01 Jun 2026 12:00:30 -0000", 30.0),  # zone unknown: read as UTC
        ("soon", UNSTATED_THROTTLE_SECONDS),
        (None, UNSTATED_THROTTLE_SECONDS),
    ],
)
def test_retry_after_is_delta_seconds_or_a_date(value: str | None, seconds: float) -> None:
    headers = {"Retry-After": value} if value is not None else {}
    response = httpx.Response(429, headers=headers, json={"error": "rate_limited"})
    assert retry_after_seconds(response, NOW) == seconds
