"""CareCloud's value conventions read as FHIR: GUIDs inside compartment ids, instants that
keep CareCloud's offsets, dates."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from facade.core.compartment import split_fhir_id
from mappings.carecloud.fields import (
    chart_id,
    compact_guid,
    encounter_diagnosis_id,
    expand_guid,
    fhir_date,
    guid_id,
    instant,
)

GUID = "75d0dd66-cf72-4858-a4b6-6f8c462804db"
NEW_YORK = ZoneInfo("America/New_York")


def test_a_guid_in_a_compartment_id_survives_the_split_at_the_first_dash() -> None:
    resource_id = chart_id("coverage", GUID, 5501)
    assert resource_id == f"coverage-{compact_guid(GUID)}-5501"
    assert len(compact_guid(GUID)) == 26
    located = split_fhir_id(resource_id)
    assert located is not None
    assert located[0] == "coverage"
    assert expand_guid(located[1]) == GUID


def test_encounter_diagnosis_ids_name_the_encounter_and_the_rank() -> None:
    assert encounter_diagnosis_id(GUID, 2) == f"encdx-{compact_guid(GUID)}-2"


def test_every_compartment_id_and_its_provenance_id_fit_a_fhir_id() -> None:
    # Provenance ids are `<type>-<target id>`: the longest type name (18 characters), a
    # source name of 10 and a 7-digit row id still fit; 32 hex digits would not.
    longest = chart_id("medication", "ffffffff-ffff-4fff-bfff-ffffffffffff", 9999999)
    assert len("AllergyIntolerance-" + longest) <= 64


def test_integer_vendor_ids_stay_as_they_are() -> None:
    assert chart_id("vitals", 880101, "bp") == "vitals-880101-bp"


@pytest.mark.parametrize(
    "value", ["", "not-a-guid", "75d0dd66cf724858a4b66f8c462804db", "a" * 25, "1" * 26]
)
def test_what_is_not_a_guid_expands_to_nothing(value: str) -> None:
    assert expand_guid(value) is None
    assert guid_id(value) is None


def test_compact_guid_refuses_other_text() -> None:
    with pytest.raises(ValueError):
        compact_guid("3101")


def test_guid_ids_are_lower_case_and_dashed() -> None:
    assert guid_id(GUID.upper()) == GUID
    assert expand_guid(compact_guid(GUID.upper())) == GUID


def test_instants_keep_carecloud_offsets_and_read_naive_times_in_the_practice_zone() -> None:
    assert instant("2026-03-04T09:30:00-05:00", NEW_YORK) == "2026-03-04T09:30:00-05:00"
    assert instant("2026-07-04T09:30:00", NEW_YORK) == "2026-07-04T09:30:00-04:00"
    assert instant("yesterday", NEW_YORK) is None
    assert instant(None, NEW_YORK) is None


def test_dates_are_the_date_part() -> None:
    assert fhir_date("1984-07-19") == "1984-07-19"
    assert fhir_date("2026-03-04T09:30:00-05:00") == "2026-03-04"
    assert fhir_date("07/19/1984") is None
