"""Provenance.recorded is when the source record changed, never the time of the request: the
same Provenance reads the same on every read and in every export."""

from __future__ import annotations

from facade.clock import FakeClock
from tests.bulk.conftest import download, export

DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


async def test_the_same_provenance_reads_the_same_an_hour_later(fhir, runtime, clock: FakeClock):
    patient = runtime.sandbox.dataset.endpoint("patients")[0]["id"]
    firsts: dict[str, dict] = {}
    for resource_type in ("Immunization", "AllergyIntolerance", "Patient"):
        search = f"/fhir/{resource_type}?_revinclude=Provenance:target&" + (
            f"_id={patient}" if resource_type == "Patient" else f"patient={patient}"
        )
        bundle = (await fhir.get(search)).json()
        provenance = next(
            e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"
        )
        firsts[provenance["id"]] = provenance
    clock.advance(3600)
    for provenance_id, first in firsts.items():
        again = (await fhir.get(f"/fhir/Provenance/{provenance_id}")).json()
        assert again == first
    recorded = {p["id"].split("-")[0]: p for p in firsts.values()}
    # A source with a change time: the target's meta.lastUpdated.
    immunization = recorded["Immunization"]["target"][0]["reference"]
    target = (await fhir.get(f"/fhir/{immunization}")).json()
    assert recorded["Immunization"]["recorded"] == target["meta"]["lastUpdated"]
    # DrChrono records no change time for allergies: said so, not invented.
    allergy = recorded["AllergyIntolerance"]
    assert "recorded" not in allergy
    assert allergy["_recorded"]["extension"][0] == {"url": DATA_ABSENT, "valueCode": "unsupported"}


async def test_two_exports_carry_identical_provenance(fhir, clock: FakeClock, exports):
    params = {"_type": "Patient,AllergyIntolerance,Immunization,Provenance"}
    first = await download(fhir, await export(fhir, exports, "$export", params=params))
    clock.advance(2 * 3600)
    second = await download(fhir, await export(fhir, exports, "$export", params=params))
    by_id = {p["id"]: p for p in first["Provenance"]}
    assert by_id and {p["id"]: p for p in second["Provenance"]} == by_id
