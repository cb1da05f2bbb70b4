"""A FHIR search request as data: parameter clauses (name, modifier, OR-values) and the
result-control parameters (_count, paging cursor). Parsing only; no meaning is checked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

#: Parameters that steer the result rather than select resources.
CONTROL_PARAMETERS = frozenset({"_count", "_cursor", "_format", "_include", "_revinclude"})


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
    clauses: list[SearchClause] = []
    controls: dict[str, str] = {}
    includes: list[str] = []
    revincludes: list[str] = []
    for key, raw in pairs:
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
        clauses.append(
            SearchClause(
                name=name,
                modifier=modifier or None,
                values=split_or_values(raw),
                raw_value=raw,
            )
        )
    return SearchQuery(
        clauses=tuple(clauses),
        count=controls.get("_count"),
        cursor=controls.get("_cursor"),
        format=controls.get("_format"),
        includes=tuple(includes),
        revincludes=tuple(revincludes),
    )
