"""Fetching an asymmetric client's public keys from its registered `jwks_uri`, guarded
against server-side request forgery: https only (plain http only when facade itself runs
without TLS, i.e. locally), public addresses only, checked after DNS resolution and pinned
for the connection, a time and a size limit, no redirects, and a cache that honours
Cache-Control max-age (never longer).

It must never connect to an address it has not checked: the resolver and the transport are
injected, so tests prove the guard with a fake resolver and a recording transport.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from facade.clock import Clock

log = logging.getLogger("facade.auth")

MAX_JWKS_BYTES = 64 * 1024
#: The whole fetch (resolve, connect, read every byte) must finish within this time: a key
#: server that trickles its answer cannot hold a token request for longer.
FETCH_TIMEOUT_SECONDS = 5.0
RESOLVE_TIMEOUT_SECONDS = 2.0
MAX_JWKS_URI_LENGTH = 500
#: Without a max-age the keys are used for this one request and then fetched again.
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)
#: However long a server says, refetch at least daily (key rotation).
MAX_CACHE = timedelta(days=1)
#: Names that mean "this machine" or a cloud's metadata service, refused before any lookup
#: (`.localhost` is RFC 6761's; `.internal` is reserved for private networks).
_LOCAL_NAMES = ("localhost", "metadata", "metadata.google.internal", "instance-data")
_LOCAL_SUFFIXES = (".localhost", ".internal", ".local", ".home.arpa")
#: NAT64 prefixes: an IPv6 address in them reaches the IPv4 address in its last 32 bits.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
#: Not globally reachable (RFC 6890) although older Pythons' ipaddress calls them global:
#: 192.0.0.0/24 holds Oracle Cloud's metadata service (192.0.0.192).
_NOT_GLOBAL = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("64:ff9b:1::/48"))
#: A last label that is all digits (or hex) is an IPv4 address in a form ipaddress does not
#: read but getaddrinfo does (`2130706433`, `0x7f.1`): refused rather than guessed at.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


class JwksUnavailable(Exception):
    """The client's JWK Set could not be fetched or is not a JWK Set."""


class RefusedAddress(httpx.TransportError):
    """The jwks_uri's host is, or resolves to, an address facade must not connect to."""


class Resolver(Protocol):
    """Turns a host name into the addresses to connect to. Raises OSError when the name
    does not resolve."""

    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo), bounded in time."""

    def __init__(self, timeout: float = RESOLVE_TIMEOUT_SECONDS):
        self._timeout = timeout

    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self._timeout
            )
        except TimeoutError as exc:  # the lookup thread runs on; the request does not wait
            raise OSError(f"resolving {host} took longer than {self._timeout} s") from exc
        # An IPv6 link-local answer may carry a zone ("fe80::1%eth0"); the zone is no address.
        return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def address_refusal(address: str) -> str | None:
    """Why facade must not connect to this IP address, or None when it is a public one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 address can carry an IPv4 one that the network will reach instead.
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        embedded += [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) for net in _NAT64 if ip in net]
        for inner in embedded:
            if inner is not None and (reason := address_refusal(str(inner))):
                return reason
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address (cloud metadata services live there)"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_private:
        return f"{ip} is a private address"
    if not ip.is_global or any(ip in net for net in _NOT_GLOBAL if net.version == ip.version):
        # CGNAT (100.64/10, where some clouds keep metadata), reserved, benchmarking, ...
        return f"{ip} is not a public address"
    return None


def host_refusal(host: str) -> str | None:
    """Why a host name or literal is refused before any lookup, or None."""
    name = host.strip("[]").rstrip(".").lower()
    if not name:
        return "jwks_uri has no host"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return address_refusal(name)
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        return f"{name} names a local or metadata host"
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        return f"{name} is a numeric host that is not a plain IP address"
    return None


async def public_addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    """Every address `host` resolves to, all of them checked; RefusedAddress if any one is
    not public (a name that answers with one public and one private address is refused)."""
    if reason := host_refusal(host):
        raise RefusedAddress(reason)
    name = host.strip("[]")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return [name]
    try:
        addresses = await resolver.resolve(name, port)
    except OSError as exc:
        raise httpx.ConnectError(f"{name} does not resolve ({type(exc).__name__})") from None
    if not addresses:
        raise httpx.ConnectError(f"{name} does not resolve")
    for address in addresses:
        if reason := address_refusal(address):
            raise RefusedAddress(f"{name} resolves to {reason}")
    return addresses


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


class PinnedTransport(httpx.AsyncBaseTransport):
    """Resolves the request's host, checks every address, and sends the request to the
    checked address, keeping the Host header and the TLS server name (SNI, and so the
    certificate check) of the original name. Nothing resolves the name a second time, so
    a rebinding DNS server cannot swap in another address after the check."""

    def __init__(self, resolver: Resolver, inner: httpx.AsyncBaseTransport):
        self._resolver = resolver
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or _default_port(request.url.scheme)
        addresses = await public_addresses(host, port, self._resolver)
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = host
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=addresses[0]),
            headers=request.headers,  # carries Host: <the original name>
            stream=request.stream,
            extensions=extensions,
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()


