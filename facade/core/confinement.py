"""The patient compartment, decided without the vendor: which patient an id or a search
value names by itself, and a search cut to one patient's values before it is planned.
Pure functions over the mapping declarations; nothing here calls the vendor.
"""

from __future__ import annotations

from dataclasses import replace

from facade.core.compartment import CompartmentMapping, patient_named_by
from facade.core.mapping import ById, PatientParam, ResourceMapping
from facade.core.planner import patient_id_of
from facade.core.registry import AnyMapping, MappingRegistry
from facade.errors import ResourceNotFound
from facade.fhir.query import SearchClause, SearchQuery


def patient_of_id(registry: MappingRegistry, resource_type: str, resource_id: str) -> str | None:
    """The patient a resource id names by itself, or None when only the vendor knows.

    A Patient's id is the patient; a compartment resource read from the patient record
    (care team, coverage, related persons, the C-CDA) carries the patient id in its id."""
    if resource_type == "Patient":
        return resource_id
    try:
        mapping = registry.get(resource_type)
        patient = registry.get("Patient")
    except ResourceNotFound:
        return None
    if not isinstance(mapping, CompartmentMapping) or not isinstance(patient, ResourceMapping):
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
