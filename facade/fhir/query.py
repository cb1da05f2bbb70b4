"""A FHIR search request as data: parameter clauses (name, modifier, OR-values) and the
result-control parameters (_count, paging cursor). Parsing only; no meaning is checked here,
but sizes are: a search's matching work grows with its values, so they are bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from facade.errors import InvalidParameterValue

#: A FHIR resource id (R4 `id` datatype).
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
#: Parameters that steer the result rather than select resources.
CONTROL_PARAMETERS = frozenset({"_count", "_cursor", "_format", "_include", "_revinclude"})

# Bounds on one search, so that the local matching of a page stays cheap whatever is sent
# (a POST body may be far longer than any URL). Generous for real use: US Core searches
# name a few parameters, an OR-list of ids or codes rarely tens of values.
#: Parameters (clauses, _include and _revinclude) in one search.
MAX_PARAMETERS = 50
#: Characters of a parameter name with its modifier.
MAX_NAME_LENGTH = 128
#: Comma-separated OR-values of one parameter.
MAX_OR_VALUES = 100
#: OR-values over all parameters of one search.
MAX_TOTAL_VALUES = 500
#: Characters of one value (a long token system|code or an absolute reference fits).
MAX_VALUE_LENGTH = 1024
#: Characters of a paging cursor (facade's own are a few hundred).
MAX_CURSOR_LENGTH = 4096


@dataclass(frozen=True)
class SearchClause:
    name: str
    modifier: str | None
    #: The comma-separated OR values, unescaped (`\,` is a literal comma).
    values: tuple[str, ...]
    raw_value: str

    @property
    def key(self) -> str:
        return f"{self.name}:{self.modifier}" if self.modifier else self.name


@dataclass(frozen=True)
class SearchQuery:
    clauses: tuple[SearchClause, ...]
    count: str | None = None
    cursor: str | None = None
    format: str | None = None
    includes: tuple[str, ...] = ()
    revincludes: tuple[str, ...] = ()

    def encode(
        self,
        clauses: tuple[SearchClause, ...] | None = None,
        includes: tuple[str, ...] = (),
        revincludes: tuple[str, ...] = (),
    ) -> str:
        """The query string of the given clauses (default: all), in request order, then
        the given _include and _revinclude values."""
        chosen = self.clauses if clauses is None else clauses
        pairs = [(c.key, c.raw_value) for c in chosen]
        pairs += [("_include", value) for value in includes]
        pairs += [("_revinclude", value) for value in revincludes]
        return urlencode(pairs)


def split_or_values(raw: str) -> tuple[str, ...]:
    if "\\" not in raw:
        return tuple(raw.split(","))
    values: list[str] = []
    current: list[str] = []
    escaped = False
    for char in raw:
        if escaped:
            current.append(char if char == "," else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    values.append("".join(current))
    return tuple(values)


def parse_query(pairs: list[tuple[str, str]]) -> SearchQuery:
    """The search the pairs ask for; 400 invalid-parameter-value when it is larger than the
    bounds above (messages name the parameter, never its value)."""
    if len(pairs) > MAX_PARAMETERS:
        raise InvalidParameterValue(
            f"A search takes at most {MAX_PARAMETERS} parameters; this one has {len(pairs)}."
        )
    clauses: list[SearchClause] = []
    controls: dict[str, str] = {}
    includes: list[str] = []
    revincludes: list[str] = []
    total_values = 0
    for key, raw in pairs:
        if len(key) > MAX_NAME_LENGTH:
            raise InvalidParameterValue(
                f"A search parameter name is longer than {MAX_NAME_LENGTH} characters."
            )
        longest = MAX_CURSOR_LENGTH if key == "_cursor" else MAX_VALUE_LENGTH
        if key in CONTROL_PARAMETERS and len(raw) > longest:
            raise InvalidParameterValue(f"{key} is longer than {longest} characters.")
        if key == "_include":
            includes.append(raw)
            continue
        if key == "_revinclude":
            revincludes.append(raw)
            continue
        if key in CONTROL_PARAMETERS:
            controls[key] = raw
            continue
        name, _, modifier = key.partition(":")
        values = _bounded_values(key, raw)
        total_values += len(values)
        if total_values > MAX_TOTAL_VALUES:
            raise InvalidParameterValue(
                f"A search takes at most {MAX_TOTAL_VALUES} values over all its parameters."
            )
        clauses.append(
            SearchClause(name=name, modifier=modifier or None, values=values, raw_value=raw)
        )
    return SearchQuery(
        clauses=tuple(clauses),
        count=controls.get("_count"),
        cursor=controls.get("_cursor"),
        format=controls.get("_format"),
        includes=tuple(includes),
        revincludes=tuple(revincludes),
    )


def _bounded_values(key: str, raw: str) -> tuple[str, ...]:
    # Refused before splitting when no split could fit: a 10 MB value costs no more work.
    if len(raw) > MAX_OR_VALUES * (MAX_VALUE_LENGTH + 2):
        raise InvalidParameterValue(f"The value of {key!r} is too long.")
    values = split_or_values(raw)
    if len(values) > MAX_OR_VALUES:
        raise InvalidParameterValue(
            f"{key!r} has {len(values)} values; a parameter takes at most {MAX_OR_VALUES}."
        )
    if any(len(value) > MAX_VALUE_LENGTH for value in values):
        raise InvalidParameterValue(
            f"A value of {key!r} is longer than {MAX_VALUE_LENGTH} characters."
        )
    return values
