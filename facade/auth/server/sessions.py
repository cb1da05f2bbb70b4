"""The login session of the authorize pages: a compact, HMAC-signed, expiring cookie.

It carries who logged in (and when), the CSRF token of the pages and the pending authorize
request; never a password. The key is derived from facade's secret key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from facade.clock import Clock

COOKIE_NAME = "facade_auth"
SESSION_LIFETIME = timedelta(minutes=30)


@dataclass
class Session:
    """What the browser's cookie says. `username` is set only after a complete login."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    username: str = ""
    auth_time: int = 0
    #: A user who passed the password step and still owes a TOTP code.
    totp_pending: str = ""
    #: The authorize request being worked on (its validated parameters).
    request: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "c": self.csrf,
            "u": self.username,
            "t": self.auth_time,
            "p": self.totp_pending,
            "r": self.request,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        return cls(
            csrf=str(data.get("c") or secrets.token_urlsafe(24)),
            username=str(data.get("u", "")),
            auth_time=int(data.get("t", 0)),
            totp_pending=str(data.get("p", "")),
            request={str(k): str(v) for k, v in dict(data.get("r") or {}).items()},
        )


class SessionCodec:
    def __init__(self, key: bytes, clock: Clock, lifetime: timedelta = SESSION_LIFETIME):
        self._key = hashlib.sha256(b"facade-auth-session\0" + key).digest()
        self._clock = clock
        self.lifetime = lifetime

    def encode(self, session: Session) -> str:
        expires = int((self._clock.now() + self.lifetime).timestamp())
        payload = json.dumps({"s": session.as_dict(), "e": expires}, separators=(",", ":"))
        body = base64.urlsafe_b64encode(zlib.compress(payload.encode())).decode().rstrip("=")
        return f"{body}.{self._sign(body)}"

    def decode(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            data = json.loads(raw)
        except (ValueError, zlib.error):
            return None
        if not isinstance(data, dict) or int(data.get("e", 0)) <= self._clock.now().timestamp():
            return None
        return Session.from_dict(data.get("s") or {})

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
