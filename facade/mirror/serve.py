"""Answers from the mirror: a vendor client whose listings and records come from the store
when the mirror holds them whole, and from the vendor when it does not.

Why at the client seam: the FHIR service, the compartment checks (ConfinedClient), the
mappings' own fetches (a lab order with its tests and results) and the Bulk runner all ask a
`VendorClient` for vendor records. Answering there keeps one code path for mapping, planning,
compartment enforcement and audit, whether a record came over the wire a second ago or from
the encrypted copy; only the cost differs (the request meter counts vendor calls, and a
mirror answer makes none).

What the mirror answers (the rest goes to the vendor, unchanged):

- a listing of an endpoint exactly one sync listing reads, once that listing is backfilled,
  asked with that listing's own parameters, narrowed by any of: the patient (the listing's
  patient parameter or field: the store indexes the patient key), the vendor's change-time
  filter (`Wire.since_param`: compared with the stored vendor change time), a field filter
  the vendor's wire declares (`Wire.record_filters`: a lab order's tests), and paging (the
  mirror pages by itself). A detail flag the listing holds anyway is no narrowing.
- a record by id of such an endpoint, asked with the listing's record parameters: the stored
  record, or none when the backfilled listing does not hold it.

Pages the mirror serves have `mirror:` URLs (endpoint, parameters and position), so a FHIR
cursor or a Bulk checkpoint goes on from the mirror; such a URL is never sent to the vendor.

Each request may carry a policy (`mirror_policy`, from its Cache-Control): `no-cache` sends
everything to the vendor, `max-age=N` only what was synced within N seconds. What the
mirror served is noted (`mirror_served`) for the freshness headers: how old the oldest
listing used is, and the newest change among the records served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from facade.clock import Clock
from facade.core.vendor import Record, VendorClient, VendorPage
from facade.mirror.store import MirrorStore, StoredRecord, Watermark
from facade.mirror.sync import SyncListing
from facade.upstream.cache import ResponseCache

#: The scheme of the page URLs the mirror makes.
SCHEME = "mirror:"
#: The query key of a mirror page URL holding its position (the store's row after which the
#: page starts); never a vendor parameter.
_AFTER = "~after"
#: How long a listing's watermark is trusted before it is read again (a request asks for
#: many listings; the scheduler moves watermarks every few seconds at most).
WATERMARK_SECONDS = 1.0


@dataclass(frozen=True)
class MirrorPolicy:
    """What one request lets the mirror answer: `use` False sends everything to the vendor;
    `max_age` (seconds) lets only listings synced that recently answer."""

    use: bool = True
    max_age: float | None = None


@dataclass
class MirrorServed:
    """What the mirror served one request: the stalest listing's synced-through time and
    the newest change (vendor change time, or fetch time where the vendor has none) among
    the records served."""

    calls: int = 0
    synced_through: datetime | None = None
    last_modified: datetime | None = None

    def note(self, mark: Watermark, records: list[StoredRecord]) -> None:
        self.calls += 1
        if mark.synced_through is not None and (
            self.synced_through is None or mark.synced_through < self.synced_through
        ):
            self.synced_through = mark.synced_through
        for record in records:
            moment = record.vendor_updated_at or record.fetched_at
            if self.last_modified is None or moment > self.last_modified:
                self.last_modified = moment
        if self.last_modified is None:
            self.last_modified = mark.synced_through


_policy: ContextVar[MirrorPolicy | None] = ContextVar("mirror_policy", default=None)
_served: ContextVar[MirrorServed | None] = ContextVar("mirror_served", default=None)


@contextmanager
def mirror_request(policy: MirrorPolicy, cache: ResponseCache) -> Iterator[MirrorServed]:
    """Answer the block's vendor requests under `policy`, noting what the mirror served.
    A policy that wants no copy also passes over the vendor answers `cache` kept before."""
    served = MirrorServed()
    policy_token = _policy.set(policy)
    served_token = _served.set(served)
    try:
        if policy.use:
            yield served
        else:
            with cache.fresh_answers():
                yield served
    finally:
        _served.reset(served_token)
        _policy.reset(policy_token)


@dataclass(frozen=True)
class _Ask:
    """A request the mirror can answer: its listing and how it narrows it."""

    listing: SyncListing
    patient: str | None = None
    #: Records the vendor changed at or after this moment (its change-time filter).
    since: datetime | None = None
    #: Record field → value, each must equal (declared field filters).
    fields: tuple[tuple[str, str], ...] = ()
    size: int = 100

    def keeps(self, record: StoredRecord) -> bool:
        if (
            self.since is not None
            and record.vendor_updated_at is not None
            and record.vendor_updated_at < self.since
        ):
            return False
        return all(_text(record.body.get(name)) == value for name, value in self.fields)


class MirrorClient:
    """A VendorClient over the mirror, with the live client behind it for what the mirror
    does not hold (see the module docstring). `listings()` are the sync's listings once the
    mirror knows them (None before: everything is live)."""

    def __init__(
        self,
        live: VendorClient,
        store: MirrorStore,
        connection: str,
        listings: Callable[[], list[SyncListing] | None],
        clock: Clock,
        timezone: Callable[[], ZoneInfo | None] = lambda: None,
    ):
        self.live = live
        self.vendor = live.vendor
        self.wire = live.wire
        self.budget = live.budget
        self.cache = live.cache
        self._store = store
        self._connection = connection
        self._listings = listings
        self._clock = clock
        self._timezone = timezone
        self._marks: dict[str, tuple[float, Watermark | None]] = {}
        #: (endpoint, field) → (store generation, field value → records).
        self._indexes: dict[tuple[str, str], tuple[int, dict[str, list[StoredRecord]]]] = {}

    # -- what the mirror holds --------------------------------------------------------------

    def covers(self, endpoint: str) -> bool:
        """Whether a listing of `endpoint` with its own parameters is answered here now."""
        listing = self._listing(endpoint)
        return listing is not None and self._usable(listing) is not None

    def _listing(self, endpoint: str) -> SyncListing | None:
        """The one listing reading `endpoint` (two listings of one endpoint keep records the
        store cannot tell apart: such an endpoint is answered live)."""
        found = [x for x in self._listings() or () if x.endpoint == endpoint]
        return found[0] if len(found) == 1 else None

    def _usable(self, listing: SyncListing) -> Watermark | None:
        """The listing's watermark, if the request's policy lets its records answer."""
        policy = _policy.get() or MirrorPolicy()
        if not policy.use:
            return None
        mark = self._watermark(listing)
        if mark is None or not mark.complete or mark.synced_through is None:
            return None
        if policy.max_age is not None:
            age = (self._clock.now() - mark.synced_through).total_seconds()
            if age > policy.max_age:
                return None
        return mark

    def _watermark(self, listing: SyncListing) -> Watermark | None:
        now = self._clock.monotonic()
        kept = self._marks.get(listing.key)
        if kept is not None and now - kept[0] < WATERMARK_SECONDS:
            return kept[1]
        mark = self._store.watermark(self._connection, listing.endpoint, listing.key)
        self._marks[listing.key] = (now, mark)
        return mark

    def _ask(self, endpoint: str, params: dict[str, str]) -> _Ask | None:
        """How the mirror answers a listing request, or None when it cannot."""
        listing = self._listing(endpoint)
        if listing is None:
            return None
        wire = self.wire
        asked = {k: v for k, v in params.items() if k not in wire.paging_params}
        own = {k: v for k, v in listing.params.items() if k not in wire.paging_params}
        size = wire.asked_page_size(params) or wire.largest(wire.is_detail(own))
        since: datetime | None = None
        if wire.since_param:
            own_since = own.pop(wire.since_param, None)
            asked_since = asked.pop(wire.since_param, None)
            if asked_since is None and own_since is not None:
                return None  # the vendor's default window, which the listing does not keep
            if asked_since is not None:
                since = self._moment(asked_since)
                if since is None:
                    return None  # a change-time filter the mirror cannot read
                floor = self._moment(own_since) if own_since is not None else None
                if floor is not None and since <= floor:
                    since = None  # the listing holds everything the filter asks for
        patient = None
        for name in (listing.patient_param, *listing.patient_fields):
            if name and name in asked and name not in own:
                patient = asked.pop(name)
                break
        filters = self.wire.record_filters.get(endpoint, {})
        fields = tuple(
            (filters[name], asked.pop(name)) for name in sorted(asked) if name in filters
        )
        if wire.is_detail(asked) and not wire.is_detail(own):
            return None  # the vendor's fuller records, which the mirror does not hold
        if wire.without_detail(asked) != wire.without_detail(own):
            return None
        return _Ask(listing, patient, since, fields, size)

    def _moment(self, value: str) -> datetime | None:
        """A change-time filter's value (the vendor's, in the practice's time zone)."""
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            zone = self._timezone()
            if zone is None:
                return None
            moment = moment.replace(tzinfo=zone)
        return moment

    # -- VendorClient ----------------------------------------------------------------------

    def list_url(self, endpoint: str, params: dict[str, str]) -> str:
        ask = self._ask(endpoint, params)
        if ask is None or self._usable(ask.listing) is None:
            return self.live.list_url(endpoint, params)
        return _mirror_url(endpoint, params)

    def record_url(
        self, endpoint: str, record_id: str, params: dict[str, str] | None = None
    ) -> str:
        return self.live.record_url(endpoint, record_id, params)

    async def fetch_page(
        self, url: str, *, reason: str, cache_ttl: float = 0.0, max_wait: float | None = None
    ) -> VendorPage:
        if not url.startswith(SCHEME):
            return await self.live.fetch_page(
                url, reason=reason, cache_ttl=cache_ttl, max_wait=max_wait
            )
        endpoint, params, after = _parse_mirror_url(url)
        ask = self._ask(endpoint, params)
        listing = self._listing(endpoint)
        mark = None if listing is None else self._watermark(listing)
        if ask is None or mark is None or not mark.complete:
            # The mirror no longer holds what the page's search began on (purged): the
            # search starts again at the vendor rather than skip or repeat records.
            return await self.live.fetch_page(
                self.live.list_url(endpoint, params),
                reason=reason,
                cache_ttl=cache_ttl,
                max_wait=max_wait,
            )
        records, last = self._page(ask, after)
        self._note(mark, records)
        next_url = None
        if last is not None:
            next_url = _mirror_url(endpoint, {**params, _AFTER: str(last)})
        return VendorPage(url=url, results=[r.body for r in records], next_url=next_url)

    async def list_all(
        self, endpoint: str, params: dict[str, str], *, reason: str, cache_ttl: float = 0.0
    ) -> list[Record]:
        ask = self._ask(endpoint, params)
        mark = self._usable(ask.listing) if ask is not None else None
        if ask is None or mark is None:
            return await self.live.list_all(endpoint, params, reason=reason, cache_ttl=cache_ttl)
        records = self._all(ask)
        self._note(mark, records)
        return [r.body for r in records]

    async def get_record(
        self,
        endpoint: str,
        record_id: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> Record | None:
        listing = self._listing(endpoint)
        mark = self._usable(listing) if listing is not None else None
        if listing is None or mark is None or not self._reads_as(listing, params or {}):
            return await self.live.get_record(
                endpoint, record_id, params, reason=reason, cache_ttl=cache_ttl
            )
        stored = self._store.get(self._connection, endpoint, record_id)
        self._note(mark, [stored] if stored is not None else [])
        return None if stored is None else stored.body

    def _reads_as(self, listing: SyncListing, params: dict[str, str]) -> bool:
        """Whether a read by id with `params` asks for the records the listing holds."""
        wire = self.wire
        own = wire.for_record(listing.params)
        if wire.is_detail(params) and not wire.is_detail(own):
            return False
        return wire.without_detail(params) == wire.without_detail(own)

    async def get_document(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> bytes | None:
        return await self.live.get_document(path, params, reason=reason, cache_ttl=cache_ttl)

    async def fetch_file(self, url: str, **limits: int) -> tuple[str, bytes]:
        return await self.live.fetch_file(url, **limits)

    # -- reading the store -------------------------------------------------------------------

    def _all(self, ask: _Ask) -> list[StoredRecord]:
        endpoint = ask.listing.endpoint
        if ask.patient is not None:
            held = self._store.for_patient(self._connection, endpoint, ask.patient)
        elif ask.fields:
            name, value = ask.fields[0]
            held = self._index(endpoint, name).get(value, [])
        else:
            held = list(self._store.scan(self._connection, endpoint))
        return [r for r in held if ask.keeps(r)]

    def _page(self, ask: _Ask, after: int) -> tuple[list[StoredRecord], int | None]:
        """One page of `ask` from the store's position `after`, and where the next starts."""
        if ask.patient is not None or ask.fields:
            held = self._all(ask)
            page = held[after : after + ask.size]
            following = after + ask.size
            return page, (following if following < len(held) else None)
        return self._store.page(
            self._connection, ask.listing.endpoint, after=after, limit=ask.size, keep=ask.keeps
        )

    def _index(self, endpoint: str, name: str) -> dict[str, list[StoredRecord]]:
        """The endpoint's records by a field's value, built once per store generation."""
        generation = self._store.generation(self._connection, endpoint)
        kept = self._indexes.get((endpoint, name))
        if kept is not None and kept[0] == generation:
            return kept[1]
        index: dict[str, list[StoredRecord]] = {}
        for record in self._store.scan(self._connection, endpoint):
            index.setdefault(_text(record.body.get(name)) or "", []).append(record)
        self._indexes[(endpoint, name)] = (generation, index)
        return index

    def _note(self, mark: Watermark, records: list[StoredRecord]) -> None:
        served = _served.get()
        if served is not None:
            served.note(mark, records)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _mirror_url(endpoint: str, params: dict[str, str]) -> str:
    query = urlencode(sorted(params.items()))
    return f"{SCHEME}{endpoint}" + (f"?{query}" if query else "")


def _parse_mirror_url(url: str) -> tuple[str, dict[str, str], int]:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    after = params.pop(_AFTER, "0")
    return parts.path, params, int(after) if after.isdigit() else 0
