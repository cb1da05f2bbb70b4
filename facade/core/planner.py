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

from facade.core.mapping import ById, MappingContext, Pushdown, ResourceMapping, Unsupported
from facade.errors import InvalidParameterValue, UnknownParameter
from facade.fhir.definitions import SearchParamDefinition
from facade.fhir.matching import SUPPORTED_MODIFIERS, parse_date_value
from facade.fhir.query import SearchClause, SearchQuery


@dataclass(frozen=True)
class LocalCheck:
    definition: SearchParamDefinition
    clause: SearchClause


@dataclass
class SearchPlan:
    mapping: ResourceMapping
    #: Clauses that shape the answer (the self link shows these and only these).
    applied: list[SearchClause] = field(default_factory=list)
    #: Vendor ids to read directly, or None to list.
    ids: list[str] | None = None
    vendor_params: dict[str, str] = field(default_factory=dict)
    local: list[LocalCheck] = field(default_factory=list)
    #: One line per clause saying how it is served (benchmarks print these).
    rules: list[str] = field(default_factory=list)
    verbose: bool = False


def plan_search(
    mapping: ResourceMapping, query: SearchQuery, ctx: MappingContext, *, lenient: bool
) -> SearchPlan:
    plan = SearchPlan(mapping=mapping)
    for clause in query.clauses:
        param = mapping.param(clause.name)
        if param is None or isinstance(param.serve, Unsupported):
            if lenient:
                plan.rules.append(f"{clause.key}: ignored (lenient handling)")
                continue
            reason = (
                f" ({param.serve.reason})" if param and isinstance(param.serve, Unsupported) else ""
            )
            raise UnknownParameter(
                f"Search parameter {clause.name!r} is not supported for {mapping.resource_type}"
                f"{reason}. Supported: {', '.join(sorted(mapping.supported_codes))}, _count."
            )
        definition = param.definition
        if clause.modifier and clause.modifier not in SUPPORTED_MODIFIERS.get(
            definition.type, frozenset()
        ):
            if lenient:
                plan.rules.append(f"{clause.key}: ignored (modifier not supported; lenient)")
                continue
            raise UnknownParameter(
                f"Modifier :{clause.modifier} is not supported on {clause.name!r}."
            )
        _validate_values(definition, clause)
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
        if isinstance(serve, Pushdown) and len(clause.values) == 1:
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
    plan.verbose = mapping.needs_verbose(ctx)
    if plan.verbose:
        plan.vendor_params["verbose"] = "true"
    return plan


def _describe(params: dict[str, str]) -> str:
    return "&".join(f"{k}=…" for k in sorted(params))


def _validate_values(definition: SearchParamDefinition, clause: SearchClause) -> None:
    if any(value == "" for value in clause.values):
        raise InvalidParameterValue(f"Search parameter {clause.name!r} has an empty value.")
    if definition.type == "date":
        for value in clause.values:
            prefix, _ = parse_date_value(value)
            if definition.comparators and prefix != "eq" and prefix not in definition.comparators:
                raise InvalidParameterValue(f"Prefix {prefix!r} is not allowed on {clause.name!r}.")
