"""RFC 6238 time-based one-time passwords (SHA-1, 6 digits, 30 s steps), as CareCloud's MFA asks.

One small function pair shared by the client (which must log in again with a fresh code when
its session dies) and the sandbox (which checks the code). It never logs or stores a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import datetime

STEP_SECONDS = 30
DIGITS = 6


def _key(secret_base32: str) -> bytes:
    cleaned = secret_base32.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(secret_base32: str, counter: int) -> str:
    """RFC 4226: the code for one counter value."""
    digest = hmac.new(_key(secret_base32), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**DIGITS).zfill(DIGITS)


def time_step(at: datetime) -> int:
    """The RFC 6238 counter of an aware datetime."""
    if at.tzinfo is None:
        raise ValueError("TOTP needs an aware datetime")
    return int(at.timestamp()) // STEP_SECONDS


def totp(secret_base32: str, at: datetime) -> str:
    """The code an authenticator app shows at `at`."""
    return hotp(secret_base32, time_step(at))


def verify_totp(secret_base32: str, code: str, at: datetime, *, window: int = 1) -> bool:
    """Whether `code` is the code of `at`'s step or of up to `window` steps either side."""
    if len(code) != DIGITS or not code.isdigit():
        return False
    step = time_step(at)
    return any(
        hmac.compare_digest(hotp(secret_base32, step + delta), code)
        for delta in range(-window, window + 1)
    )
