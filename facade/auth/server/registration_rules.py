"""What dynamic client registration (RFC 7591) accepts, and whether a new client may start
at once: metadata bounds, client_name and JWK Set checks, the approval policy, and the
per-address registration limit.

Nothing here touches HTTP or the database; `registration.py` applies these rules. A rule
that refuses says why in words an app developer can act on, never echoing what was sent.
"""

from __future__ import annotations

import base64
import ipaddress
import unicodedata
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from facade.auth.scopes import CONTEXT_SCOPES as GRANTABLE_CONTEXT_SCOPES
from facade.auth.scopes import parse_scope
from facade.clock import Clock
from facade.store.ledger import Ledger

APPROVAL, OPEN = "approval", "open"
MAX_BODY_BYTES = 64 * 1024
MAX_REDIRECT_URIS = 10
#: The authorization code table holds a redirect_uri of at most 1,000 characters.
MAX_URI_LENGTH = 1000
MAX_NAME_LENGTH = 100
MAX_SCOPES = 50
MAX_SCOPE_LENGTH = 2000
MAX_GRANT_TYPES = 3
MAX_KEYS = 10
#: The assertion algorithms facade accepts (SMART Backend Services), by key type.
KEY_ALGORITHMS = {"RSA": "RS384", "EC": "ES384"}
MIN_RSA_BITS = 2048
#: Members only a private or symmetric JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: Unicode categories a client name may use: letters, marks, numbers, punctuation,
#: symbols and plain spaces. Control, format (bidi overrides), private-use, unassigned
#: characters and line separators are refused.
_NAME_CATEGORIES = ("L", "M", "N", "P", "S")
#: Characters that could start markup in a page or a log line.
_MARKUP = frozenset("<>")
#: Scopes that carry identity or launch context and grant no data: fine for any app. OpenID's
#: `profile` is accepted at registration too (apps send it by habit); facade grants no claim for it.
CONTEXT_SCOPES = GRANTABLE_CONTEXT_SCOPES | {"profile"}
WINDOW_SECONDS = 3600.0
#: The most source addresses the limiter remembers; the oldest are forgotten first.
MAX_TRACKED_ADDRESSES = 10_000


class MetadataRefused(ValueError):
    """Client metadata that cannot be registered; `error` is the RFC 7591 error code."""

    def __init__(self, description: str, error: str = "invalid_client_metadata"):
        super().__init__(description)
        self.error = error


def string_list(metadata: dict[str, Any], name: str, limit: int, *, max_length: int) -> list[str]:
    """A list-of-strings member, bounded in count and in each string's length."""
    value = metadata.get(name)
    if value is None:
        return []
    error = "invalid_redirect_uri" if name == "redirect_uris" else "invalid_client_metadata"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MetadataRefused(f"{name} must be a list of strings.", error)
    if len(value) > limit:
        raise MetadataRefused(f"{name} may hold at most {limit} entries.", error)
    if any(len(v) > max_length for v in value):
        raise MetadataRefused(f"Each of {name} must be at most {max_length} characters.", error)
    return list(dict.fromkeys(value))


def clean_client_name(value: Any) -> str:
    """client_name is required: printable text, no markup, at most MAX_NAME_LENGTH
    characters. Users see it on the login and consent pages."""
    if not isinstance(value, str) or not value.strip():
        raise MetadataRefused("client_name is required.")
    name = unicodedata.normalize("NFC", value).strip(" ")
    if len(name) > MAX_NAME_LENGTH:
        raise MetadataRefused(f"client_name must be at most {MAX_NAME_LENGTH} characters.")
    for char in name:
        category = unicodedata.category(char)
        if char in _MARKUP or (category != "Zs" and category[0] not in _NAME_CATEGORIES):
            raise MetadataRefused(
                "client_name must be printable text without markup or control characters."
            )
    return name


