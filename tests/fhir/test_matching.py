"""Local filtering follows each SearchParameter's expression and type."""

from __future__ import annotations

import pytest

from facade.errors import InvalidParameterValue
from facade.fhir.definitions import definition
from facade.fhir.matching import clause_matches, compile_expression, extract
from facade.fhir.query import parse_query

PATIENT = {
    "resourceType": "Patient",
    "id": "7",
    "meta": {"lastUpdated": "2024-03-05T10:41:09-05:00"},
    "identifier": [
        {"system": "urn:drchrono:chart", "value": "DOJA01"},
        {"system": "urn:drchrono:patient", "value": "7"},
    ],
    "name": [
        {"use": "official", "family": "Doe", "given": ["Jane", "Quinn"], "suffix": ["Jr."]},
        {"use": "old", "family": "Müller"},
    ],
    "gender": "female",
    "birthDate": "1978-04-12",
    "deceasedDateTime": "2026-01-02",
}


def matches(definition_id: str, query: str) -> bool:
    clause = parse_query([tuple(query.split("=", 1))]).clauses[0]  # type: ignore[list-item]
    return clause_matches(definition(definition_id), clause, PATIENT)


def test_expressions_compile_to_paths() -> None:
    assert compile_expression("Patient.name.family") == (("name", "family"),)
    assert compile_expression("Organization.name | Organization.alias") == (("name",), ("alias",))
    assert compile_expression("(Condition.onset as dateTime)") == (("onsetDateTime",),)
    assert compile_expression("Observation.subject.where(resolve() is Patient)") == (("subject",),)
    assert extract(PATIENT, "Patient.deceased.as(dateTime)") == ["2026-01-02"]


@pytest.mark.parametrize(
    "query,expected",
    [
        ("name=doe", True),
        ("name=jan", True),
        ("name=quinn", True),
        ("name=jr", True),
        ("name=muller", True),  # accents are ignored
        ("name=oe", False),  # prefix, not substring
        ("name:contains=oe", True),
        ("name:exact=Doe", True),
        ("name:exact=doe", False),
        ("name=smith,doe", True),  # OR
        ("family=mül", True),
        ("given=jane", True),
        ("given=doe", False),
    ],
)
def test_string_search(query: str, expected: bool) -> None:
    code = query.split("=")[0].split(":")[0]
    assert matches(f"us-core-patient-{code}", query) is expected


@pytest.mark.parametrize(
    "query,expected",
    [
        ("identifier=DOJA01", True),
        ("identifier=urn:drchrono:chart|DOJA01", True),
        ("identifier=urn:other|DOJA01", False),
        ("identifier=|DOJA01", False),  # only identifiers without a system
        ("identifier=urn:drchrono:chart|", True),
        ("gender=female", True),
        ("gender=male,female", True),
        ("gender=male", False),
        ("gender:not=male", True),
    ],
)
def test_token_search(query: str, expected: bool) -> None:
    code = query.split("=")[0].split(":")[0]
    assert matches(f"us-core-patient-{code}", query) is expected


def test_date_search_on_birthdate_death_date_and_last_updated() -> None:
    assert matches("us-core-patient-birthdate", "birthdate=1978")
    assert matches("us-core-patient-birthdate", "birthdate=ge1978-04-12")
    assert not matches("us-core-patient-birthdate", "birthdate=gt1978-04-12")
    assert matches("us-core-patient-death-date", "death-date=2026-01")
    assert matches("Resource-lastUpdated", "_lastUpdated=gt2024-03-05T15:00:00Z")
    assert not matches("Resource-lastUpdated", "_lastUpdated=gt2024-03-05T15:41:09Z")


def test_a_malformed_date_is_a_client_error() -> None:
    with pytest.raises(InvalidParameterValue):
        matches("us-core-patient-birthdate", "birthdate=soon")


def test_escaped_commas_are_not_or_separators() -> None:
    query = parse_query([("name", r"a\,b,c")])
    assert query.clauses[0].values == ("a,b", "c")


def test_extension_selection_by_url() -> None:
    condition = {
        "resourceType": "Condition",
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate",
                "valueDateTime": "2020-01-01",
            },
            {"url": "http://example.org/other", "valueDateTime": "1999-01-01"},
        ],
    }
    expression = (
        "Condition.extension.where(url = "
        "'http://hl7.org/fhir/StructureDefinition/condition-assertedDate').valueDateTime"
    )
    assert extract(condition, expression) == ["2020-01-01"]
    race = (
        "Patient.extension.where(url = "
        "'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race').extension.value.code"
    )
    patient = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                "extension": [{"url": "ombCategory", "valueCoding": {"code": "2106-3"}}],
            }
        ]
    }
    assert extract(patient, race) == ["2106-3"]


@pytest.mark.parametrize(
    "query,expected",
    [
        ("name:contains=uinn", True),
        ("name:contains=xx,yy,ülle", True),
        ("name:contains=doejane", False),  # never across two parts of a name
        ("name:contains=doe%00jane", False),
        ("name:contains=e%00j", False),
    ],
)
def test_contains_matches_within_one_part(query: str, expected: bool) -> None:
    name, _, value = query.partition("=")
    clause = parse_query([(name, value.replace("%00", "\x00"))]).clauses[0]
    assert clause_matches(definition("us-core-patient-name"), clause, PATIENT) is expected
