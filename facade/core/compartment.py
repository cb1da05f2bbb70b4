"""Declarations for resource types in the patient compartment, served from several vendor
sources (one FHIR type often comes from more than one endpoint: Observation from vitals,
lab results and assessments). Nothing here does I/O; sources name what to call.

FHIR ids of these resources are `<source name>-<vendor record id>[-<part>]`, so a read knows
which source and which vendor record to fetch (and, for sources read from the patient record,
whose compartment the id is in before fetching anything). Vendor ids with `_` (recurring
appointments) are written with `.` in FHIR ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from facade.core.mapping import (
    Include,
    LastUpdated,
    MappingContext,
    Record,
    Resource,
    SearchParam,
    Unsupported,
    with_last_updated,
)
from facade.fhir.uscore import Combination, us_core_search

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

#: A pure function from one vendor record to the resources it yields (zero or more).
ManyTransform = Callable[[Record, MappingContext], list[Resource]]


@dataclass(frozen=True)
class FetchContext:
    """What a custom fetch gets besides the client: the practice context and cache policy."""

    ctx: MappingContext
    cache_ttl: float
    reason: str


#: Custom fetch of one patient's records (joins across endpoints): (client, patient id, ...).
PatientFetch = Callable[["VendorClient", str, FetchContext], Awaitable[list[Record]]]
#: Custom read of the records behind one vendor id (e.g. a lab result and its order).
RecordRead = Callable[["VendorClient", str, FetchContext], Awaitable[list[Record]]]


@dataclass(frozen=True)
class BinaryContent:
    content_type: str
    data: bytes
    #: The vendor patient the content belongs to (for the patient compartment check).
    patient_id: str


#: Reads the file behind a vendor record (e.g. a scanned document's PDF), or None.
BinaryRead = Callable[["VendorClient", str, FetchContext], Awaitable[BinaryContent | None]]


def fhir_id(source: str, vendor_id: object, *parts: object) -> str:
    """`<source>-<vendor id>[-<part>...]`, valid as a FHIR id."""
    pieces = [source, str(vendor_id).replace("_", "."), *(str(p) for p in parts)]
    return "-".join(pieces)


def split_fhir_id(resource_id: str) -> tuple[str, str] | None:
    """(source name, vendor id) of a compartment resource id, or None if it is not one."""
    source, sep, rest = resource_id.partition("-")
    if not sep or not rest:
        return None
    vendor_id = rest.split("-", 1)[0].replace(".", "_")
    return (source, vendor_id) if vendor_id else None


class LookupTables(Protocol):
    """The practice lists a bulk listing joins in, by name (`BulkListing.lookups`)."""

    def find(self, name: str, field: str, value: object) -> list[Record]:
        """The records of list `name` whose `field` equals `value` (compared as text)."""
        ...

    def one(self, name: str, record_id: object) -> Record | None:
        """The record of list `name` with this id, or None."""
        ...


#: Attaches looked-up records to a listed one, or returns None to drop it.
BulkJoin = Callable[[Record, LookupTables], "Record | None"]


@dataclass(frozen=True)
class BulkListing:
    """How a source is read practice-wide (Bulk $export): page through `endpoint` with
    `params` (the patient filter left out), at the vendor's largest page size, or, where the
    vendor has no practice-wide listing (`per_patient`), call it once per patient. `lookups` are
    practice lists read whole first (e.g. lab orders, to know each lab result's patient);
    `join` attaches them to a record, or returns None to drop it. `params` may carry the
    endpoint's own page-size maximum when it is below the vendor's general one."""

    endpoint: str
    params: Mapping[str, str] = field(default_factory=dict)
    lookups: tuple[str, ...] = ()
    join: BulkJoin | None = None
    #: The vendor parameter for `_since` (records updated since): "" for the vendor's usual
    #: one (its Wire's `since_param`), None if the endpoint has none.
    since_param: str | None = ""
    #: Whether the vendor lists `endpoint` only for one patient at a time (it has no
    #: practice-wide listing): an export then makes one call per patient it covers, by the
    #: source's `patient_param`, and every source on the same call shares that answer.
    per_patient: bool = False
    #: Whether the listing needs the vendor's detail records.
    detail: bool = False


@dataclass(frozen=True)
class Source:
    """One vendor endpoint that yields resources of a compartment type."""

    #: Unique within its resource type; also the prefix of its resources' ids.
    name: str
    endpoint: str
    transform: ManyTransform
    #: The vendor query parameter that selects one patient's records.
    patient_param: str = "patient"
    fixed_params: Mapping[str, str] = field(default_factory=dict)
    needs_detail: Callable[[MappingContext], bool] = lambda _ctx: False
    #: For token parameters (category, code, ...): every code this source can produce. A
    #: search whose values are all outside the set skips the source: no vendor call.
    produces: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: For token parameters: codes this source never produces (when `produces` cannot be
    #: listed, e.g. lab results carry any LOINC code but never a vital-sign code).
    excludes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Replaces the default fetch (list `endpoint` by `patient_param`), e.g. for joins.
    fetch: PatientFetch | None = None
    #: Replaces the default read (GET `endpoint`/<vendor id>).
    read: RecordRead | None = None
    #: How Bulk $export lists this source practice-wide; None means `endpoint` with
    #: `fixed_params` (and detail records when needed). Sources with a custom `fetch` must set it.
    bulk: BulkListing | None = None
    #: Resources of practice types that only this source's records can build (the payer
    #: Organizations a patient's insurance names): exports write them beside the resources
    #: that reference them.
    companions: ManyTransform | None = None
    #: When a record last changed: see ChangeTime.
    last_updated: LastUpdated | None = None
    description: str = ""
    #: The vendor id behind the id piece this source writes into its resources' ids, when
    #: it writes a shorter form (a vendor id that holds '-'); None when the piece names none.
    vendor_key: Callable[[str], str | None] = lambda piece: piece

    def resources(self, record: Record, ctx: MappingContext) -> list[Resource]:
        """The transform's resources, with the record's declared change time."""
        return with_last_updated(self.transform(record, ctx), record, ctx, self.last_updated)

    def companion_resources(self, record: Record, ctx: MappingContext) -> list[Resource]:
        if self.companions is None:
            return []
        return with_last_updated(self.companions(record, ctx), record, ctx, self.last_updated)

    def could_match(self, code: str, values: tuple[str, ...]) -> bool:
        codes = [value.rpartition("|")[2] for value in values]
        excluded = self.excludes.get(code)
        if excluded is not None and all(c in excluded for c in codes):
            return False
        produced = self.produces.get(code)
        if produced is None:
            return True
        return any(c in produced for c in codes)


@dataclass(frozen=True)
class CompartmentMapping:
    resource_type: str
    #: Every US Core profile this type is served under (Observation has many).
    profiles: tuple[str, ...]
    sources: tuple[Source, ...]
    #: `patient` and `_id` are served by the framework; the rest are filtered locally.
    search_params: tuple[SearchParam, ...]
    includes: tuple[Include, ...] = ()
    #: Element paths where the responsible Practitioner is referenced (for Provenance).
    author_paths: tuple[str, ...] = ()
    #: Type-level operations, by name without `$` (e.g. "docref").
    operations: Mapping[str, Any] = field(default_factory=dict)
    #: Files behind this type's attachments, served as `Binary/<source>-<vendor id>`.
    binaries: Mapping[str, BinaryRead] = field(default_factory=dict)
    notes: str = ""
    #: Whether searches must name a patient (true for every clinical type).
    patient_required: bool = True

    def param(self, code: str) -> SearchParam | None:
        for param in self.search_params:
            if param.code == code:
                return param
        return None

    @property
    def combinations(self) -> tuple[Combination, ...]:
        """US Core's required search combinations for this type (declared once, in
        facade/fhir/uscore.py), e.g. (("birthdate", "name"), "SHALL")."""
        return us_core_search(self.resource_type).combinations

    @property
    def supported_codes(self) -> list[str]:
        return [p.code for p in self.search_params if not isinstance(p.serve, Unsupported)]

    def source(self, name: str) -> Source | None:
        for source in self.sources:
            if source.name == name:
                return source
        return None

    @property
    def profile(self) -> str:
        return self.profiles[0]


def patient_named_by(
    mapping: CompartmentMapping, resource_id: str, patient_endpoint: str
) -> str | None:
    """The vendor patient a resource id names by itself, without a vendor call, or None.

    A source that reads the patient record itself (its endpoint is the Patient endpoint:
    a care team, coverage, related persons, the C-CDA) has that record's id, the patient id,
    as the vendor id in its resources' ids. Any other id names a record of some endpoint,
    whose patient only the vendor knows."""
    located = split_fhir_id(resource_id)
    source = mapping.source(located[0]) if located else None
    if located is None or source is None or source.endpoint != patient_endpoint:
        return None
    return source.vendor_key(located[1])
