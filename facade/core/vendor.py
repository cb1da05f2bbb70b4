"""What the generic code needs from a vendor: its client, its wire rules, and its entry.

Vendor packages (facade/upstream/<vendor>/) implement these; the core never imports them.
Each vendor exposes one `Vendor` entry (its `vendor.py`, listed in facade/vendors.py) that
gathers everything vendor-specific: the mapping registry, the client factory, the practice
context, the readiness probe, the quota rule, the practice groups a Group export names,
the embedded sandbox, the `connect` flow. The wire details (detail flags, page sizes, the
inactive-record switches) are declared per vendor in a `Wire`, which the client carries, so
core and bulk ask for "detail records" or "the largest page" and never spell a parameter.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from facade.core.mapping import MappingContext
from facade.upstream.budget import QuotaRule, UpstreamBudget

if TYPE_CHECKING:
    import httpx

    from facade.clock import Clock
    from facade.core.registry import MappingRegistry
    from facade.store.connections import VendorCredentials
    from facade.upstream.cache import ResponseCache

Record = dict[str, Any]


@dataclass(frozen=True)
class VendorPage:
    url: str
    results: list[Record]
    next_url: str | None


@dataclass(frozen=True)
class Wire:
    """A vendor's request options and paginator, as data (airbyte style).

    `detail` turns on the vendor's fuller (and usually slower, smaller-page) records when a
    mapping needs them; `page_size_param` asks for a page size, up to `largest_page` (or
    `largest_detail_page` with detail on); `paging_params` are the query keys that only
    move through pages (a listing's identity ignores them); `record_params` are the list
    parameters a read by id keeps; `since_param` filters records changed since a moment;
    `everything` shows inactive and archived records too; `record_filters` are the
    equality filters a listing may add (a lab order's tests).
    A vendor without a page-size parameter leaves `page_size_param` empty."""

    detail: Mapping[str, str] = field(default_factory=dict)
    page_size_param: str = ""
    largest_page: int = 100
    largest_detail_page: int = 100
    paging_params: frozenset[str] = frozenset()
    #: The list parameter for "changed since" (Bulk `_since`), or "" if the vendor has none.
    since_param: str = ""
    record_params: frozenset[str] = frozenset()
    #: Per endpoint: the parameters that include inactive/archived records.
    everything: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Per endpoint: list parameters that keep the records whose field equals the value
    #: (parameter → field), which a copy of the records can apply itself.
    record_filters: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def detail_params(self, wanted: bool = True) -> dict[str, str]:
        return dict(self.detail) if wanted else {}

    def is_detail(self, params: Mapping[str, str]) -> bool:
        return bool(self.detail) and all(params.get(k) == v for k, v in self.detail.items())

    def without_detail(self, params: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in params.items() if k not in self.detail}

    def largest(self, detail: bool) -> int:
        return self.largest_detail_page if detail else self.largest_page

    def page_params(self, size: int) -> dict[str, str]:
        return {self.page_size_param: str(size)} if self.page_size_param else {}

    def asked_page_size(self, params: Mapping[str, str]) -> int | None:
        """The page size a declaration fixed in its parameters (an endpoint's own cap)."""
        value = params.get(self.page_size_param, "") if self.page_size_param else ""
        return int(value) if value.isdigit() else None

    def without_page_size(self, params: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in params.items() if k != self.page_size_param}

    def for_record(self, params: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in params.items() if k in self.record_params}

    def everything_params(self, endpoint: str) -> dict[str, str]:
        return dict(self.everything.get(endpoint, {}))


class VendorClient(Protocol):
    vendor: str
    #: The vendor's wire rules (see Wire).
    wire: Wire
    #: The calls left in the vendor's quota window (and pacing).
    budget: UpstreamBudget
    #: Vendor answers kept for reuse (pages, records, lookups).
    cache: ResponseCache

    def list_url(self, endpoint: str, params: dict[str, str]) -> str: ...

    def record_url(
        self, endpoint: str, record_id: str, params: dict[str, str] | None = None
    ) -> str:
        """The URL `get_record` asks (and caches its answer under)."""
        ...

    async def fetch_page(
        self, url: str, *, reason: str, cache_ttl: float = 0.0, max_wait: float | None = None
    ) -> VendorPage: ...

    async def list_all(
        self, endpoint: str, params: dict[str, str], *, reason: str, cache_ttl: float = 0.0
    ) -> list[Record]: ...

    async def get_document(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> bytes | None: ...

    async def fetch_file(self, url: str, *, max_bytes: int = ...) -> tuple[str, bytes]: ...

    async def get_record(
        self,
        endpoint: str,
        record_id: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> Record | None: ...


class MirroredClient(VendorClient, Protocol):
    """A client answering from a local copy of the vendor's records where it holds them
    (facade/mirror/serve.py), with the vendor's own client behind it."""

    #: The vendor's client, for what must come from the vendor (a file's signed URL).
    live: VendorClient

    def covers(self, endpoint: str) -> bool:
        """Whether a listing of `endpoint` with its declared parameters is answered locally
        now (then no vendor filter need narrow it: every clause is filtered locally)."""
        ...


ContextLoader = Callable[[], Awaitable[MappingContext]]


@dataclass(frozen=True)
class ClientParts:
    """What the runtime builds for any vendor client: the HTTP client (its transport is the
    sandbox's ASGI app or the network), the credential keeper, the budget, cache and clock,
    and the retry policy from the settings."""

    http: httpx.AsyncClient
    keeper: Any  # load() -> VendorCredentials, save(VendorCredentials)
    budget: UpstreamBudget
    cache: ResponseCache
    clock: Clock
    timeout_seconds: float
    retries: int
    max_wait_seconds: float


@dataclass(frozen=True)
class PracticeGroup:
    """A group of the practice's own structure (a doctor's panel, an office's patients)."""

    id: str
    name: str
    kind: str


class PracticeGroups(Protocol):
    """The Group export ids a vendor's practice structure offers."""

    #: The id prefixes (before the first "-") these groups use; operator groups may not.
    kinds: tuple[str, ...]

    def owns(self, group_id: str) -> bool: ...

    async def groups(self, client: VendorClient, cache_ttl: float) -> list[PracticeGroup]: ...

    async def members(self, client: VendorClient, group_id: str, cache_ttl: float) -> list[str]:
        """The vendor patient ids of one of `groups()`."""
        ...

    async def unknown_patients(self, client: VendorClient, patient_ids: list[str]) -> list[str]:
        """Those of `patient_ids` the vendor does not know."""
        ...


@dataclass(frozen=True)
class EmbeddedSandbox:
    """The vendor's sandbox, served in-process when no account is connected.

    `generate(patients, seed)` returns the sandbox state; `app(state)` its ASGI app;
    `login(http, state, now)` goes through the vendor's own login flow against it and returns
    credentials; `demo_accounts(state)` the showcase logins as (username, fhirUser) pairs
    (three patients, one practitioner)."""

    base_url: str
    generate: Callable[[int, int], Any]
    app: Callable[[Any], Any]
    login: Callable[[httpx.AsyncClient, Any, datetime], Awaitable[VendorCredentials]]
    patient_count: Callable[[Any], int]
    demo_accounts: Callable[[Any], list[tuple[str, str]]]


@dataclass(frozen=True)
class Command:
    """A vendor's part of a CLI command: its arguments and what runs it."""

    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Any], int]  # (args, Settings) -> exit status


class RefreshHint(NamedTuple):
    """A vendor's change signal, read as "refresh this record": the listing endpoint the
    record comes from, its vendor id, the vendor patient it belongs to (None outside a chart)
    and the event that announced it. A hint is never trusted as the record itself."""

    endpoint: str
    vendor_id: str
    patient_id: str | None
    event: str


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery as the vendor's rules read it: the id redeliveries repeat, the event, and
    the records it says changed (none for a ping or an event the mirror does not follow)."""

    delivery_id: str
    event: str
    hints: tuple[RefreshHint, ...] = ()


class WebhookMalformed(ValueError):
    """A signed delivery whose headers or body do not say what the vendor's deliveries say;
    the message names what is missing, never a value from the body."""


@dataclass(frozen=True)
class WebhookRules:
    """How a vendor's webhooks reach facade, as functions of the request (headers are
    case-insensitive) and the secret the operator registered with the vendor.

    `handshake(query, secret)` is the JSON answer to the vendor's verification `GET`, or None
    when the query is not one; a vendor without a handshake leaves it None. A handshake that
    answers with an HMAC of a caller's message must not share its key with a body signature,
    or it would sign forged bodies on request. `signed(headers, body, secret)` says whether
    the raw body carries the vendor's signature, compared in constant time. `read(headers,
    payload)` reads the verified delivery (payload: the parsed JSON body) or raises
    WebhookMalformed; the delivery id it returns should come from the signed part when the
    vendor signs one, so a replayed body cannot pass as a new delivery."""

    signed: Callable[[Mapping[str, str], bytes, str], bool]
    read: Callable[[Mapping[str, str], Any], WebhookDelivery]
    handshake: Callable[[Mapping[str, str], str], dict[str, Any] | None] | None = None


@dataclass(frozen=True)
class Vendor:
    """One vendor's entry in facade/vendors.py."""

    name: str
    title: str
    #: The mapping registry (imported on first use).
    registry: Callable[[], MappingRegistry]
    build_client: Callable[[ClientParts], VendorClient]
    #: The practice context loader for a client (`lookup_ttl`: how long lookups are kept).
    context_loader: Callable[[VendorClient, float], ContextLoader]
    #: One cheap authorized call that proves the connection still reads the practice.
    readiness_probe: Callable[[VendorClient], Awaitable[object]]
    quota: QuotaRule
    groups: PracticeGroups
    sandbox: EmbeddedSandbox
    #: `facade connect <vendor>`.
    connect: Command
    #: `facade sandbox <vendor>`: the sandbox on its own.
    serve_sandbox: Command
    #: One line naming a stored connection (no secret), e.g. for start-up.
    describe_connection: Callable[[VendorCredentials], str]
    #: The wire rules its client carries, readable without a connection (the README's notes).
    wire: Wire
    #: Words only this vendor's packages may use (tests/test_vendor_neutral.py).
    wire_vocabulary: tuple[str, ...] = ()
    #: How its webhooks are verified and read (the mirror's change signals); None: it has none.
    webhooks: WebhookRules | None = None
