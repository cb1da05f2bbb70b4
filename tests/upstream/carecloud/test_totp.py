"""The shared TOTP function against RFC 6238's SHA-1 test vectors and against pyotp."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from facade.upstream.carecloud.totp import totp, verify_totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(
    ("unix_time", "code"),
    [
        (59, "287082"),
        (1111111109, "081804"),
        (1111111111, "050471"),
        (1234567890, "005924"),
        (2000000000, "279037"),
    ],
)
def test_rfc6238_sha1_vectors_truncated_to_six_digits(unix_time: int, code: str) -> None:
    assert totp(RFC_SECRET, datetime.fromtimestamp(unix_time, UTC)) == code


def test_agrees_with_pyotp() -> None:
    secret = pyotp.random_base32()
    at = datetime(2026, 6, 1, 14, 0, 7, tzinfo=UTC)
    assert totp(secret, at) == pyotp.TOTP(secret).at(int(at.timestamp()))


def test_previous_and_next_step_verify_but_two_steps_away_does_not() -> None:
    at = datetime(2026, 6, 1, 14, 0, 0, tzinfo=UTC)
    for delta, expected in ((-30, True), (30, True), (-60, False), (60, False)):
        code = totp(RFC_SECRET, at + timedelta(seconds=delta))
        assert verify_totp(RFC_SECRET, code, at) is expected


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        totp(RFC_SECRET, datetime(2026, 6, 1))