def network_transport() -> httpx.AsyncBaseTransport:
    """The real network: no retries, and no kept-alive connections, so a connection made
    for one name (and its certificate) is never reused for another name at that address."""
    return httpx.AsyncHTTPTransport(retries=0, limits=httpx.Limits(max_keepalive_connections=0))


def static_refusal(uri: str, *, allow_http: bool) -> str | None:
    """What is wrong with a jwks_uri without looking anything up, or None."""
    if len(uri) > MAX_JWKS_URI_LENGTH:
        return f"jwks_uri is longer than {MAX_JWKS_URI_LENGTH} characters"
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return "jwks_uri is not a URL"
    if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
        return "jwks_uri must use https"
    if parts.username is not None or parts.password is not None:
        return "jwks_uri must not carry credentials"
    if not parts.hostname:
        return "jwks_uri has no host"
    return host_refusal(parts.hostname)


async def jwks_uri_refusal(uri: str, resolver: Resolver, *, allow_http: bool) -> str | None:
    """Why a jwks_uri cannot be registered, or None. A name that resolves now must resolve
    to public addresses only; one that does not resolve yet is accepted (every fetch
    checks again)."""
    if reason := static_refusal(uri, allow_http=allow_http):
        return reason
    parts = urlsplit(uri)
    try:
        await public_addresses(
            str(parts.hostname), parts.port or _default_port(parts.scheme), resolver
        )
    except RefusedAddress as exc:
        return f"jwks_uri refused: {exc}"
    except httpx.ConnectError:
        return None
    return None


@dataclass
class _Cached:
    jwks: dict[str, Any]
    expires_at: datetime


class JwksFetcher:
    def __init__(
        self,
        clock: Clock,
        *,
        allow_http: bool = False,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self._clock = clock
        self.allow_http = allow_http
        self.resolver: Resolver = resolver or SystemResolver()
        # The guard wraps whatever transport is given (the network, or a test's in-process
        # app): the pinned, checked path is the same code either way.
        self._http = httpx.AsyncClient(
            transport=PinnedTransport(self.resolver, transport or network_transport()),
            trust_env=False,  # no proxy from the environment: it would connect for us
            follow_redirects=False,
        )
        self._cache: dict[str, _Cached] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def refusal(self, uri: str) -> str | None:
        """Why this jwks_uri cannot be registered, or None (see jwks_uri_refusal)."""
        return await jwks_uri_refusal(uri, self.resolver, allow_http=self.allow_http)

    async def get(self, uri: str, *, refresh: bool = False) -> dict[str, Any]:
        now = self._clock.now()
        cached = self._cache.get(uri)
        if cached is not None and not refresh and cached.expires_at > now:
            return cached.jwks
        jwks, max_age = await self._fetch(uri)
        if max_age > 0:
            self._cache[uri] = _Cached(jwks, now + min(timedelta(seconds=max_age), MAX_CACHE))
        else:
            self._cache.pop(uri, None)
        return jwks

    async def _fetch(self, uri: str) -> tuple[dict[str, Any], int]:
        if reason := static_refusal(uri, allow_http=self.allow_http):
            log.warning("jwks_uri not fetched: %s", reason)
            raise JwksUnavailable(reason)
        try:
            async with asyncio.timeout(FETCH_TIMEOUT_SECONDS):
                body, cache_control = await self._download(uri)
        except RefusedAddress as exc:
            log.warning("jwks_uri not fetched: %s", exc)
            raise JwksUnavailable(str(exc)) from None
        except httpx.HTTPError as exc:
            raise JwksUnavailable(f"jwks_uri unreachable ({type(exc).__name__})") from None
        except TimeoutError:
            raise JwksUnavailable("jwks_uri did not answer in time") from None
        try:
            jwks = json.loads(bytes(body))
        except ValueError:
            raise JwksUnavailable("jwks_uri answer is not JSON") from None
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise JwksUnavailable("jwks_uri answer is not a JWK Set")
        max_age = 0
        if not _NO_CACHE.search(cache_control):
            match = _MAX_AGE.search(cache_control)
            max_age = int(match.group(1)) if match else 0
        return jwks, max_age

    async def _download(self, uri: str) -> tuple[bytearray, str]:
        async with self._http.stream(
            "GET",
            uri,
            headers={"Accept": "application/json"},
            timeout=FETCH_TIMEOUT_SECONDS,
        ) as response:
            # A redirect is not followed: its target was never checked.
            if response.status_code != 200:
                raise JwksUnavailable(f"jwks_uri answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksUnavailable("jwks_uri answer is too large")
            return body, response.headers.get("cache-control", "")
