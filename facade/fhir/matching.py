"""Local search filtering: does a FHIR resource (a dict) match one search clause?

The element to test comes from the SearchParameter's own FHIRPath expression; the test
follows the parameter's type (string, token, date, reference, uri). Pure functions over
plain dicts: no I/O, no vendor knowledge.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
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
    elements = extract(resource, definition.expression)
    if clause.modifier == "not" and definition.type == "token":
        return not any(_token_matches(value, elements) for value in clause.values)
    return any(_value_matches(definition, clause, value, elements) for value in clause.values)


def _value_matches(
    definition: SearchParamDefinition, clause: SearchClause, value: str, elements: list[Any]
) -> bool:
    kind = definition.type
    if kind == "string":
        return _string_matches(value, clause.modifier, elements)
    if kind == "token":
        return _token_matches(value, elements)
    if kind == "date":
        return _date_matches(value, elements)
    if kind == "reference":
        return _reference_matches(value, elements)
    if kind == "uri":
        return any(element == value for element in elements)
    raise InvalidParameterValue(f"Search parameter type {kind} is not supported.")


# -- string ----------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Case- and accent-insensitive form, as FHIR string search requires."""
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


def _string_matches(value: str, modifier: str | None, elements: list[Any]) -> bool:
    if modifier == "exact":
        return any(part == value for e in elements for part in _string_parts(e))
    wanted = normalize_text(value)
    if modifier == "contains":
        return any(wanted in normalize_text(part) for e in elements for part in _string_parts(e))
    return any(
        normalize_text(part).startswith(wanted) for e in elements for part in _string_parts(e)
    )


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


def _token_matches(value: str, elements: list[Any]) -> bool:
    system, code = parse_token(value)
    for element in elements:
        plain = isinstance(element, str | bool | int)
        for element_system, element_code in _codings(element):
            # Codes are case-sensitive except for simple code primitives (gender=MALE).
            if code is not None and element_code != code:
                loose = plain and element_code is not None
                if not loose or str(element_code).lower() != code.lower():
                    continue
            if system is None:
                return True
            if system == "" and element_system is None:
                return True
            if system and element_system == system:
                return True
    return False


# -- date ------------------------------------------------------------------------------------


def _element_range(element: Any) -> DateRange | None:
    try:
        if isinstance(element, str):
            return parse_date_range(element)
        if isinstance(element, dict) and ("start" in element or "end" in element):
            low = parse_date_range(element["start"]).low if "start" in element else None
            high = parse_date_range(element["end"]).high if "end" in element else None
            from datetime import UTC, datetime

            return DateRange(
                low or datetime.min.replace(tzinfo=UTC), high or datetime.max.replace(tzinfo=UTC)
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


def _date_matches(value: str, elements: list[Any]) -> bool:
    prefix, search = parse_date_value(value)
    for element in elements:
        target = _element_range(element)
        if target is not None and range_matches(prefix, search, target):
            return True
    return False


# -- reference -------------------------------------------------------------------------------


def _reference_matches(value: str, elements: list[Any]) -> bool:
    wanted = value.rstrip("/").split("/")[-2:] if "/" in value else [value]
    for element in elements:
        reference = element.get("reference") if isinstance(element, dict) else None
        if not isinstance(reference, str):
            continue
        parts = reference.split("/")[-2:]
        if len(wanted) == 2 and parts == wanted:
            return True
        if len(wanted) == 1 and parts[-1] == wanted[0]:
            return True
    return False
