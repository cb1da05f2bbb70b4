"""Local search filtering: does a FHIR resource (a dict) match one search clause?

The element to test comes from the SearchParameter's own FHIRPath expression; the test
follows the parameter's type (string, token, date, reference, uri). Pure functions over
plain dicts: no I/O, no vendor knowledge.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from facade.errors import InvalidParameterValue
from facade.fhir.dates import DateRange, parse_date_range, range_matches, split_prefix
from facade.fhir.definitions import SearchParamDefinition
from facade.fhir.query import SearchClause

_AS_CAST = re.compile(r"^\((?P<path>[\w.]+) as (?P<type>\w+)\)$")
_WHERE = re.compile(r"\.where\(resolve\(\) is \w+\)")
#: `extension.where(url = '<url>')`: keep only the extensions with that url.
_WHERE_URL = re.compile(r"\.where\(url\s*=\s*'(?P<url>[^']*)'\)")
#: How a url filter is written into a compiled path segment.
URL_FILTER = "url="
_AS_CALL = re.compile(r"\.as\((?P<type>\w+)\)$")

#: Modifiers facade evaluates, per parameter type.
SUPPORTED_MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"exact", "contains"}),
    "token": frozenset({"not"}),
    "date": frozenset(),
    "reference": frozenset(),
    "uri": frozenset(),
}


@cache
def compile_expression(expression: str) -> tuple[tuple[str, ...], ...]:
    """The element paths an expression selects, each without its leading resource type.

    Handles what US Core definitions use: unions (`|`), casts (`(X as dateTime)`,
    `X.as(Period)`), reference-type guards (`X.where(resolve() is Patient)`) and extension
    selection (`extension.where(url = '...')`, compiled to a `url=<url>` step). A choice
    element without its type (`value` after an extension) matches any `value[x]`.
    """
    paths: list[tuple[str, ...]] = []
    for part in expression.split("|"):
        part = part.strip()
        cast = _AS_CAST.match(part)
        type_suffix = ""
        if cast:
            part, type_suffix = cast["path"], cast["type"]
        else:
            call = _AS_CALL.search(part)
            if call:
                type_suffix = call["type"]
                part = part[: call.start()]
        part = _WHERE.sub("", part)
        part = _WHERE_URL.sub(lambda m: "." + URL_FILTER + m["url"].replace(".", "\x00"), part)
        segments = [s.replace("\x00", ".") for s in part.split(".")[1:]]
        if type_suffix and segments:
            segments[-1] = segments[-1] + type_suffix[0].upper() + type_suffix[1:]
        paths.append(tuple(segments))
    return tuple(paths)


def extract(resource: dict[str, Any], expression: str) -> list[Any]:
    values: list[Any] = []
    for path in compile_expression(expression):
        current: list[Any] = [resource]
        for segment in path:
            following: list[Any] = []
            if segment.startswith(URL_FILTER):
                wanted = segment[len(URL_FILTER) :]
                current = [n for n in current if isinstance(n, dict) and n.get("url") == wanted]
                continue
            for node in current:
                if not isinstance(node, dict):
                    continue
                if segment in node:
                    found = [node[segment]]
                else:
                    # A choice element ([x]) named without its type: onset → onsetDateTime.
                    found = [
                        value
                        for key, value in node.items()
                        if key.startswith(segment)
                        and key[len(segment) : len(segment) + 1].isupper()
                    ]
                for item in found:
                    following.extend(item if isinstance(item, list) else [item])
            current = following
        values.extend(current)
    return values


def clause_matches(
    definition: SearchParamDefinition, clause: SearchClause, resource: dict[str, Any]
) -> bool:
    """True when some value of the element satisfies some OR-value of the clause."""
    return ClauseMatcher(definition, clause).matches(resource)


class ClauseMatcher:
    """One clause made ready to test many resources: its values are parsed and normalized
    once, so a page of resources costs one pass over each resource's elements rather than
    one per OR-value (a 10 MB value normalized per resource stalled the server for 90 s)."""

    def __init__(self, definition: SearchParamDefinition, clause: SearchClause):
        self.expression = definition.expression
        kind = definition.type
        values = clause.values
        self._negate = False
        self._test: Callable[[list[Any]], bool]
        if kind == "string":
            self._test = _StringTest(values, clause.modifier)
        elif kind == "token":
            self._test = _TokenTest(values)
            self._negate = clause.modifier == "not"
        elif kind == "date":
            self._test = _DateTest(values)
        elif kind == "reference":
            self._test = _ReferenceTest(values)
        elif kind == "uri":
            wanted = frozenset(values)
            self._test = lambda elements: any(isinstance(e, str) and e in wanted for e in elements)
        else:
            raise InvalidParameterValue(f"Search parameter type {kind} is not supported.")

    def matches(self, resource: dict[str, Any]) -> bool:
        found = self._test(extract(resource, self.expression))
        return not found if self._negate else found


# -- string ----------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Case- and accent-insensitive form, as FHIR string search requires."""
    if text.isascii():  # NFKD leaves ASCII as it is and it has no combining marks
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _string_parts(element: Any) -> Iterable[str]:
    if isinstance(element, str):
        yield element
    elif isinstance(element, dict):
        for key in ("family", "text", "city", "district", "state", "postalCode", "country"):
            if isinstance(element.get(key), str):
                yield element[key]
        for key in ("given", "prefix", "suffix", "line"):
            for part in element.get(key, ()):
                if isinstance(part, str):
                    yield part


