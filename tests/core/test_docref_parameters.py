"""`$docref`'s parameters as every vendor's handler reads them: what is refused and with which
message (each a 400 OperationOutcome through the app), and what a valid request asks for."""

from __future__ import annotations

from datetime import date

import pytest

from facade.core.docref import DocrefParameters, docref_parameters
from facade.errors import FacadeError, InvalidParameterValue, InvalidRequest, UnknownParameter
from facade.fhir.query import parse_query

LOINC = "http://loinc.org"
TODAY = date(2026, 3, 6)


def digits(value: str) -> str | None:
    """A vendor's patient ids for the test: digits, bare or as Patient/<digits>."""
    last = value.removeprefix("Patient/")
    return last if last.isdigit() else None


def read(*pairs: tuple[str, str]) -> DocrefParameters:
    return docref_parameters(parse_query(list(pairs)), digits)


def test_a_valid_request_is_read_with_the_vendors_patient_id() -> None:
    asked = read(
        ("patient", "Patient/42"),
        ("start", "2024-01-01"),
        ("end", "2024-03-31T23:00:00Z"),
        ("on-demand", "true"),
        ("type", f"{LOINC}|34133-9"),
    )
    assert asked == DocrefParameters(
        "42", date(2024, 1, 1), date(2024, 3, 31), (f"{LOINC}|34133-9",)
    )


@pytest.mark.parametrize(
    ("pairs", "error", "message"),
    [
        (
            [("patient", "42"), ("author", "x")],
            UnknownParameter,
            "$docref has no parameter 'author' (parameters: end, on-demand, patient, start, type).",
        ),
        ([("start", "2024-01-01")], InvalidRequest, "$docref needs the patient parameter."),
        (
            [("patient", "42"), ("patient", "43")],
            InvalidParameterValue,
            "$docref takes one 'patient' value.",
        ),
        (
            [("patient", "Group/42")],
            InvalidParameterValue,
            "$docref patient must be a Patient id or reference.",
        ),
        (
            [("patient", "42"), ("start", "last week")],
            InvalidParameterValue,
            "$docref 'start' must be a date or dateTime.",
        ),
        (
            [("patient", "42"), ("end", "2024-02-30")],
            InvalidParameterValue,
            "$docref 'end' must be a date or dateTime.",
        ),
        (
            [("patient", "42"), ("start", "2024-05-01"), ("end", "2024-01-01")],
            InvalidParameterValue,
            "$docref start must not be after end.",
        ),
        (
            [("patient", "42"), ("on-demand", "yes")],
            InvalidParameterValue,
            "$docref on-demand must be true or false.",
        ),
    ],
    ids=[
        "unknown",
        "no-patient",
        "two-patients",
        "not-a-patient",
        "bad-start",
        "bad-end",
        "inverted",
        "on-demand",
    ],
)
def test_a_malformed_request_is_refused_with_a_message_naming_its_fault(
    pairs: list[tuple[str, str]], error: type[FacadeError], message: str
) -> None:
    with pytest.raises(error) as raised:
        read(*pairs)
    assert raised.value.message == message
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("types", "wanted"),
    [
        ((), True),
        (("34133-9",), True),
        ((f"{LOINC}|34133-9",), True),
        (("|34133-9",), True),
        (("http://snomed.info/sct|34133-9",), False),
        ((f"{LOINC}|11488-4",), False),
        ((f"{LOINC}|11488-4", f"{LOINC}|34133-9"), True),
    ],
)
def test_a_document_type_is_wanted_when_named_in_its_system_or_when_none_is(
    types: tuple[str, ...], wanted: bool
) -> None:
    asked = DocrefParameters("42", None, None, types)
    assert asked.wants_type(LOINC, "34133-9") is wanted


@pytest.mark.parametrize(
    ("start", "end", "period"),
    [
        (None, None, None),
        (date(2024, 1, 1), None, (date(2024, 1, 1), TODAY)),
        (None, date(2024, 1, 1), (date(1900, 1, 1), date(2024, 1, 1))),
        (TODAY, TODAY, (TODAY, TODAY)),
    ],
)
def test_the_period_fills_open_ends_with_1900_and_today(
    start: date | None, end: date | None, period: tuple[date, date] | None
) -> None:
    assert DocrefParameters("42", start, end, ()).period(TODAY) == period


@pytest.mark.parametrize(("start", "end"), [(date(9999, 12, 31), None), (None, date(1, 1, 1))])
def test_a_period_that_holds_no_date_is_refused(start: date | None, end: date | None) -> None:
    with pytest.raises(InvalidParameterValue, match="covers no dates"):
        DocrefParameters("42", start, end, ()).period(TODAY)
