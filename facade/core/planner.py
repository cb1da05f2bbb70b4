"""The search planner: a FHIR query + a mapping declaration → what to ask the vendor and
what to check locally. It decides and explains; it never calls anything.

Rules, in order, for each clause:
  unknown or unsupported parameter → refused (400) unless the client asked for lenient handling;
  ById and every value names a vendor id → read those records directly (and re-check locally);
  Pushdown with a single value the vendor can express → vendor query parameter
      (re-checked locally unless the pushdown is exact);
  anything else → filtered locally by the SearchParameter's definition.
Practice-wide lookup types are always listed whole (one cached call) and filtered locally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from facade.core.compartment import CompartmentMapping, Source
from facade.core.mapping import (
    PROVENANCE_REVINCLUDE,
    ById,
    MappingContext,
    PatientParam,
    Pushdown,
    ResourceMapping,
    SearchParam,
    Unsupported,
)
from facade.errors import InvalidParameterValue, InvalidRequest, UnknownParameter
from facade.fhir.definitions import SearchParamDefinition
from facade.fhir.matching import SUPPORTED_MODIFIERS, ClauseMatcher, parse_date_value
from facade.fhir.query import FHIR_ID, SearchClause, SearchQuery


@dataclass(frozen=True)
class LocalCheck:
    definition: SearchParamDefinition
    clause: SearchClause

    @cached_property
    def matcher(self) -> ClauseMatcher:
        """Built on first use: the clause's values are parsed once per search, not per
        resource."""
        return ClauseMatcher(self.definition, self.clause)

    def matches(self, resource: dict[str, Any]) -> bool:
        return self.matcher.matches(resource)


class Check(Protocol):
    """Anything a mapped resource must satisfy to be returned."""

    def matches(self, resource: dict[str, Any]) -> bool: ...


@dataclass
class SearchPlan:
    mapping: ResourceMapping
    #: Clauses that shape the answer (the self link shows these and only these).
    applied: list[SearchClause] = field(default_factory=list)
    #: Vendor ids to read directly, or None to list.
    ids: list[str] | None = None
    vendor_params: dict[str, str] = field(default_factory=dict)
    local: list[Check] = field(default_factory=list)
    #: One line per clause saying how it is served (benchmarks print these).
    rules: list[str] = field(default_factory=list)
    #: Whether the mapping needs the vendor's detail records (the client's wire says how).
    detail: bool = False


def plan_search(
    mapping: ResourceMapping,
    query: SearchQuery,
    ctx: MappingContext,
    *,
    lenient: bool,
    pushdown: bool = True,
) -> SearchPlan:
    """`pushdown` False plans every clause a vendor filter would serve as a local filter
    (the records come from a copy that applies no vendor filter; reads by id stay)."""
    plan = SearchPlan(mapping=mapping)
    for clause in query.clauses:
        param = _served_param(mapping, clause, lenient, plan.rules)
        if param is None:
            continue
        definition = param.definition
        plan.applied.append(clause)
        serve = param.serve
        check = LocalCheck(definition, clause)
        if mapping.lookup_data:
            plan.local.append(check)
            plan.rules.append(f"{clause.key}: filtered locally over the cached practice list")
            continue
        if isinstance(serve, ById):
            ids = [serve.vendor_id(value) for value in clause.values]
            if all(ids):
                found = [i for i in ids if i]
                plan.ids = found if plan.ids is None else [i for i in plan.ids if i in found]
                plan.local.append(check)
                plan.rules.append(f"{clause.key}: read by id ({serve.describe})")
                continue
        if pushdown and isinstance(serve, Pushdown) and len(clause.values) == 1:
            params = serve.vendor_params(clause.values[0], clause.modifier)
            if params is not None and all(
                plan.vendor_params.get(k, v) == v for k, v in params.items()
            ):
                plan.vendor_params.update(params)
                if not serve.exact:
                    plan.local.append(check)
                plan.rules.append(
                    f"{clause.key}: pushed down as {_describe(params)}"
                    + ("" if serve.exact else ", re-checked locally")
                )
                continue
        plan.local.append(check)
        plan.rules.append(f"{clause.key}: filtered locally")
    plan.vendor_params.update(mapping.fixed_params)
    plan.detail = mapping.needs_detail(ctx)
    return plan


def _served_param(
    mapping: ResourceMapping | CompartmentMapping,
    clause: SearchClause,
    lenient: bool,
    rules: list[str],
) -> SearchParam | None:
    """The declared parameter that serves a clause, after checking its modifier and values;
    None when lenient handling ignores it. Unknown, unsupported or malformed: 400."""
    param = mapping.param(clause.name)
    if param is None or isinstance(param.serve, Unsupported):
        if lenient:
            rules.append(f"{clause.key}: ignored (lenient handling)")
            return None
        reason = (
            f" ({param.serve.reason})" if param and isinstance(param.serve, Unsupported) else ""
        )
        raise UnknownParameter(
            f"Search parameter {clause.name!r} is not supported for {mapping.resource_type}"
            f"{reason}. Supported: {supported_parameters(mapping)}."
        )
    allowed = SUPPORTED_MODIFIERS.get(param.definition.type, frozenset())
    patient_type = isinstance(param.serve, PatientParam) and clause.modifier == "Patient"
    if clause.modifier and clause.modifier not in allowed and not patient_type:
        if lenient:
            rules.append(f"{clause.key}: ignored (modifier not supported; lenient)")
            return None
        raise UnknownParameter(f"Modifier :{clause.modifier} is not supported on {clause.name!r}.")
    _validate_values(param.definition, clause)
    return param


def supported_parameters(mapping: ResourceMapping | CompartmentMapping) -> str:
    """What an unknown-parameter 400 offers instead: the type's search parameters,
    `_count`, and the `_include` and `_revinclude` values served on it."""
    names = [*sorted(mapping.supported_codes), "_count"]
    names += [f"_include={include.name}" for include in mapping.includes]
    names.append(f"_revinclude={PROVENANCE_REVINCLUDE}")
    return ", ".join(names)


def _describe(params: dict[str, str]) -> str:
    return "&".join(f"{k}=…" for k in sorted(params))


def _validate_values(definition: SearchParamDefinition, clause: SearchClause) -> None:
    """Each value has its parameter's type: a date, a reference to one of the parameter's
    target types. The same for GET and POST `_search`; cheap enough for
    every search (a regular expression per value, no resource model)."""
    if any(value == "" for value in clause.values):
        raise InvalidParameterValue(f"Search parameter {clause.name!r} has an empty value.")
    if definition.type == "reference" and clause.modifier is None:
        for value in clause.values:
            _check_reference(definition, clause.name, value)
    if definition.type == "date":
        for value in clause.values:
            prefix, _ = parse_date_value(value)
            if definition.comparators and prefix != "eq" and prefix not in definition.comparators:
                raise InvalidParameterValue(f"Prefix {prefix!r} is not allowed on {clause.name!r}.")


def _check_reference(definition: SearchParamDefinition, name: str, value: str) -> None:
    """`id`, `Type/id` or an absolute URL ending in `Type/id` (optionally `/_history/v`)."""
    parts = value.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if not FHIR_ID.fullmatch(parts[-1]):
        raise InvalidParameterValue(f"A value of {name!r} does not end in a valid FHIR id.")
    if len(parts) > 1 and definition.targets and parts[-2] not in definition.targets:
        raise InvalidParameterValue(
            f"{name!r} takes a reference to {' or '.join(definition.targets)}, "
            f"not to {parts[-2][:64]!r}."
        )


# -- patient-compartment types -------------------------------------------------------------


@dataclass
class ChartPlan:
    mapping: CompartmentMapping
    applied: list[SearchClause] = field(default_factory=list)
    #: Vendor patient ids the search is confined to (None: not confined, e.g. by _id only).
    patient_ids: list[str] | None = None
    #: FHIR ids to read directly (from _id), or None.
    ids: list[str] | None = None
    sources: list[Source] = field(default_factory=list)
    local: list[Check] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)


def patient_id_of(value: str) -> str | None:
    """The patient id in `<id>`, `Patient/<id>` or `<base>/Patient/<id>`, when it is a valid
    FHIR id; whether the vendor could hold such an id is its Patient mapping's `vendor_id`."""
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] != "Patient":
        return None
    candidate = parts[-1]
    return candidate if FHIR_ID.fullmatch(candidate) else None


