"""The vocabulary of mapping declarations: how a FHIR resource type is served from a vendor.

A mapping module under `mappings/<vendor>/` builds one ResourceMapping. Everything else
(parameter validation, the search plan, the CapabilityStatement, the docs' support matrix)
is derived from it. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from facade.fhir.definitions import SearchParamDefinition, definition
from facade.fhir.uscore import Combination, us_core_search

Record = dict[str, Any]
Resource = dict[str, Any]


@dataclass(frozen=True)
class MappingContext:
    """Facts about the vendor account that transforms need besides the record itself."""

    practice_group_id: str
    practice_name: str
    timezone: ZoneInfo
    #: Vendor custom-field id → the role facade gives it (e.g. "previous_last_name").
    custom_field_roles: Mapping[str, str] = field(default_factory=dict)


#: A pure function from a vendor record to a FHIR resource. Resources may share constant
#: parts (a race extension, a language); nothing may mutate a resource once it is mapped.
Transform = Callable[[Record, MappingContext], Resource]
Lookups = Mapping[str, list[Record]]
Derive = Callable[[list[Record], Lookups, MappingContext], list[Record]]


# -- when a record last changed --------------------------------------------------------------


@dataclass(frozen=True)
class ChangeTime:
    """Where a source's records say when they last changed: the first of `fields` a record
    holds (a dotted path reaches into a joined record), read as a FHIR instant by `moment`
    (vendor timestamps need the practice's time zone). Every resource mapped from the record
    carries it as meta.lastUpdated, which `_since` and `_lastUpdated` compare."""

    fields: tuple[str, ...]
    moment: Callable[[Any, ZoneInfo], str | None]

    def of(self, record: Record, ctx: MappingContext) -> str | None:
        for path in self.fields:
            value: Any = record
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            found = self.moment(value, ctx.timezone) if value not in (None, "") else None
            if found:
                return found
        return None


@dataclass(frozen=True)
class NoChangeTime:
    """The source's records hold no update or creation time (`reason` says so for the docs):
    its resources have no meta.lastUpdated, and an export `_since` includes every one of
    them, since facade cannot prove they did not change."""

    reason: str


def no_change_time(reason: str) -> NoChangeTime:
    return NoChangeTime(reason)


#: Every source declares one or the other (a test holds every mapping to it).
LastUpdated = ChangeTime | NoChangeTime


def with_last_updated(
    resources: list[Resource], record: Record, ctx: MappingContext, declared: LastUpdated | None
) -> list[Resource]:
    """`resources` (just mapped from `record`) with the declared change time as
    meta.lastUpdated. Mapped resources may share parts, so each gets a meta of its own."""
    if not isinstance(declared, ChangeTime):
        return resources
    moment = declared.of(record, ctx)
    if moment is None:
        return resources
    stamped: list[Resource] = []
    for resource in resources:
        if resource.get("meta", {}).get("lastUpdated") == moment:
            stamped.append(resource)  # the transform wrote it already
            continue
        meta = {**resource.get("meta", {}), "lastUpdated": moment}
        if "meta" in resource:
            stamped.append({**resource, "meta": meta})
        else:
            head: Resource = {k: resource[k] for k in ("resourceType", "id") if k in resource}
            stamped.append({**head, "meta": meta, **resource})
    return stamped


# -- how one search parameter is served --------------------------------------------------


@dataclass(frozen=True)
class Pushdown:
    """The vendor filters. `vendor_params` turns one search value into vendor query
    parameters, or returns None for a value it cannot express (that value is then filtered
    locally). With `exact=False` the vendor's answer is a superset and is re-checked locally.
    """

    vendor_params: Callable[[str, str | None], dict[str, str] | None]
    describe: str
    exact: bool = False


@dataclass(frozen=True)
class ById:
    """The values name vendor records: each is read directly by id (one call each).
    `vendor_id` returns the vendor id for a value, or None when the value cannot name one."""

    vendor_id: Callable[[str], str | None]
    describe: str


@dataclass(frozen=True)
class PatientParam:
    """The patient reference of a compartment type: pushed down to every source as the
    vendor's patient filter (the one parameter that always reaches the vendor)."""

    describe: str = "pushed down to every source as the vendor's patient filter"


@dataclass(frozen=True)
class LocalFilter:
    """Filtered by facade after mapping, by the SearchParameter's own definition."""

    describe: str = "filtered locally by the SearchParameter's expression"


@dataclass(frozen=True)
class Unsupported:
    reason: str


Serving = Pushdown | ById | PatientParam | LocalFilter | Unsupported


@dataclass(frozen=True)
class SearchParam:
    definition_id: str
    serve: Serving

    @property
    def definition(self) -> SearchParamDefinition:
        return definition(self.definition_id)

    @property
    def code(self) -> str:
        return self.definition.code


#: The one `_revinclude` facade serves, on every type: each match's Provenance.
PROVENANCE_REVINCLUDE = "Provenance:target"


@dataclass(frozen=True)
class Include:
    """`_include=<name>`: add the resources the matches reference at `paths`."""

    #: As clients write it: `MedicationRequest:medication`, `CareTeam:participant:Practitioner`.
    name: str
    #: Element paths (without the resource type) holding the references.
    paths: tuple[str, ...]
    #: The type included; "" for an include without a target type (`CareTeam:participant`),
    #: which adds whatever served type the references name.
    target_type: str


# -- the resource type ----------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceMapping:
    resource_type: str
    profile: str
    #: The vendor list endpoint the records come from.
    endpoint: str
    transform: Transform
    search_params: tuple[SearchParam, ...]
    #: Vendor query parameters sent on every list call (e.g. include inactive patients).
    fixed_params: Mapping[str, str] = field(default_factory=dict)
    #: Whether a mapped field needs the vendor's detail (slower, smaller-page) records.
    needs_detail: Callable[[MappingContext], bool] = lambda _ctx: False
    #: Other practice-wide endpoints whose whole lists `derive` joins in (e.g. offices).
    lookups: tuple[str, ...] = ()
    #: Turns vendor records (+ lookups) into the records the transform takes, e.g. collapses
    #: doctors into their practice, or attaches a doctor's office. Pure.
    derive: Derive | None = None
    #: "detail": read the record by id at the endpoint; "scan": find the id in the (small) list.
    read: str = "detail"
    #: Practice-wide reference data, cached longer than patient data.
    lookup_data: bool = False
    #: How a FHIR id becomes a vendor id (None: the FHIR id cannot exist at the vendor).
    vendor_id: Callable[[str], str | None] = lambda fhir_id: fhir_id if fhir_id.isdigit() else None
    #: Element paths where the responsible Practitioner is referenced (for Provenance).
    author_paths: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    #: Reads ids that are not vendor records of `endpoint` (e.g. payer Organizations found
    #: through a patient's insurance): (client, FHIR id, FetchContext) → resource or None.
    read_other: Any = None
    #: The patient an id names by itself, for resources `read_other` builds from one
    #: patient's record (a payer Organization that patient's insurance names), else None:
    #: a patient-confined grant reads only its own patient's, and no other is fetched.
    patient_in_id: Callable[[str], str | None] = lambda _fhir_id: None
    #: When a (derived) record last changed: see ChangeTime.
    last_updated: LastUpdated | None = None
    notes: str = ""

    def resource(self, record: Record, ctx: MappingContext) -> Resource:
        """The transform's resource, with its declared change time."""
        return with_last_updated([self.transform(record, ctx)], record, ctx, self.last_updated)[0]

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
