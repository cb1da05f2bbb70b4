"""jwks_uri cannot make facade reach inside its network (issue 10's blind SSRF): such URIs
are refused at registration, and a key fetch resolves the host, checks every address and
connects only to the checked one. The resolver is a table (StaticResolver) and the key
server an in-process app that counts what reaches it (JwksHost): no test connects out,
and "nothing reached the key server" is asserted, not assumed."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from facade.auth.server import Authority
from facade.auth.server.jwks import (
    JwksFetcher,
    JwksUnavailable,
    PinnedTransport,
    SystemResolver,
    address_refusal,
)
from facade.clock import FakeClock
from tests.auth.conftest import KEYS_EXAMPLE_ADDRESS, JwksHost, StaticResolver
from tests.auth.test_backend_services import Backend, make_key

INTERNAL_NAMES = {
    "metadata.attacker.example": ["169.254.169.254"],
    "loopback.attacker.example": ["127.0.0.1"],
    "internal.attacker.example": ["10.0.0.1"],
    "v6.attacker.example": ["::1"],
    "cgnat.attacker.example": ["100.100.100.200"],
    # One public answer does not excuse a private one: every address is checked.
    "mixed.attacker.example": [KEYS_EXAMPLE_ADDRESS, "192.168.1.10"],
}


@pytest.fixture
def jwks_resolver() -> StaticResolver:
    return StaticResolver(INTERNAL_NAMES)


REFUSED_URIS = [
    "http://127.0.0.1:8080/internal/jwks.json",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[::1]/jwks.json",
    "http://[fe80::1]/jwks.json",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::ffff:127.0.0.1]/jwks.json",
    "http://10.1.2.3/jwks.json",
    "http://172.16.0.5/jwks.json",
    "http://192.168.0.1/jwks.json",
    "http://0.0.0.0/jwks.json",
    "http://2130706433/jwks.json",  # 127.0.0.1 as one number, which getaddrinfo accepts
    "http://0x7f.1/jwks.json",
    "http://localhost:9000/jwks.json",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://user:pass@keys.example/x/jwks.json",
    "ftp://keys.example/x/jwks.json",
    *(f"http://{name}/jwks.json" for name in INTERNAL_NAMES),
]


def backend_metadata(jwks_uri: str) -> dict[str, object]:
    return {
        "client_name": "Keys elsewhere",
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"],
        "scope": "system/*.rs",
        "jwks_uri": jwks_uri,
    }


@pytest.mark.parametrize("uri", REFUSED_URIS)
async def test_registration_refuses_a_jwks_uri_inside_the_network(
    http: httpx.AsyncClient, jwks_host: JwksHost, uri: str
) -> None:
    response = await http.post("/auth/register", json=backend_metadata(uri))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    assert jwks_host.requests == 0


async def test_registration_accepts_a_public_jwks_uri_and_one_that_does_not_resolve_yet(
    http: httpx.AsyncClient, jwks_host: JwksHost, jwks_resolver: StaticResolver
) -> None:
    for uri in ("http://keys.example/x/jwks.json", "http://not-yet.example/jwks.json"):
        response = await http.post("/auth/register", json=backend_metadata(uri))
        assert response.status_code == 201, response.text
    assert jwks_resolver.questions == ["keys.example", "not-yet.example"]
    assert jwks_host.requests == 0  # registration resolves; it never fetches


@pytest.mark.parametrize("name", sorted(INTERNAL_NAMES))
async def test_token_endpoint_never_fetches_keys_from_an_internal_address(
    http: httpx.AsyncClient,
    authority: Authority,
    jwks_host: JwksHost,
    jwks_resolver: StaticResolver,
    clock: FakeClock,
    name: str,
) -> None:
    # Stored directly (an older registration, or an operator's mistake): the fetch itself
    # must refuse, not only the registration.
    made = authority.clients.register(
        name="stored before the guard", auth_method="private_key_jwt", redirect_uris=[],
        scope="system/*.rs", jwks_uri=f"http://{name}/x/jwks.json",
    )  # fmt: skip
    jwks_host.sets["x"] = {"keys": [make_key("ES384").as_dict(private=False)]}
    backend = Backend(made.client.client_id, make_key("ES384"), "ES384", clock)
    response = await http.post("/auth/token", data=backend.form())
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"
    assert name in jwks_resolver.questions  # the guard looked the name up...
    assert jwks_host.requests == 0  # ...and connected nowhere


async def test_dns_rebinding_cannot_swap_the_address_after_registration(
    http: httpx.AsyncClient,
    authority: Authority,
    jwks_host: JwksHost,
    jwks_resolver: StaticResolver,
    clock: FakeClock,
) -> None:
    key = make_key("ES384")
    jwks_host.sets["rebind"] = {"keys": [key.as_dict(private=False)]}
    jwks_host.max_age = 0  # fetched on every token request
    jwks_resolver.answers["rebind.example"] = [KEYS_EXAMPLE_ADDRESS]
    body = (
        await http.post(
            "/auth/register", json=backend_metadata("http://rebind.example/rebind/jwks.json")
        )
    ).json()
    assert body["facade_status"] == "pending"
    assert authority.clients.set_status(body["client_id"], "active")
    backend = Backend(body["client_id"], key, "ES384", clock)
    assert (await http.post("/auth/token", data=backend.form())).status_code == 200
    # Sent to the checked address, under the registered name (Host header kept).
    assert jwks_host.seen == [("rebind.example", KEYS_EXAMPLE_ADDRESS)]

    jwks_resolver.answers["rebind.example"] = ["127.0.0.1"]
    response = await http.post("/auth/token", data=backend.form())
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"
    assert jwks_host.requests == 1


async def test_a_held_client_makes_facade_fetch_nothing(
    http: httpx.AsyncClient, jwks_host: JwksHost, clock: FakeClock
) -> None:
    key = make_key("ES384")
    jwks_host.sets["held"] = {"keys": [key.as_dict(private=False)]}
    body = (await http.post("/auth/register", json=backend_metadata(jwks_host.url("held")))).json()
    assert body["facade_status"] == "pending"
    backend = Backend(body["client_id"], key, "ES384", clock)
    for _ in range(3):
        response = await http.post("/auth/token", data=backend.form())
        assert response.json()["error"] == "invalid_client"
    assert jwks_host.requests == 0


# -- the fetcher on its own --------------------------------------------------------------------


def _fetcher(
    app: Starlette, resolver: StaticResolver, clock: FakeClock, *, allow_http: bool = True
) -> JwksFetcher:
    return JwksFetcher(
        clock,
        allow_http=allow_http,
        resolver=resolver,
        transport=httpx.ASGITransport(app=app),
    )


async def test_plain_http_is_refused_unless_facade_itself_runs_on_plain_http(
    jwks_host: JwksHost, clock: FakeClock
) -> None:
    jwks_host.sets["x"] = {"keys": []}
    strict = _fetcher(jwks_host.app, StaticResolver(), clock, allow_http=False)
    with pytest.raises(JwksUnavailable, match="https"):
        await strict.get(jwks_host.url("x"))
    assert jwks_host.requests == 0
    assert await strict.refusal(jwks_host.url("x")) == "jwks_uri must use https"
    local = _fetcher(jwks_host.app, StaticResolver(), clock, allow_http=True)
    assert await local.get(jwks_host.url("x")) == {"keys": []}
    assert jwks_host.requests == 1
    await strict.aclose()
    await local.aclose()


async def test_a_redirect_is_not_followed(clock: FakeClock) -> None:
    seen: list[str] = []

    async def moved(request: Request) -> Response:
        seen.append(request.url.path)
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    app = Starlette(routes=[Route("/{path:path}", moved)])
    fetcher = _fetcher(app, StaticResolver(), clock)
    with pytest.raises(JwksUnavailable, match="302"):
        await fetcher.get("http://keys.example/x/jwks.json")
    assert seen == ["/x/jwks.json"]
    await fetcher.aclose()


async def test_https_keeps_the_name_for_tls_while_connecting_to_the_checked_address() -> None:
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"keys": []})

    transport = PinnedTransport(StaticResolver(), httpx.MockTransport(record))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://keys.example:8443/x/jwks.json")
    [request] = sent
    assert str(request.url) == f"https://{KEYS_EXAMPLE_ADDRESS}:8443/x/jwks.json"
    assert request.headers["host"] == "keys.example:8443"
    assert request.extensions["sni_hostname"] == "keys.example"  # SNI and certificate check


@pytest.fixture
def loopback_listener() -> Iterator[socket.socket]:
    """A socket listening on loopback: a connection attempt would wait in its backlog."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    yield listener
    listener.close()


async def test_the_production_fetcher_refuses_loopback_without_connecting(
    loopback_listener: socket.socket, clock: FakeClock
) -> None:
    """No injection at all: the real resolver and the real network transport. The only
    address involved is loopback, and nothing may connect to it."""
    port = loopback_listener.getsockname()[1]
    fetcher = JwksFetcher(clock, allow_http=True)
    assert isinstance(fetcher.resolver, SystemResolver)
    with pytest.raises(JwksUnavailable, match="loopback"):
        await fetcher.get(f"http://127.0.0.1:{port}/internal/jwks.json")
    with pytest.raises(BlockingIOError):
        loopback_listener.accept()  # nobody knocked
    await fetcher.aclose()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.100.100.200",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.0.192",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert address_refusal(address) is not None


@pytest.mark.parametrize("address", [KEYS_EXAMPLE_ADDRESS, "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(address) is None
