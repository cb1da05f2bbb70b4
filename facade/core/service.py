"""Read and search, framework-free: plain data in (type, id, query), FHIR dicts out.

The service plans each search (planner), asks the vendor client for exactly what the plan
names, maps records with the declared pure transforms, filters locally and pages. It never
speaks HTTP to FHIR clients and never builds an error response itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urlencode

from facade.auth.grant import INTERNAL, Access, Grant
from facade.auth.scopes import READ, SEARCH
from facade.clock import Clock
from facade.core.compartment import (
    BinaryContent,
    CompartmentMapping,
    FetchContext,
    Source,
    split_fhir_id,
)
from facade.core.confinement import (
    ConfinedClient,
    OutsideCompartment,
    confine_query,
    patient_of_id,
)
from facade.core.mapping import (
    PROVENANCE_REVINCLUDE,
    Include,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    ResourceMapping,
)
from facade.core.planner import (
    ChartPlan,
    Check,
    SearchPlan,
    patient_id_of,
    plan_chart,
    plan_search,
)
from facade.core.provenance import (
    TRANSMITTER_DEVICE_ID,
    provenance_for,
    target_of,
    transmitter_device,
)
from facade.core.registry import AnyMapping, MappingRegistry
from facade.core.vendor import ContextLoader, MirroredClient, VendorClient
from facade.errors import Forbidden, InvalidParameterValue, ResourceNotFound, UnknownParameter
from facade.fhir.matching import clause_matches, extract
from facade.fhir.paging import CursorCodec, searchset
from facade.fhir.query import SearchClause, SearchQuery

#: A FHIR page stops after this many vendor pages even if it is not full (it links onward),
#: so one sparse search cannot spend the hour's vendor budget in a single request.
MAX_VENDOR_PAGES_PER_FHIR_PAGE = 8


@dataclass(frozen=True)
class ServiceLimits:
    default_count: int = 50
    max_count: int = 250
    page_cache_seconds: float = 120.0
    lookup_cache_seconds: float = 900.0
    context_seconds: float = 3600.0


@dataclass
class SearchResult:
    bundle: dict[str, Any]
    plan: SearchPlan | ChartPlan


class FhirService:
    def __init__(
        self,
        registry: MappingRegistry,
        client: VendorClient,
        load_context: ContextLoader,
        cursors: CursorCodec,
        base_url: str,
        limits: ServiceLimits | None = None,
        clock: Clock | None = None,
        mirror: MirroredClient | None = None,
    ):
        """With `mirror`, records come through it (from the mirror where it holds them, from
        `client` otherwise); files always come from `client`."""
        self.registry = registry
        self.client: VendorClient = mirror or client
        self.live = client
        self.mirror = mirror
        self._load_context = load_context
        self._cursors = cursors
        self.base_url = base_url.rstrip("/")
        self.limits = limits or ServiceLimits()
        self._clock = clock or Clock()
        self._context: MappingContext | None = None
        self._context_loaded_at = 0.0
        self._context_lock = asyncio.Lock()

    def serve_from(self, mirror: MirroredClient) -> None:
        """Answer through `mirror` from now on (its live client is this service's)."""
        self.client = mirror
        self.mirror = mirror

    @property
    def clock(self) -> Clock:
        return self._clock

    async def context(self) -> MappingContext:
        """The practice facts mappings need, loaded once (4 vendor calls) and kept an hour."""
        async with self._context_lock:
            age = self._clock.monotonic() - self._context_loaded_at
            if self._context is None or age > self.limits.context_seconds:
                self._context = await self._load_context()
                self._context_loaded_at = self._clock.monotonic()
            return self._context

    # -- read --------------------------------------------------------------------------------

    async def read(self, resource_type: str, resource_id: str, *, grant: Grant) -> Resource:
        """One resource, if the grant allows reading it; outside the grant it does not exist.

        For a patient-confined grant, an id that names another patient (Patient/<id>, ids of
        sources read from the patient record, a patient's payer) is refused before any vendor
        call. Any other id names a record only the vendor can place: it is fetched (the call
        is counted like every other) and checked, and answers the same 404 as an id that does
        not exist."""
        access = _require(grant, resource_type, READ)
        patient_id = access.patient_id if self._in_compartment(resource_type) else None
        if access.patient_id is not None:
            named = patient_of_id(self.registry, resource_type, resource_id)
            if named is not None and named != access.patient_id:
                raise ResourceNotFound(f"{resource_type}/{resource_id} is not known.")
        if resource_type == "Provenance":
            return await self._read_provenance(resource_id, grant)
        resource = await self._read_unchecked(resource_type, resource_id, patient_id)
        if not self._within(resource, access, patient_id):
            raise ResourceNotFound(f"{resource_type}/{resource_id} is not known.")
        return resource

    def _in_compartment(self, resource_type: str) -> bool:
        """Whether a patient-confined grant confines this type (Patient and clinical data)."""
        if resource_type == "Patient":
            return True
        try:
            return isinstance(self.registry.get(resource_type), CompartmentMapping)
        except ResourceNotFound:
            return False

    def _within(self, resource: Resource, access: Access, patient_id: str | None) -> bool:
        if patient_id is not None:
            if resource["resourceType"] == "Patient":
                if resource["id"] != patient_id:
                    return False
            elif _patient_of(self.registry.get(resource["resourceType"]), resource) != patient_id:
                return False
        if access.filters is None:
            return True
        mapping = self.registry.get(resource["resourceType"])
        return any(_matches_filter(mapping, pairs, resource) for pairs in access.filters)

    async def _read_unchecked(
        self, resource_type: str, resource_id: str, patient_id: str | None = None
    ) -> Resource:
        if resource_type == "Provenance":
            return await self._read_provenance(resource_id, INTERNAL)
        if resource_type == "Device" and resource_id == TRANSMITTER_DEVICE_ID:
            return transmitter_device(await self.context())
        mapping = self.registry.get(resource_type)
        if isinstance(mapping, CompartmentMapping):
            patients = [patient_id] if patient_id is not None else None
            return await self._read_chart(mapping, resource_id, patients)
        if mapping.read_other is not None:
            ctx = await self.context()
            other = await mapping.read_other(
                self.client, resource_id, self._fetch_context(ctx, f"read {resource_type}")
            )
            if other is not None:
                return cast(Resource, other)
        vendor_id = mapping.vendor_id(resource_id)
        if vendor_id is None:
            raise ResourceNotFound(f"{resource_type}/{resource_id} is not known.")
        ctx = await self.context()
        if mapping.lookup_data:
            for resource in await self.lookup_resources(mapping, ctx):
                if resource["id"] == resource_id:
                    return resource
            raise ResourceNotFound(f"{resource_type}/{resource_id} is not known.")
        params = {
            **mapping.fixed_params,
            **self.client.wire.detail_params(mapping.needs_detail(ctx)),
        }
        record = await self.client.get_record(
            mapping.endpoint,
            vendor_id,
            params,
            reason=f"read {resource_type}",
            cache_ttl=self.limits.page_cache_seconds,
        )
        if record is None:
            raise ResourceNotFound(f"{resource_type}/{resource_id} is not known.")
        return self._map(mapping, [record], {}, ctx)[0]

    # -- search ------------------------------------------------------------------------------

    async def search(
        self, resource_type: str, query: SearchQuery, *, grant: Grant, lenient: bool = False
    ) -> SearchResult:
        """A searchset page. The grant's patient and granular filters become part of the
        plan, so they narrow the vendor calls as well as the results."""
        access = _require(grant, resource_type, SEARCH)
        mapping = self.registry.get(resource_type)
        includes = self._includes(mapping, query, lenient)
        revinclude = self._revinclude(query, lenient)
        count = self._count(query.count)
        confined = access.patient_id if self._in_compartment(resource_type) else None
        # Values naming other patients are cut before planning, so no vendor call names them;
        # a query left naming only others is still planned (and refused if malformed), then
        # answered empty without a vendor call.
        elsewhere = False
        if confined is not None:
            query, elsewhere = confine_query(self.registry, mapping, query, confined)
        imposed = _imposed_clauses(mapping, confined, access)
        planned = replace(query, clauses=query.clauses + tuple(imposed))
        plan: SearchPlan | ChartPlan
        if isinstance(mapping, CompartmentMapping):
            plan = plan_chart(mapping, planned, lenient=lenient)
        else:
            mirrored = self.mirror is not None and self.mirror.covers(mapping.endpoint)
            plan = plan_search(
                mapping, planned, await self.context(), lenient=lenient, pushdown=not mirrored
            )
        if access.filters is not None and not _filters_imposed(access):
            plan.local.append(GrantFilter(mapping, access.filters))
        applied_query = query.encode(
            tuple(c for c in plan.applied if not any(c is i for i in imposed)),
            tuple(i.name for i in includes),
            (PROVENANCE_REVINCLUDE,) if revinclude else (),
        )
        binding = CursorCodec.binding(resource_type, applied_query, count)
        position = self._cursors.decode(query.cursor, binding) if query.cursor else {}

        resources: list[Resource] = []
        next_position: dict[str, Any] | None = None
        if not elsewhere:
            resources, next_position = await self._page(plan, count, position)

        included = await self._included(resources, includes, grant)
        if resources and revinclude and grant.access("Provenance", READ) is not None:
            ctx = await self.context()
            included += [self._provenance(r, ctx) for r in resources]

        base_query = (applied_query + "&" if applied_query else "") + f"_count={count}"
        self_url = f"{self.base_url}/{resource_type}?{base_query}"
        next_url = None
        if next_position is not None:
            cursor = self._cursors.encode(binding, next_position)
            next_url = (
                f"{self.base_url}/{resource_type}?{base_query}&{urlencode({'_cursor': cursor})}"
            )
        bundle = searchset(self.base_url, resource_type, resources, self_url, next_url, included)
        return SearchResult(bundle=bundle, plan=plan)

    async def _page(
        self, plan: SearchPlan | ChartPlan, count: int, position: dict[str, Any]
    ) -> tuple[list[Resource], dict[str, Any] | None]:
        """One page of a planned search, from the vendor (or its cached pages)."""
        ctx = await self.context()
        if isinstance(plan, ChartPlan):
            matches = await self._chart_matches(plan, ctx)
            return _slice(matches, int(position.get("o", 0)), count)
        if plan.mapping.lookup_data:
            return await self._search_lookup(plan, ctx, count, position)
        if plan.ids is not None:
            return await self._search_by_id(plan, ctx, count, position)
        return await self._search_listing(plan, ctx, count, position)

    async def binary(self, binary_id: str, *, grant: Grant) -> BinaryContent:
        """The file behind an attachment (`Binary/<source>-<vendor id>`), if the grant allows
        Binary reads and, for a patient grant, the file is that patient's.

        For a patient grant the attachment's own resource (same id, same source) is read and
        checked first, so another patient's file is never downloaded; the file reader then
        finds that record in the client's cache."""
        access = _require(grant, "Binary", READ)
        located = split_fhir_id(binary_id)
        reader = None
        owner: CompartmentMapping | None = None
        if located is not None:
            for mapping in self.registry:
                if isinstance(mapping, CompartmentMapping) and located[0] in mapping.binaries:
                    reader, owner = mapping.binaries[located[0]], mapping
        if located is None or reader is None or owner is None:
            raise ResourceNotFound(f"Binary/{binary_id} is not known.")
        if access.patient_id is not None:
            try:
                resource = await self._read_chart(owner, binary_id, [access.patient_id])
            except ResourceNotFound:
                resource = None
            if resource is None or _patient_of(owner, resource) != access.patient_id:
                raise ResourceNotFound(f"Binary/{binary_id} is not known.")
        ctx = await self.context()
        # From the vendor: a file link the mirror kept may have expired (signed for an hour).
        content = await reader(self.live, located[1], self._fetch_context(ctx, "read Binary"))
        if content is None or (
            access.patient_id is not None and content.patient_id != access.patient_id
        ):
            raise ResourceNotFound(f"Binary/{binary_id} is not known.")
        return content

    async def operation(
        self, resource_type: str, name: str, query: SearchQuery, *, grant: Grant
    ) -> dict[str, Any]:
        """A type-level operation (`GET|POST [type]/$name`) a mapping declares. A
        patient-confined grant may only name its own patient."""
        access = _require(grant, resource_type, SEARCH)
        if access.patient_id is not None:
            named = [v for c in query.clauses if c.name == "patient" for v in c.values]
            if any(patient_id_of(v) != access.patient_id for v in named):
                raise ResourceNotFound("No such patient within this access grant.")
            if not named:
                query = replace(
                    query,
                    clauses=(*query.clauses, _clause("patient", access.patient_id)),
                )
        mapping = self.registry.get(resource_type)
        handler = getattr(mapping, "operations", {}).get(name)
        if handler is None:
            raise ResourceNotFound(f"{resource_type}/${name} is not an operation of this server.")
        result: dict[str, Any] = await handler(self, query)
        return result

    # -- _include and _revinclude -------------------------------------------------------------

    @staticmethod
    def _includes(mapping: AnyMapping, query: SearchQuery, lenient: bool) -> list[Include]:
        chosen: list[Include] = []
        for name in query.includes:
            include = next((i for i in mapping.includes if i.name == name), None)
            if include is None:
                if lenient:
                    continue
                offered = ", ".join(i.name for i in mapping.includes) or "none"
                raise UnknownParameter(
                    f"_include={name} is not supported for {mapping.resource_type}"
                    f" (supported: {offered})."
                )
            chosen.append(include)
        return chosen

    @staticmethod
    def _revinclude(query: SearchQuery, lenient: bool) -> bool:
        for name in query.revincludes:
            if name != PROVENANCE_REVINCLUDE and not lenient:
                raise UnknownParameter(
                    f"_revinclude={name} is not supported (supported: {PROVENANCE_REVINCLUDE})."
                )
        return PROVENANCE_REVINCLUDE in query.revincludes

    async def _included(
        self, resources: list[Resource], includes: list[Include], grant: Grant
    ) -> list[Resource]:
        found: dict[str, Resource] = {}
        for include in includes:
            for resource in resources:
                for path in include.paths:
                    for value in extract(resource, f"{resource['resourceType']}.{path}"):
                        reference = value.get("reference") if isinstance(value, dict) else None
                        if not isinstance(reference, str) or reference in found:
                            continue
                        kind, _, target_id = reference.partition("/")
                        if include.target_type not in ("", kind) or not target_id:
                            continue
                        try:
                            found[reference] = await self.read(kind, target_id, grant=grant)
                        except (ResourceNotFound, Forbidden):
                            continue
        return list(found.values())

    def _provenance(self, resource: Resource, ctx: MappingContext) -> Resource:
        mapping = self.registry.get(resource["resourceType"])
        return provenance_for(resource, mapping.author_paths, ctx)

    async def _read_provenance(self, provenance_id: str, grant: Grant) -> Resource:
        target = target_of(provenance_id)
        if target is None or target[0] == "Provenance":
            raise ResourceNotFound(f"Provenance/{provenance_id} is not known.")
        try:
            resource = await self.read(*target, grant=grant)
        except (ResourceNotFound, Forbidden):
            raise ResourceNotFound(f"Provenance/{provenance_id} is not known.") from None
        return self._provenance(resource, await self.context())

    # -- the patient compartment --------------------------------------------------------------

    def _fetch_context(self, ctx: MappingContext, reason: str) -> FetchContext:
        return FetchContext(ctx=ctx, cache_ttl=self.limits.page_cache_seconds, reason=reason)

    async def _source_records(
        self, source: Source, patient_id: str, ctx: MappingContext
    ) -> list[Record]:
        reason = f"{source.name} of one patient"
        if source.fetch is not None:
            return await source.fetch(self.client, patient_id, self._fetch_context(ctx, reason))
        params = {
            source.patient_param: patient_id,
            **source.fixed_params,
            **self.client.wire.detail_params(source.needs_detail(ctx)),
        }
        return await self.client.list_all(
            source.endpoint, params, reason=reason, cache_ttl=self.limits.page_cache_seconds
        )

    async def _chart_matches(self, plan: ChartPlan, ctx: MappingContext) -> list[Resource]:
        """Every match, in a stable order: by patient, then source, then vendor order.

        One patient's records from one endpoint are few pages; the client's page cache keeps
        them, so each following FHIR page costs no vendor call."""
        if plan.ids is not None:
            candidates: list[Resource] = []
            for resource_id in dict.fromkeys(plan.ids):
                named = patient_of_id(self.registry, plan.mapping.resource_type, resource_id)
                if plan.patient_ids is not None and named not in (None, *plan.patient_ids):
                    continue  # the id names a patient the search excludes: not read
                try:
                    candidates.append(
                        await self._read_chart(plan.mapping, resource_id, plan.patient_ids)
                    )
                except ResourceNotFound:
                    continue
            return [r for r in candidates if _passes(plan.local, r)]
        matches: list[Resource] = []
        for patient_id in dict.fromkeys(plan.patient_ids or []):
            if self.registry.patient_key(patient_id) is None:
                continue  # an id no patient of this vendor has: nothing to ask for
            for source in plan.sources:
                for record in await self._source_records(source, patient_id, ctx):
                    for resource in source.resources(record, ctx):
                        if _passes(plan.local, resource):
                            matches.append(resource)
        return matches

    async def _read_chart(
        self, mapping: CompartmentMapping, resource_id: str, patients: list[str] | None = None
    ) -> Resource:
        """The resource behind a compartment id. With `patients`, the read stops at the first
        vendor record of anyone else (one call, never that patient's joined records)."""
        located = split_fhir_id(resource_id)
        source = mapping.source(located[0]) if located else None
        if located is None or source is None:
            raise ResourceNotFound(f"{mapping.resource_type}/{resource_id} is not known.")
        ctx = await self.context()
        vendor_id = located[1]
        client: VendorClient = self.client
        if patients is not None:
            client = ConfinedClient(self.client, patients, source.patient_param)
        try:
            records = await self._chart_records(client, source, vendor_id, mapping, ctx)
        except OutsideCompartment:
            records = []
        for record in records:
            for resource in source.resources(record, ctx):
                if resource["id"] == resource_id:
                    return resource
        raise ResourceNotFound(f"{mapping.resource_type}/{resource_id} is not known.")

    async def _chart_records(
        self,
        client: VendorClient,
        source: Source,
        vendor_id: str,
        mapping: CompartmentMapping,
        ctx: MappingContext,
    ) -> list[Record]:
        reason = f"read {mapping.resource_type}"
        if source.read is not None:
            return await source.read(client, vendor_id, self._fetch_context(ctx, reason))
        wire = client.wire
        params = {
            k: v
            for k, v in source.fixed_params.items()
            if not wire.since_param or k != wire.since_param
        }
        params.update(wire.detail_params(source.needs_detail(ctx)))
        record = await client.get_record(
            source.endpoint,
            vendor_id,
            params,
            reason=reason,
            cache_ttl=self.limits.page_cache_seconds,
        )
        return [record] if record is not None else []

    def _count(self, raw: str | None) -> int:
        if raw is None:
            return self.limits.default_count
        try:
            count = int(raw)
        except ValueError:
            raise InvalidParameterValue("_count must be a whole number.") from None
        if count < 1:
            raise InvalidParameterValue("_count must be at least 1.")
        return min(count, self.limits.max_count)

    async def _search_lookup(
        self, plan: SearchPlan, ctx: MappingContext, count: int, position: dict[str, Any]
    ) -> tuple[list[Resource], dict[str, Any] | None]:
        matches = [
            r for r in await self.lookup_resources(plan.mapping, ctx) if self._passes(plan, r)
        ]
        return _slice(matches, int(position.get("o", 0)), count)

    async def _search_by_id(
        self, plan: SearchPlan, ctx: MappingContext, count: int, position: dict[str, Any]
    ) -> tuple[list[Resource], dict[str, Any] | None]:
        ids = list(dict.fromkeys(plan.ids or []))
        offset = int(position.get("o", 0))
        resources: list[Resource] = []
        wire = self.client.wire
        params = {**wire.for_record(plan.vendor_params), **wire.detail_params(plan.detail)}
        for vendor_id in ids[offset : offset + count]:
            record = await self.client.get_record(
                plan.mapping.endpoint,
                vendor_id,
                params,
                reason="search by id",
                cache_ttl=self.limits.page_cache_seconds,
            )
            if record is not None:
                resource = self._map(plan.mapping, [record], {}, ctx)[0]
                if self._passes(plan, resource):
                    resources.append(resource)
        following = offset + count
        return resources, ({"o": following} if following < len(ids) else None)

    async def _search_listing(
        self, plan: SearchPlan, ctx: MappingContext, count: int, position: dict[str, Any]
    ) -> tuple[list[Resource], dict[str, Any] | None]:
        """Walk vendor pages from the cursor's position until the FHIR page is full.

        The position is (vendor page URL, records of it already consumed). A vendor page that
        is only partly used stays in the client's cache, so the next FHIR page reuses it.
        """
        wire = self.client.wire
        cap = wire.largest(plan.detail)
        # Without local filters one vendor page is exactly one FHIR page.
        size = min(count, cap) if not plan.local else cap
        url: str | None = position.get("u") or self.client.list_url(
            plan.mapping.endpoint,
            {**plan.vendor_params, **wire.detail_params(plan.detail), **wire.page_params(size)},
        )
        skip = int(position.get("s", 0))
        resources: list[Resource] = []
        vendor_pages = 0
        while url is not None:
            page = await self.client.fetch_page(
                url,
                reason=f"search {plan.mapping.resource_type}",
                cache_ttl=self.limits.page_cache_seconds,
            )
            vendor_pages += 1
            records = page.results[skip:]
            mapped = self._map(plan.mapping, records, {}, ctx)
            for index, resource in enumerate(mapped):
                if not self._passes(plan, resource):
                    continue
                resources.append(resource)
                if len(resources) == count:
                    consumed = skip + index + 1
                    if consumed < len(page.results):
                        return resources, {"u": page.url, "s": consumed}
                    return resources, ({"u": page.next_url, "s": 0} if page.next_url else None)
            url, skip = page.next_url, 0
            # Cached pages are walked without awaiting the vendor: let other requests in
            # between pages, so mapping and matching 8 pages never hold the loop at once.
            await asyncio.sleep(0)
            if url is not None and vendor_pages >= MAX_VENDOR_PAGES_PER_FHIR_PAGE:
                return resources, {"u": url, "s": 0}
        return resources, None

    # -- mapping -----------------------------------------------------------------------------

    async def lookup_resources(
        self, mapping: ResourceMapping, ctx: MappingContext
    ) -> list[Resource]:
        records = await self.practice_list(mapping.endpoint)
        lookups = {name: await self.practice_list(name) for name in mapping.lookups}
        return self._map(mapping, records, lookups, ctx)

    def is_practice_list(self, endpoint: str) -> bool:
        """Whether `endpoint` is a small practice list (doctors, offices) read whole."""
        return self._practice_mapping(endpoint) is not None

    async def practice_list(self, endpoint: str) -> list[Record]:
        """A small practice list, whole, through the cache every reader of it shares."""
        return await self.client.list_all(
            endpoint,
            self._list_params(endpoint),
            reason=f"practice list {endpoint}",
            cache_ttl=self.limits.lookup_cache_seconds,
        )

    def _list_params(self, endpoint: str) -> dict[str, str]:
        """One canonical query per practice list, so every user of it shares one cached call."""
        mapping = self._practice_mapping(endpoint)
        return dict(mapping.fixed_params) if mapping is not None else {}

    def _practice_mapping(self, endpoint: str) -> ResourceMapping | None:
        for mapping in self.registry:
            if (
                isinstance(mapping, ResourceMapping)
                and mapping.endpoint == endpoint
                and mapping.lookup_data
            ):
                return mapping
        return None

    def _map(
        self,
        mapping: ResourceMapping,
        records: list[Record],
        lookups: dict[str, list[Record]],
        ctx: MappingContext,
    ) -> list[Resource]:
        if mapping.derive is not None:
            if mapping.lookups and not lookups:
                raise RuntimeError(f"{mapping.resource_type} needs its lookups to map records")
            records = mapping.derive(records, lookups, ctx)
        return [mapping.resource(record, ctx) for record in records]

    @staticmethod
    def _passes(plan: SearchPlan, resource: Resource) -> bool:
        return _passes(plan.local, resource)


def _passes(checks: list[Check], resource: Resource) -> bool:
    return all(c.matches(resource) for c in checks)


def _slice(
    matches: list[Resource], offset: int, count: int
) -> tuple[list[Resource], dict[str, Any] | None]:
    page = matches[offset : offset + count]
    following = offset + count
    return page, ({"o": following} if following < len(matches) else None)


# -- access checks ---------------------------------------------------------------------------


def _require(grant: Grant, resource_type: str, permission: str) -> Access:
    access = grant.access(resource_type, permission)
    if access is None:
        verb = "read" if permission == READ else "search"
        raise Forbidden(f"The access token does not grant {verb} access to {resource_type}.")
    return access


def _clause(name: str, value: str) -> SearchClause:
    return SearchClause(name=name, modifier=None, values=(value,), raw_value=value)


def _patient_param(mapping: AnyMapping) -> str | None:
    for param in mapping.search_params:
        if isinstance(param.serve, PatientParam):
            return param.code
    return None


def _patient_of(mapping: AnyMapping, resource: Resource) -> str | None:
    for param in mapping.search_params:
        if isinstance(param.serve, PatientParam):
            for value in extract(resource, param.definition.expression):
                reference = value.get("reference", "") if isinstance(value, dict) else ""
                return patient_id_of(reference) if reference else None
    return None


def _filters_imposed(access: Access) -> bool:
    """Granular filters that are one parameter's OR-list are planned as a search clause."""
    filters = access.filters or ()
    names = {pairs[0][0] for pairs in filters if len(pairs) == 1}
    return bool(filters) and all(len(pairs) == 1 for pairs in filters) and len(names) == 1


def _imposed_clauses(
    mapping: AnyMapping, patient_id: str | None, access: Access
) -> list[SearchClause]:
    imposed: list[SearchClause] = []
    if patient_id is not None:
        if mapping.resource_type == "Patient":
            imposed.append(_clause("_id", patient_id))
        else:
            code = _patient_param(mapping)
            if code is not None:
                imposed.append(_clause(code, patient_id))
    if access.filters is not None and _filters_imposed(access):
        name = access.filters[0][0][0]
        values = tuple(pairs[0][1] for pairs in access.filters)
        imposed.append(
            SearchClause(name=name, modifier=None, values=values, raw_value=",".join(values))
        )
    return imposed


def _matches_filter(
    mapping: AnyMapping, pairs: tuple[tuple[str, str], ...], resource: Resource
) -> bool:
    for name, value in pairs:
        param = mapping.param(name)
        if param is None:
            return False  # a granular scope facade cannot evaluate grants nothing
        if not clause_matches(param.definition, _clause(name, value), resource):
            return False
    return True


@dataclass(frozen=True)
class GrantFilter:
    """A local check for granular scopes that are not one parameter's OR-list: the
    resource must match every pair of at least one granted alternative."""

    mapping: AnyMapping
    filters: tuple[tuple[tuple[str, str], ...], ...]

    def matches(self, resource: Resource) -> bool:
        return any(_matches_filter(self.mapping, pairs, resource) for pairs in self.filters)
