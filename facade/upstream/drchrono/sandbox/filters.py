"""The kinds of list filter DrChrono endpoints accept, parsed and matched the way DRF would.

Each filter parses its query value (bad values raise `FilterError`, a DRF-style 400) and then
keeps or drops records. Which endpoint takes which filter is declared in `endpoints.py`, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from facade.upstream.drchrono.sandbox.dataset import Record, SandboxDataset

#: "Cannot be longer than 190 days, unless it is in the past."
MAX_DATE_RANGE_DAYS = 190


class FilterError(Exception):
    """A 400: `body` is what DRF would send, e.g. `{"patient": ["Enter a whole number."]}`."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.body = body


class Lookup:
    """Indexes over the dataset built once per request, so joins stay cheap."""

    def __init__(self, dataset: SandboxDataset) -> None:
        self.dataset = dataset
        self._by_id: dict[str, dict[str, Record]] = {}
        self._by_field: dict[tuple[str, str], dict[str, list[Record]]] = {}

    def get(self, endpoint: str, record_id: Any) -> Record | None:
        if record_id is None or record_id == "":
            return None
        index = self._by_id.get(endpoint)
        if index is None:
            index = {str(r["id"]): r for r in self.dataset.endpoint(endpoint)}
            self._by_id[endpoint] = index
        return index.get(str(record_id))

    def having(self, endpoint: str, field_name: str, value: Any) -> list[Record]:
        key = (endpoint, field_name)
        index = self._by_field.get(key)
        if index is None:
            index = {}
            for record in self.dataset.endpoint(endpoint):
                index.setdefault(str(record.get(field_name)), []).append(record)
            self._by_field[key] = index
        return index.get(str(value), [])


#: Reads the value a filter compares from a record (possibly through a join).
ValueOf = Callable[[Record, Lookup], Any]


def own(field_name: str) -> ValueOf:
    return lambda record, lookup: record.get(field_name)


def first_of(*field_names: str) -> ValueOf:
    """The first of `field_names` the record has a value for."""

    def value_of(record: Record, lookup: Lookup) -> Any:
        for field_name in field_names:
            if record.get(field_name) not in (None, ""):
                return record[field_name]
        return None

    return value_of


def own_or_joined(field_name: str, via: str, endpoint: str, remote: str | None = None) -> ValueOf:
    """The record's own `field_name` if it has one, else `remote` of the record `via` points at."""

    def value_of(record: Record, lookup: Lookup) -> Any:
        if record.get(field_name) not in (None, ""):
            return record[field_name]
        target = lookup.get(endpoint, record.get(via))
        return None if target is None else target.get(remote or field_name)

    return value_of


def joined(via: str, endpoint: str, remote: str) -> ValueOf:
    def value_of(record: Record, lookup: Lookup) -> Any:
        target = lookup.get(endpoint, record.get(via))
        return None if target is None else target.get(remote)

    return value_of


@dataclass(frozen=True)
class Filter:
    """One filtering parameter: `parse` turns the raw value into a predicate over records."""

    param: str
    parse: Callable[[str, date], Callable[[Record, Lookup], bool]]


def integer(param: str, value_of: ValueOf) -> Filter:
    def parse(raw: str, today: date) -> Callable[[Record, Lookup], bool]:
        wanted = _parse_int(param, raw)
        return lambda record, lookup: _as_int(value_of(record, lookup)) == wanted

    return Filter(param, parse)


def integer_any_of(param: str, matches: Callable[[Record, Lookup, set[int]], bool]) -> Filter:
    """A comma-separated list of ids (`offices=1,2`)."""

    def parse(raw: str, today: date) -> Callable[[Record, Lookup], bool]:
        wanted = {_parse_int(param, part) for part in raw.split(",") if part.strip()}
        return lambda record, lookup: matches(record, lookup, wanted)

    return Filter(param, parse)


def text_equals(param: str, value_of: ValueOf, *, ignore_case: bool = False) -> Filter:
    def parse(raw: str, today: date) -> Callable[[Record, Lookup], bool]:
        wanted = raw.casefold() if ignore_case else raw

        def matches(record: Record, lookup: Lookup) -> bool:
            value = str(value_of(record, lookup) or "")
            return (value.casefold() if ignore_case else value) == wanted

        return matches

    return Filter(param, parse)


def text_contains(param: str, value_of: ValueOf) -> Filter:
    """Case-insensitive partial match (`first_name`, `last_name`)."""

    def parse(raw: str, today: date) -> Callable[[Record, Lookup], bool]:
        wanted = raw.casefold()
        return lambda record, lookup: wanted in str(value_of(record, lookup) or "").casefold()

    return Filter(param, parse)


def on_date(param: str, value_of: ValueOf) -> Filter:
    """Keeps records whose date (or timestamp's date) is the given day."""

    def parse(raw: str, today: date) -> Callable[[Record, Lookup], bool]:
        wanted = parse_date(param, raw)
        return lambda record, lookup: _date_of(value_of(record, lookup)) == wanted

    return Filter(param, parse)


def in_date_range(param: str, value_of: ValueOf) -> Filter:
    """`YYYY-MM-DD/YYYY-MM-DD`, inclusive; over 190 days only when it ends before today."""

    def parse(raw: str, today: date) -> Callable[[Record, Lookup], bool]:
        start, end = parse_date_range(param, raw, today)

        def matches(record: Record, lookup: Lookup) -> bool:
            day = _date_of(value_of(record, lookup))
            return day is not None and start <= day <= end

        return matches

    return Filter(param, parse)


def updated_since(param: str, value_of: ValueOf) -> Filter:
    """`since`: the record's (naive) timestamp is at or after the given one."""

    def parse(raw: str, today: date) -> Callable[[Record, Lookup], bool]:
        since = parse_timestamp(param, raw)

        def matches(record: Record, lookup: Lookup) -> bool:
            stamp = _timestamp_of(value_of(record, lookup))
            return stamp is not None and stamp >= since

        return matches

    return Filter(param, parse)


def parse_date_range(param: str, raw: str, today: date) -> tuple[date, date]:
    parts = raw.split("/")
    if len(parts) != 2:
        raise FilterError({param: ["Enter a valid date range (YYYY-MM-DD/YYYY-MM-DD)."]})
    start, end = parse_date(param, parts[0]), parse_date(param, parts[1])
    if start > end:
        raise FilterError({param: ["The start of the date range must not be after its end."]})
    if end - start > timedelta(days=MAX_DATE_RANGE_DAYS) and end >= today:
        raise FilterError(
            {
                param: [
                    f"Date range cannot be longer than {MAX_DATE_RANGE_DAYS} days"
                    " unless it is in the past."
                ]
            }
        )
    return start, end


def parse_timestamp(param: str, raw: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw.strip().replace(" ", "T"))
    except ValueError:
        raise FilterError({param: ["Enter a valid date/time."]}) from None
    # DrChrono timestamps are naive practice-local times; an offset, if sent, is dropped.
    return parsed.replace(tzinfo=None)


def _parse_int(param: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise FilterError({param: ["Enter a whole number."]}) from None


def parse_date(param: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise FilterError({param: ["Enter a valid date."]}) from None


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _date_of(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _timestamp_of(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        return None


def ids_in(values: Iterable[Any]) -> set[int]:
    return {number for number in (_as_int(value) for value in values) if number is not None}