#: Joins a resource's string parts for :contains, so each value is one substring search.
_PART_SEPARATOR = "\x00"


class _StringTest:
    def __init__(self, values: tuple[str, ...], modifier: str | None):
        self.modifier = modifier
        self.exact = frozenset(values)
        self.wanted = tuple(normalize_text(value) for value in values)
        # A value holding the separator could match across two parts: test part by part.
        self.joinable = not any(_PART_SEPARATOR in wanted for wanted in self.wanted)

    def __call__(self, elements: list[Any]) -> bool:
        parts = [part for element in elements for part in _string_parts(element)]
        if self.modifier == "exact":
            return any(part in self.exact for part in parts)
        normalized = [normalize_text(part) for part in parts]
        if self.modifier == "contains":
            if self.joinable:
                text = _PART_SEPARATOR.join(normalized)
                return any(wanted in text for wanted in self.wanted)
            return any(wanted in part for part in normalized for wanted in self.wanted)
        return any(part.startswith(self.wanted) for part in normalized)


# -- token -----------------------------------------------------------------------------------


def parse_token(value: str) -> tuple[str | None, str | None]:
    """(system, code): `code` → (None, code); `|code` → ('', code); `sys|` → (sys, None)."""
    if "|" not in value:
        return None, value
    system, _, code = value.partition("|")
    return system, code or None


def _codings(element: Any) -> Iterable[tuple[str | None, str | None]]:
    if isinstance(element, bool):
        yield None, "true" if element else "false"
    elif isinstance(element, str | int):
        yield None, str(element)
    elif isinstance(element, dict):
        if "coding" in element:
            for coding in element["coding"]:
                yield coding.get("system"), coding.get("code")
        elif "code" in element:
            yield element.get("system"), element.get("code")
        elif "value" in element:  # Identifier, ContactPoint
            yield element.get("system"), element.get("value")


def _system_fits(wanted: str | None, system: str | None) -> bool:
    """None: any system; '': no system; otherwise that system."""
    if wanted is None:
        return True
    if wanted == "":
        return system is None
    return system == wanted


class _TokenTest:
    """The OR-values indexed by code, so a resource's codings are looked up, not scanned
    against every value."""

    def __init__(self, values: tuple[str, ...]):
        self.by_code: dict[str, list[str | None]] = {}
        self.by_folded_code: dict[str, list[str | None]] = {}
        #: Systems of `system|` values (any code).
        self.any_code: list[str] = []
        for value in values:
            system, code = parse_token(value)
            if code is None:
                self.any_code.append(system or "")
                continue
            self.by_code.setdefault(code, []).append(system)
            self.by_folded_code.setdefault(code.lower(), []).append(system)

    def __call__(self, elements: list[Any]) -> bool:
        for element in elements:
            # Codes are case-sensitive except for simple code primitives (gender=MALE).
            index = self.by_folded_code if isinstance(element, str | bool | int) else self.by_code
            plain = index is self.by_folded_code
            for system, code in _codings(element):
                if any(_system_fits(wanted, system) for wanted in self.any_code):
                    return True
                if not isinstance(code, str):
                    continue
                for wanted in index.get(code.lower() if plain else code, ()):
                    if _system_fits(wanted, system):
                        return True
        return False


# -- date ------------------------------------------------------------------------------------


def _element_range(element: Any) -> DateRange | None:
    try:
        if isinstance(element, str):
            return parse_date_range(element)
        if isinstance(element, dict) and ("start" in element or "end" in element):
            start = element.get("start")
            end = element.get("end")
            return DateRange.spanning(
                parse_date_range(start) if isinstance(start, str) else None,
                parse_date_range(end) if isinstance(end, str) else None,
            )
    except ValueError:
        return None
    return None


def parse_date_value(value: str) -> tuple[str, DateRange]:
    prefix, text = split_prefix(value)
    try:
        return prefix, parse_date_range(text)
    except ValueError:
        raise InvalidParameterValue(
            f"{value!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime), "
            "optionally after a prefix eq, ne, gt, lt, ge, le, sa, eb or ap."
        ) from None


class _DateTest:
    def __init__(self, values: tuple[str, ...]):
        self.searches = [parse_date_value(value) for value in values]

    def __call__(self, elements: list[Any]) -> bool:
        targets = [t for t in (_element_range(e) for e in elements) if t is not None]
        return any(
            range_matches(prefix, search, target)
            for target in targets
            for prefix, search in self.searches
        )


# -- reference -------------------------------------------------------------------------------


class _ReferenceTest:
    """`Patient/1` matches a reference ending in Patient/1; a bare `1` any type's id 1."""

    def __init__(self, values: tuple[str, ...]):
        self.typed: set[tuple[str, str]] = set()
        self.ids: set[str] = set()
        for value in values:
            wanted = value.rstrip("/").split("/")[-2:] if "/" in value else [value]
            if len(wanted) == 2:
                self.typed.add((wanted[0], wanted[1]))
            else:
                self.ids.add(wanted[0])

    def __call__(self, elements: list[Any]) -> bool:
        for element in elements:
            reference = element.get("reference") if isinstance(element, dict) else None
            if not isinstance(reference, str):
                continue
            parts = reference.split("/")[-2:]
            if parts[-1] in self.ids or (len(parts) == 2 and (parts[0], parts[1]) in self.typed):
                return True
        return False
