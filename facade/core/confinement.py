"""The patient compartment, decided before the vendor is asked: which patient an id or a
search value names by itself, a search cut to one patient's values before it is planned, and
a vendor client that stops a confined read at the first record of another patient.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from facade.core.compartment import patient_named_by
from facade.core.mapping import ById, PatientParam, Record, ResourceMapping
from facade.core.planner import patient_id_of
from facade.core.registry import AnyMapping, MappingRegistry
from facade.core.vendor import VendorClient, VendorPage
from facade.errors import ResourceNotFound
from facade.fhir.query import SearchClause, SearchQuery


def patient_of_id(registry: MappingRegistry, resource_type: str, resource_id: str) -> str | None:
    """The patient a resource id names by itself, or None when only the vendor knows.

    A Patient's id is the patient; a compartment resource read from the patient record
    (care team, coverage, related persons, the C-CDA) carries the patient id in its id, and
    so may a practice-type resource derived from it (a patient's payer Organization)."""
    if resource_type == "Patient":
        return resource_id
    try:
        mapping = registry.get(resource_type)
        patient = registry.get("Patient")
    except ResourceNotFound:
        return None
    if isinstance(mapping, ResourceMapping):
        return mapping.patient_in_id(resource_id)
    if not isinstance(patient, ResourceMapping):
        return None
    return patient_named_by(mapping, resource_id, patient.endpoint)


def confine_query(
    registry: MappingRegistry, mapping: AnyMapping, query: SearchQuery, patient_id: str
) -> tuple[SearchQuery, bool]:
    """The query with every value that names another patient cut out, and whether a clause
    named only other patients (then nothing can match, and nothing need be fetched).

    Cut: `patient` values (`123`, `Patient/123`, `<base>/Patient/123`; also with the
    `:Patient` modifier), and by-id values that name their patient (a Patient's `_id` or
    identifier in the vendor's patient-id system, a patient-keyed compartment id). Values
    that name no patient by themselves (record ids, other identifiers) stay: the grant's
    patient filter, imposed on every plan, confines them. A clause left with no value is
    kept as it was, so the planner still validates it; the caller must not fetch."""
    clauses: list[SearchClause] = []
    elsewhere = False
    for clause in query.clauses:
        param = mapping.param(clause.name)
        serve = param.serve if param is not None else None
        if isinstance(serve, PatientParam) and clause.modifier in (None, "Patient"):
            kept = [v for v in clause.values if patient_id_of(v) == patient_id]
        elif isinstance(serve, ById) and clause.modifier is None:
            kept = [
                v
                for v in clause.values
                if _named_by_value(registry, mapping, clause.name, serve, v) in (None, patient_id)
            ]
        else:
            kept = list(clause.values)
        if not kept:
            elsewhere = True
            clauses.append(clause)
        elif len(kept) < len(clause.values):
            raw = ",".join(v.replace(",", "\\,") for v in kept)
            clauses.append(replace(clause, values=tuple(kept), raw_value=raw))
        else:
            clauses.append(clause)
    return replace(query, clauses=tuple(clauses)), elsewhere


def _named_by_value(
    registry: MappingRegistry, mapping: AnyMapping, name: str, serve: ById, value: str
) -> str | None:
    if mapping.resource_type != "Patient":
        return patient_of_id(registry, mapping.resource_type, value)
    if name == "_id":
        return value  # a Patient's id IS the patient
    return serve.vendor_id(value)  # e.g. an identifier in the system of vendor patient ids


class OutsideCompartment(Exception):
    """A confined read met a record of a patient outside its confinement."""


class ConfinedClient:
    """The vendor client as one read confined to some patients sees it: a record that names
    another patient in `field` (the source's patient parameter, which vendors also use as
    the record's field) ends the read at once, and a list asked for another patient is never
    requested. A join that would go on to fetch that patient's other records (a lab order's
    tests and results, an assessment's chart, a note's visit) stops after the first one.
    The read's own compartment check still follows; this only stops it fetching further."""

    def __init__(self, client: VendorClient, patients: Collection[str], field: str):
        self._client = client
        self._patients = frozenset(patients)
        self._field = field
        self.vendor = client.vendor
        self.wire = client.wire
        self.budget = client.budget
        self.cache = client.cache

    def _check(self, record: Record | None) -> None:
        named = record.get(self._field) if isinstance(record, dict) else None
        if named not in (None, "") and str(named) not in self._patients:
            raise OutsideCompartment()

    def _check_params(self, params: Mapping[str, str] | None) -> None:
        named = (params or {}).get(self._field)
        if named is not None and named not in self._patients:
            raise OutsideCompartment()

    def list_url(self, endpoint: str, params: dict[str, str]) -> str:
        return self._client.list_url(endpoint, params)

    def record_url(
        self, endpoint: str, record_id: str, params: dict[str, str] | None = None
    ) -> str:
        return self._client.record_url(endpoint, record_id, params)

    async def fetch_page(
        self, url: str, *, reason: str, cache_ttl: float = 0.0, max_wait: float | None = None
    ) -> VendorPage:
        page = await self._client.fetch_page(
            url, reason=reason, cache_ttl=cache_ttl, max_wait=max_wait
        )
        for record in page.results:
            self._check(record)
        return page

    async def list_all(
        self, endpoint: str, params: dict[str, str], *, reason: str, cache_ttl: float = 0.0
    ) -> list[Record]:
        self._check_params(params)
        records = await self._client.list_all(endpoint, params, reason=reason, cache_ttl=cache_ttl)
        for record in records:
            self._check(record)
        return records

    async def get_record(
        self,
        endpoint: str,
        record_id: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> Record | None:
        self._check_params(params)
        record = await self._client.get_record(
            endpoint, record_id, params, reason=reason, cache_ttl=cache_ttl
        )
        self._check(record)
        return record

    async def get_document(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        reason: str,
        cache_ttl: float = 0.0,
    ) -> bytes | None:
        self._check_params(params)
        return await self._client.get_document(path, params, reason=reason, cache_ttl=cache_ttl)

    async def fetch_file(self, url: str, **limits: int) -> tuple[str, bytes]:
        return await self._client.fetch_file(url, **limits)
