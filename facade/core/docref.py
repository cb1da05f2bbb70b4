"""The parameters of US Core's `$docref` (OperationDefinition/docref), read and checked once
for every vendor: which it takes, one patient, start and end as dates in order, on-demand a
boolean, and which document types were asked for.

A vendor's `$docref` handler reads them here, then asks its vendor; nothing here calls one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from facade.errors import InvalidParameterValue, InvalidRequest, UnknownParameter
from facade.fhir.query import SearchQuery

PARAMETERS = frozenset({"patient", "start", "end", "type", "on-demand"})
#: An open start means the whole record; the period it covers starts no earlier than this.
EARLIEST = date(1900, 1, 1)


@dataclass(frozen=True)
class DocrefParameters:
    """One `$docref` request's parameters, checked."""

    patient_id: str
    start: date | None
    end: date | None
    #: The `type` values as sent (`system|code` or `code`); none means the server's default.
    types: tuple[str, ...]

    def wants_type(self, system: str, code: str) -> bool:
        """Whether the document type `system|code` was asked for (or no type was named)."""
        if not self.types:
            return True
        for value in self.types:
            named_system, bar, named_code = value.rpartition("|")
            if named_code == code and (not bar or named_system in ("", system)):
                return True
        return False

    def period(self, today: date) -> tuple[date, date] | None:
        """The dates asked for, open ends filled in (start 1900-01-01, end today); None when
        neither was given. A period that holds no date is the client's error."""
        if self.start is None and self.end is None:
            return None
        low, high = self.start or EARLIEST, self.end or today
        if low > high:
            raise InvalidParameterValue(
                "$docref covers no dates: start (default 1900-01-01) is after end (default today)."
            )
        return low, high


def docref_parameters(
    query: SearchQuery, patient_id_of: Callable[[str], str | None]
) -> DocrefParameters:
    """The checked parameters of `query`; `patient_id_of` reads the vendor's patient id from
    an id or a Patient reference (None when it is not one)."""
    for clause in query.clauses:
        if clause.name not in PARAMETERS:
            raise UnknownParameter(
                f"$docref has no parameter {clause.name!r}"
                f" (parameters: {', '.join(sorted(PARAMETERS))})."
            )
    raw_patient = _one(query, "patient")
    if raw_patient is None:
        raise InvalidRequest("$docref needs the patient parameter.")
    patient_id = patient_id_of(raw_patient)
    if patient_id is None:
        raise InvalidParameterValue("$docref patient must be a Patient id or reference.")
    start, end = _date("start", _one(query, "start")), _date("end", _one(query, "end"))
    if start and end and start > end:
        raise InvalidParameterValue("$docref start must not be after end.")
    # Either value is served the same: the document is generated when it is asked for.
    if _one(query, "on-demand") not in (None, "true", "false"):
        raise InvalidParameterValue("$docref on-demand must be true or false.")
    types = tuple(v for c in query.clauses if c.name == "type" for v in c.values)
    return DocrefParameters(patient_id, start, end, types)


def service_today(service: Any) -> date:
    """Today by the service's clock (the wall clock for a service that has none)."""
    clock = getattr(service, "_clock", None)
    return (clock.now() if clock is not None else datetime.now(UTC)).date()


def _one(query: SearchQuery, name: str) -> str | None:
    values = [v for c in query.clauses if c.name == name for v in c.values]
    if len(values) > 1:
        raise InvalidParameterValue(f"$docref takes one {name!r} value.")
    return values[0] if values else None


def _date(name: str, raw: str | None) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise InvalidParameterValue(f"$docref {name!r} must be a date or dateTime.") from None
