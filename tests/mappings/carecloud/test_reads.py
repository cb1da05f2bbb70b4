"""Reads by FHIR id reach the right CareCloud record: a compartment id carries a GUID as a
26-character base32 key, and the read asks CareCloud for the GUID as CareCloud writes it,
in one call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from facade.core.compartment import CompartmentMapping, FetchContext, split_fhir_id
from facade.core.mapping import MappingContext
from mappings.carecloud import REGISTRY
from mappings.carecloud.payer import read_payer
from tests.mappings.carecloud.fake_client import RecordingClient

GOLDEN = Path(__file__).parent / "golden"
CTX = MappingContext(
    practice_group_id="87751d4c-a850-4e2c-84dc-da6a797d76de",
    practice_name="Harborview Family Practice",
    timezone=ZoneInfo("America/New_York"),
)
FETCH = FetchContext(ctx=CTX, cache_ttl=0.0, reason="test read")


def golden(kind: str, name: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((GOLDEN / kind / f"{name}.json").read_text()))


async def read_chart(resource_type: str, resource_id: str, client: RecordingClient) -> Any:
    mapping = REGISTRY.get(resource_type)
    assert isinstance(mapping, CompartmentMapping)
    located = split_fhir_id(resource_id)
    assert located is not None
    source = mapping.source(located[0])
    assert source is not None and source.read is not None
    records = await source.read(client, located[1], FETCH)  # type: ignore[arg-type]
    return [
        r for record in records for r in source.resources(record, CTX) if r["id"] == resource_id
    ]


async def test_encounter_read_asks_for_the_dashed_guid_once() -> None:
    case = golden("encounter", "signed-office-visit")
    record = case["input"]
    client = RecordingClient({"encounters": {record["id"]: record}})
    found = await read_chart("Encounter", case["expected"][0]["id"], client)
    assert found == case["expected"]
    assert client.calls == [("encounters", record["id"])]


async def test_coverage_and_related_person_reads_use_the_patient_record() -> None:
    case = golden("coverage", "self-and-spouse-subscriber")
    patient = case["input"]
    client = RecordingClient({"patients": {patient["id"]: patient}})
    second = case["expected"][1]
    assert await read_chart("Coverage", second["id"], client) == [second]
    people = golden("relatedperson", "spouse-v3-code")["expected"]
    assert await read_chart("RelatedPerson", people[0]["id"], client) == people
    assert client.calls == [("patients", patient["id"])] * 2


async def test_payer_organization_is_read_back_from_the_patient_record() -> None:
    case = golden("organization", "payers-of-a-patient")
    patient = case["input"]
    client = RecordingClient({"patients": {patient["id"]: patient}})
    for expected in case["expected"]:
        assert await read_payer(client, expected["id"], FETCH) == expected  # type: ignore[arg-type]
    assert await read_payer(client, "payer-" + "a" * 26 + "-1", FETCH) is None  # type: ignore[arg-type]
    assert await read_payer(client, CTX.practice_group_id, FETCH) is None  # type: ignore[arg-type]
    assert client.calls == [("patients", patient["id"])] * 2 + [
        ("patients", "00000000-0000-0000-0000-000000000000")
    ]