def plan_chart(mapping: CompartmentMapping, query: SearchQuery, *, lenient: bool) -> ChartPlan:
    plan = ChartPlan(mapping=mapping, sources=list(mapping.sources))
    for clause in query.clauses:
        param = _served_param(mapping, clause, lenient, plan.rules)
        if param is None:
            continue
        definition = param.definition
        plan.applied.append(clause)
        check = LocalCheck(definition, clause)
        if isinstance(param.serve, PatientParam):
            ids = [patient_id_of(value) for value in clause.values]
            found = [i for i in ids if i]
            plan.patient_ids = (
                found if plan.patient_ids is None else [i for i in plan.patient_ids if i in found]
            )
            plan.local.append(check)
            plan.rules.append(f"{clause.key}: pushed down to every source as the patient filter")
            continue
        if isinstance(param.serve, ById):
            mapped = [param.serve.vendor_id(value) for value in clause.values]
            if all(mapped):
                wanted = [m for m in mapped if m]
                plan.ids = wanted if plan.ids is None else [i for i in plan.ids if i in wanted]
                plan.local.append(check)
                plan.rules.append(f"{clause.key}: read by id")
                continue
            # Values that name no record fall through to a local filter (within a patient).
        plan.local.append(check)
        if definition.type == "token" and clause.modifier is None:
            kept = [s for s in plan.sources if s.could_match(clause.name, clause.values)]
            skipped = [s.name for s in plan.sources if s not in kept]
            plan.sources = kept
            if skipped:
                plan.rules.append(
                    f"{clause.key}: filtered locally; sources that cannot match skipped: "
                    + ", ".join(skipped)
                )
                continue
        plan.rules.append(f"{clause.key}: filtered locally")
    if mapping.patient_required and plan.patient_ids is None and plan.ids is None:
        raise InvalidRequest(
            f"Searches of {mapping.resource_type} must name a patient (patient=<id>) or ids (_id=)."
        )
    return plan
