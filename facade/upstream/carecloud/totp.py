"""RFC 6238 time-based one-time passwords (HMAC-SHA1, 30 s steps, 6 digits), as CareCloud's
login asks for them. The secret is a base32 string; neither it nor a code is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from datetime import datetime


class InvalidTotpSecret(ValueError):
    """The TOTP secret is not base32 text (the message never repeats it)."""


def decode_secret(secret_base32: str) -> bytes:
    """The key bytes of a base32 secret as authenticator apps show it: any case, spaces and
    missing `=` padding allowed."""
    text = "".join(secret_base32.split()).upper().rstrip("=")
    if not text:
        raise InvalidTotpSecret("the TOTP secret is empty")
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise InvalidTotpSecret("the TOTP secret is not base32 text") from None


def time_step(at: datetime, step: int = 30) -> int:
    return int(at.timestamp()) // step


def hotp(key: bytes, counter: int, digits: int = 6) -> str:
    """RFC 4226 HOTP: dynamic truncation of HMAC-SHA1(key, counter)."""
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(secret_base32: str, at: datetime, step: int = 30, digits: int = 6) -> str:
    """The code an authenticator shows at `at` (timezone-aware) for this secret."""
    return hotp(decode_secret(secret_base32), time_step(at, step), digits)


def totp_at_step(secret_base32: str, counter: int, digits: int = 6) -> str:
    """The code of one given time step (a login that must not replay the step it used)."""
    return hotp(decode_secret(secret_base32), counter, digits)