def clean_scope(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MetadataRefused("scope must be a space-separated string.")
    if len(value) > MAX_SCOPE_LENGTH:
        raise MetadataRefused(f"scope must be at most {MAX_SCOPE_LENGTH} characters.")
    scopes = list(dict.fromkeys(value.split()))
    if len(scopes) > MAX_SCOPES:
        raise MetadataRefused(f"scope may name at most {MAX_SCOPES} scopes.")
    return " ".join(scopes)


def check_jwks(jwks: Any) -> dict[str, Any]:
    """An inline JWK Set must hold public keys only (no private or symmetric key, no
    unknown key type) and at least one key facade can verify an assertion with: RSA of
    at least 2048 bits for RS384 or EC P-384 for ES384, with a `kid`."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise MetadataRefused("jwks must be a JWK Set: an object with a list of keys.")
    keys = jwks["keys"]
    if len(keys) > MAX_KEYS:
        raise MetadataRefused(f"jwks may hold at most {MAX_KEYS} keys.")
    usable = 0
    for key in keys:
        if not isinstance(key, dict):
            raise MetadataRefused("Each key of jwks must be a JWK object.")
        kty = key.get("kty")
        if kty == "oct" or "k" in key:
            raise MetadataRefused("jwks must not hold a symmetric key.")
        if _PRIVATE_MEMBERS & key.keys():
            raise MetadataRefused("jwks must hold public keys only (a key has a private part).")
        if kty not in KEY_ALGORITHMS:
            raise MetadataRefused("jwks keys must have kty RSA or EC.")
        if _usable(key, str(kty)):
            usable += 1
    if not usable:
        raise MetadataRefused(
            "jwks must hold at least one public key with a kid for RS384 (RSA, 2048 bits or "
            "more) or ES384 (EC P-384)."
        )
    return jwks


def _usable(key: dict[str, Any], kty: str) -> bool:
    alg = KEY_ALGORITHMS[kty]
    if key.get("alg", alg) != alg or key.get("use", "sig") != "sig":
        return False
    ops = key.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return False
    if not isinstance(key.get("kid"), str) or not key["kid"]:
        return False  # an assertion names its key by kid (oauth.ClientAssertion)
    if kty == "RSA" and _modulus_bits(key.get("n")) < MIN_RSA_BITS:
        return False  # checked before joserfc sees it: it warns about short keys
    try:
        if kty == "RSA":
            return bool(RSAKey.import_key(key).raw_value.key_size >= MIN_RSA_BITS)
        return bool(ECKey.import_key(key).curve_name == "P-384")
    except (JoseError, ValueError, TypeError, KeyError, AttributeError):
        return False


def _modulus_bits(n: Any) -> int:
    if not isinstance(n, str) or len(n) > 2048:  # 2,048 base64 characters: 12,288 bits
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:
        return 0
    return int.from_bytes(raw, "big").bit_length()


@dataclass(frozen=True)
class Decision:
    status: str
    #: Why a client is held, for the developer (RFC 7591 response, facade_status_reason).
    reason: str = ""


def initial_status(mode: str, grant_types: list[str], scope: str, *, vouched: bool) -> Decision:
    """Whether a new client starts active or waits for the operator.

    An operator's initial access token vouches for the client: active. Otherwise, under
    "approval" every client waits. Under "open" only user-facing apps (authorization_code)
    that ask for patient-level scopes start at once; backend clients (client_credentials,
    system/ scopes), user/ scopes, and apps that name no scope (they could ask for any)
    always wait.
    """
    if vouched:
        return Decision("active")
    held = "Held until the server's operator approves it"
    if mode != OPEN:
        return Decision("pending", f"{held} (this server approves every registration).")
    if "client_credentials" in grant_types:
        return Decision("pending", f"{held}: backend services need approval.")
    if "authorization_code" not in grant_types:
        return Decision("pending", f"{held}: only user-facing apps start at once.")
    scopes = scope.split()
    if not scopes:
        return Decision("pending", f"{held}: register the patient/ scopes the app needs.")
    for name in scopes:
        parsed = parse_scope(name)
        if parsed is None and name not in CONTEXT_SCOPES:
            return Decision("pending", f"{held}: scope {name[:80]!r} needs a review.")
        if parsed is not None and parsed.context != "patient":
            return Decision("pending", f"{held}: {parsed.context}/ scopes need approval.")
    return Decision("active")


class AddressLimits:
    """At most `per_hour` registration attempts per source address in a sliding hour.
    IPv6 addresses count per /64 (one host usually holds a whole /64). In memory, for the
    one process of a SQLite deployment (SharedAddressLimits counts in a shared database)."""

    def __init__(self, clock: Clock, per_hour: int):
        self._clock = clock
        self.per_hour = per_hour
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, address: str) -> float:
        """Count one attempt; 0 when allowed, else the seconds until one is."""
        if self.per_hour <= 0:
            return 0.0
        key = _address_key(address)
        now = self._clock.monotonic()
        window = self._seen.pop(key, None) or deque()
        self._seen[key] = window  # most recently seen last
        while window and now - window[0] >= WINDOW_SECONDS:
            window.popleft()
        while len(self._seen) > MAX_TRACKED_ADDRESSES:
            self._seen.popitem(last=False)
        if len(window) >= self.per_hour:
            return max(1.0, WINDOW_SECONDS - (now - window[0]))
        window.append(now)
        return 0.0


def _address_key(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class SharedAddressLimits(AddressLimits):
    """The same limit counted in the database every replica shares (facade/store/ledger.py),
    so an address gets `per_hour` attempts from the deployment, not from each process."""

    def __init__(self, ledger: Ledger, clock: Clock, per_hour: int):
        super().__init__(clock, per_hour)
        self._ledger = ledger

    def hit(self, address: str) -> float:
        if self.per_hour <= 0:
            return 0.0
        now = self._clock.now().timestamp()
        with self._ledger.locked(f"register:{_address_key(address)}") as key:
            window = key.since(now - WINDOW_SECONDS, inclusive=False)
            if window.count >= self.per_hour and window.oldest is not None:
                return max(1.0, WINDOW_SECONDS - (now - window.oldest))
            key.add(now)
            key.forget_before(now - WINDOW_SECONDS)
        return 0.0
