"""The export planner: the requested types and patients → the cheapest vendor listings.

Every compartment source and practice type becomes a Consumer of a Listing; consumers that
read the same endpoint with the same parameters share one listing, so each vendor page is
fetched once per export (appointments feed Encounter, Condition and the vital signs). A
listing is practice-wide at the vendor's largest page size, or, when the export is confined
to few enough patients that it is cheaper, one listing per patient. An endpoint the vendor
lists only patient by patient (`BulkListing.per_patient`) is one "by-patient" listing: one
call per patient of the export, whichever types and sources it feeds; unconfined, the
export's patients are the practice's patient list, read once into the spill (the Patient
listing replays the same pages). It decides; it never calls the vendor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from facade.bulk.references import REFERENCES
from facade.bulk.request import PROVENANCE, ExportRequest, TypeSelection
from facade.bulk.spill import list_name
from facade.core.compartment import BulkJoin, BulkListing, CompartmentMapping, Source
from facade.core.mapping import MappingContext, Record, ResourceMapping
from facade.core.registry import MappingRegistry
from facade.core.vendor import Wire
from facade.fhir.matching import extract

#: Calls a per-patient listing is assumed to cost when nothing better is known.
PER_PATIENT_CALLS = 1
#: Calls a custom per-patient fetch (joins across endpoints) is assumed to cost.
PER_PATIENT_FETCH_CALLS = 3
#: The mode of a listing the vendor only has patient by patient (see the module docstring).
BY_PATIENT = "by-patient"


@dataclass
class Consumer:
    """One (type, source) that turns listed records into resources."""

    resource_type: str
    selection: TypeSelection
    source: Source | None = None
    mapping: ResourceMapping | None = None
    join: BulkJoin | None = None
    #: The element path holding the patient reference (for confining to members).
    patient_expression: str = ""
    provenance: bool = False
    author_paths: tuple[str, ...] = ()
    #: Reads records only for the references they make, writing nothing (the members' Patient
    #: records, when an export asks for practice types alone).
    silent: bool = False

    @property
    def label(self) -> str:
        return f"{self.resource_type}/{self.source.name}" if self.source else self.resource_type

    def transform(self, record: Record, ctx: MappingContext) -> list[Record]:
        if self.source is not None:
            return self.source.resources(record, ctx)
        assert self.mapping is not None
        return [self.mapping.resource(record, ctx)]

    @property
    def has_companions(self) -> bool:
        return self.source is not None and self.source.companions is not None

    def companions(self, record: Record, ctx: MappingContext) -> list[Record]:
        return self.source.companion_resources(record, ctx) if self.source is not None else []

    @property
    def in_compartment(self) -> bool:
        """Whether its resources belong to one patient (and so to a Group's members or not)."""
        return self.source is not None or self.resource_type == "Patient"

    def patient_of(self, resource: Record) -> str | None:
        if self.resource_type == "Patient":
            return str(resource.get("id"))
        for value in extract(resource, self.patient_expression):
            reference = value.get("reference", "") if isinstance(value, dict) else ""
            return str(reference).rpartition("/")[2] or None
        return None


@dataclass
class Listing:
    """One vendor listing an export part pages through."""

    #: "practice" (paged practice-wide), "lookup" (a small practice list read whole and
    #: derived), "patients" (one fetch per member patient), "by-patient" (one endpoint the
    #: vendor lists patient by patient, called once per patient of the export), "references"
    #: (the practice resources the other parts' lines reference) or "skipped".
    mode: str
    endpoint: str = ""
    params: dict[str, str] = field(default_factory=dict)
    lookups: tuple[str, ...] = ()
    consumers: list[Consumer] = field(default_factory=list)
    #: Whether the listing reads the vendor's detail records.
    detail: bool = False
    estimated_calls: int = 1
    error: str = ""
    #: The endpoint's own page-size maximum, when below the vendor's general one (e.g. an
    #: endpoint whose pages hold at most 20 records).
    page_size_cap: int | None = None
    #: The page size the listing asks for (decided when planned; also in `params`).
    page_length: int = 0
    #: By-patient listings: the vendor parameter naming the patient, and the patient list
    #: (a name in `lookups`) whose records are the export's patients; "" when confined to
    #: the export's `patients`.
    patient_param: str = ""
    patient_list: str = ""

    def plan_pages(self, wire: Wire) -> None:
        """Put the page size and the detail flag into `params`, in the vendor's words."""
        size = wire.largest(self.detail)
        self.page_length = min(size, self.page_size_cap) if self.page_size_cap else size
        self.params.update(wire.page_params(self.page_length))
        self.params.update(wire.detail_params(self.detail))

    @property
    def key(self) -> str:
        by_patient = [self.patient_param] if self.patient_param else []
        return json.dumps([self.endpoint, sorted(self.params.items()), *by_patient])

    @property
    def resource_types(self) -> list[str]:
        types = dict.fromkeys(c.resource_type for c in self.consumers if not c.silent)
        if any(c.provenance for c in self.consumers):
            types[PROVENANCE] = None
        return list(types)


@dataclass
class ExportPlan:
    listings: list[Listing]

    @property
    def estimated_calls(self) -> int:
        return sum(listing.estimated_calls for listing in self.listings)


def vendor_since(since: str) -> str:
    """`since` for the vendor: its local time, so a day earlier covers every time zone (the
    local _since check keeps the answer exact)."""
    from facade.fhir.dates import parse_date_range

    low = parse_date_range(since).low - timedelta(days=1)
    return low.strftime("%Y-%m-%dT%H:%M:%S")


def plan_export(
    request: ExportRequest,
    registry: MappingRegistry,
    selections: dict[str, TypeSelection],
    ctx: MappingContext,
    *,
    member_count: int | None,
    per_patient_threshold: int,
    estimate: Callable[[str], int | None],
    wire: Wire,
) -> ExportPlan:
    """`member_count` is the number of patients the export is confined to (None: all, or
    not known before the export runs); `estimate(listing key)` gives last run's page count;
    `wire` is the vendor client's (how it spells page sizes, detail and `_since`)."""
    provenance = PROVENANCE in request.types
    practice: dict[str, Listing] = {}
    by_patient: dict[str, Listing] = {}
    per_patient: list[Consumer] = []
    listings: list[Listing] = []
    referenced: list[Consumer] = []
    for resource_type in request.types:
        if resource_type == PROVENANCE:
            continue
        mapping = registry.get(resource_type)
        selection = selections[resource_type]
        if isinstance(mapping, ResourceMapping):
            consumer = Consumer(
                resource_type,
                selection,
                mapping=mapping,
                provenance=provenance and resource_type == "Patient",
                author_paths=mapping.author_paths,
            )
            if mapping.lookup_data and request.level != "system":
                # Patient and Group exports carry the practice resources their lines
                # reference, not the whole practice list.
                referenced.append(consumer)
                continue
            if mapping.lookup_data:
                listings.append(
                    Listing(
                        "lookup",
                        mapping.endpoint,
                        dict(mapping.fixed_params),
                        mapping.lookups,
                        [consumer],
                        estimated_calls=1 + len(mapping.lookups),
                    )
                )
                continue
            detail = mapping.needs_detail(ctx)
            params = {**mapping.fixed_params, **selection.vendor_params}
            if request.since and resource_type == "Patient" and wire.since_param:
                params[wire.since_param] = vendor_since(request.since)
            _add(wire, practice, "practice", mapping.endpoint, params, detail, (), consumer)
            per_patient.append(consumer)
            continue
        expression = _patient_expression(mapping)
        for source in selection.sources if selection.sources is not None else mapping.sources:
            consumer = Consumer(
                resource_type,
                selection,
                source=source,
                patient_expression=expression,
                provenance=provenance,
                author_paths=mapping.author_paths,
            )
            per_patient.append(consumer)
            bulk = source.bulk
            if bulk is not None and not bulk.endpoint:
                continue  # the source holds nothing practice-wide (e.g. on-demand C-CDA)
            if bulk is None and source.fetch is not None:
                listings.append(
                    Listing(
                        "skipped",
                        source.endpoint,
                        consumers=[consumer],
                        estimated_calls=0,
                        error=(
                            f"{consumer.label}: this source has no practice-wide listing yet, "
                            "so it is not part of practice-wide exports."
                        ),
                    )
                )
                continue
            if bulk is None:
                since = wire.since_param
                bulk = BulkListing(
                    endpoint=source.endpoint,
                    params=source.fixed_params,
                    since_param=since if since and since in source.fixed_params else None,
                    detail=source.needs_detail(ctx),
                )
            consumer.join = bulk.join
            params = dict(bulk.params)
            since_param = wire.since_param if bulk.since_param == "" else bulk.since_param
            if request.since and since_param:
                params[since_param] = vendor_since(request.since)
            detail = bulk.detail or wire.is_detail(params)
            params = wire.without_detail(params)
            if bulk.per_patient:
                into, mode, by = by_patient, BY_PATIENT, source.patient_param
            else:
                into, mode, by = practice, "practice", ""
            _add(wire, into, mode, bulk.endpoint, params, detail, bulk.lookups, consumer, by)
    if referenced and not per_patient:
        # Only practice types asked for: the members' Patient records say which of them
        # belong to the export (their practitioner and organization), and are not written.
        patient = registry.get("Patient")
        assert isinstance(patient, ResourceMapping)
        consumer = Consumer("Patient", TypeSelection("Patient"), mapping=patient, silent=True)
        _add(
            wire,
            practice,
            "practice",
            patient.endpoint,
            dict(patient.fixed_params),
            patient.needs_detail(ctx),
            (),
            consumer,
        )
        per_patient.append(consumer)
    for listing in practice.values():
        listing.plan_pages(wire)
        known = estimate(listing.key)
        listing.estimated_calls = (known if known is not None else 1) + len(listing.lookups)
    everyone = _patient_list(registry, ctx, wire) if member_count is None else ""
    for listing in by_patient.values():
        listing.plan_pages(wire)
        if everyone:
            listing.patient_list = everyone
            listing.lookups = (*listing.lookups, everyone)
        known = member_count if member_count is not None else estimate(listing.key)
        listing.estimated_calls = (known if known is not None else 1) + len(listing.lookups)
    practice_calls = sum(x.estimated_calls for x in (*practice.values(), *by_patient.values()))
    patient_calls = (
        sum(
            PER_PATIENT_FETCH_CALLS
            if c.source is not None and c.source.fetch
            else PER_PATIENT_CALLS
            for c in per_patient
        )
        * member_count
        if member_count is not None
        else None
    )
    cheaper_per_patient = patient_calls is not None and (
        member_count is not None
        and member_count <= per_patient_threshold
        or (
            all(estimate(x.key) is not None for x in practice.values())
            and patient_calls < practice_calls
        )
    )
    last = [_references_listing(referenced)] if referenced else []
    if cheaper_per_patient and per_patient:
        listings = [x for x in listings if x.mode == "lookup"]
        listings.append(
            Listing(
                "patients", "patients", consumers=per_patient, estimated_calls=patient_calls or 0
            )
        )
        return ExportPlan([*listings, *last])
    return ExportPlan([*_ordered(practice, listings), *by_patient.values(), *last])


def _patient_list(registry: MappingRegistry, ctx: MappingContext, wire: Wire) -> str:
    """The practice's patient list, named as the Patient listing reads it, so an export of
    Patient and of by-patient sources reads its pages once (into the spill) for both."""
    patient = registry.get("Patient")
    assert isinstance(patient, ResourceMapping)
    listing = Listing(
        "practice", patient.endpoint, dict(patient.fixed_params), detail=patient.needs_detail(ctx)
    )
    listing.plan_pages(wire)
    return list_name(listing.endpoint, listing.params, wire.paging_params)


def _references_listing(consumers: list[Consumer]) -> Listing:
    """The last part: the referenced practice resources, from the practice lists (which the
    export has usually read already, so they cost nothing more)."""
    lists = {
        name for c in consumers if c.mapping for name in (c.mapping.endpoint, *c.mapping.lookups)
    }
    return Listing(REFERENCES, REFERENCES, consumers=consumers, estimated_calls=len(lists))


def _ordered(practice: dict[str, Listing], others: list[Listing]) -> list[Listing]:
    lookups = [x for x in others if x.mode == "lookup"]
    skipped = [x for x in others if x.mode == "skipped"]
    return [*lookups, *practice.values(), *skipped]


def _add(
    wire: Wire,
    listings: dict[str, Listing],
    mode: str,
    endpoint: str,
    params: dict[str, str],
    detail: bool,
    lookups: tuple[str, ...],
    consumer: Consumer,
    patient_param: str = "",
) -> None:
    cap = wire.asked_page_size(params)
    params = wire.without_page_size(params)
    candidate = Listing(mode, endpoint, params, lookups, detail=detail, patient_param=patient_param)
    key = json.dumps([endpoint, sorted(params.items()), detail, patient_param])
    existing = listings.get(key)
    if existing is None:
        listings[key] = existing = candidate
    if cap is not None:
        caps = [cap, existing.page_size_cap or cap]
        existing.page_size_cap = min(caps)
    existing.lookups = tuple(dict.fromkeys(existing.lookups + lookups))
    existing.consumers.append(consumer)


def _patient_expression(mapping: CompartmentMapping) -> str:
    from facade.core.mapping import PatientParam

    for param in mapping.search_params:
        if isinstance(param.serve, PatientParam):
            return param.definition.expression
    return f"{mapping.resource_type}.subject"
