"""Practitioner, Organization and Location: searches against the sandbox's own doctors,
practice and offices; the practice lists cost one cached vendor call each."""

from __future__ import annotations

import httpx
import pytest

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import all_pages


def ids_of(resources: list[dict]) -> list[str]:
    return sorted(r["id"] for r in resources)


async def test_practitioners_are_the_practice_doctors(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    found = await all_pages(fhir, "/fhir/Practitioner")
    assert ids_of(found) == sorted(str(d["id"]) for d in dataset.endpoint("doctors"))


async def test_practitioner_by_name_identifier_and_id(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    doctor = dataset.endpoint("doctors")[1]
    by_name = await all_pages(fhir, f"/fhir/Practitioner?name={doctor['last_name'][:3].lower()}")
    assert str(doctor["id"]) in ids_of(by_name)
    assert all(
        any(
            n.get("family", "").lower().startswith(doctor["last_name"][:3].lower())
            or any(
                g.lower().startswith(doctor["last_name"][:3].lower()) for g in n.get("given", [])
            )
            for n in r["name"]
        )
        for r in by_name
    )
    npi = doctor["npi_number"]
    for value in (npi, f"http://hl7.org/fhir/sid/us-npi|{npi}"):
        assert ids_of(await all_pages(fhir, f"/fhir/Practitioner?identifier={value}")) == [
            str(doctor["id"])
        ]
    assert ids_of(await all_pages(fhir, f"/fhir/Practitioner?_id={doctor['id']}")) == [
        str(doctor["id"])
    ]


async def test_organization_is_the_practice_group(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    found = await all_pages(fhir, "/fhir/Organization")
    assert ids_of(found) == [str(dataset.practice_group_id)]
    practice = found[0]
    assert practice["name"] == dataset.practice_group_name
    by_name = await all_pages(
        fhir, f"/fhir/Organization?name={dataset.practice_group_name.split()[0]}"
    )
    assert ids_of(by_name) == [str(dataset.practice_group_id)]
    assert await all_pages(fhir, "/fhir/Organization?name=zzzz-no-such") == []
    city = practice["address"][0]["city"]
    assert ids_of(await all_pages(fhir, f"/fhir/Organization?address={city}")) == [
        str(dataset.practice_group_id)
    ]


@pytest.mark.parametrize(
    "param,field",
    [
        ("name", "name"),
        ("address", "address"),
        ("address-city", "city"),
        ("address-state", "state"),
        ("address-postalcode", "zip_code"),
    ],
)
async def test_location_searches_match_the_offices(
    fhir: httpx.AsyncClient, dataset: SandboxDataset, param: str, field: str
) -> None:
    office = dataset.endpoint("offices")[0]
    value = str(office[field]).splitlines()[0][:4]
    found = await all_pages(fhir, f"/fhir/Location?{param}={value}")
    assert str(office["id"]) in ids_of(found)
    for other in dataset.endpoint("offices"):
        texts = (
            [str(other[field])]
            if field != "address"
            else [
                *str(other["address"]).splitlines(),
                other["city"],
                other["state"],
                other["zip_code"],
                "US",
            ]
        )
        matches = any(t.lower().startswith(value.lower()) for t in texts)
        assert (str(other["id"]) in ids_of(found)) == matches


async def test_practice_lists_are_fetched_once_and_cached(
    warm_fhir: httpx.AsyncClient, sandbox: SandboxState
) -> None:
    before = len(sandbox.api_requests())
    for _ in range(3):
        assert (await warm_fhir.get("/fhir/Practitioner")).status_code == 200
        assert (await warm_fhir.get("/fhir/Location")).status_code == 200
        assert (await warm_fhir.get("/fhir/Organization")).status_code == 200
    endpoints = [e.endpoint for e in sandbox.api_requests()[before:]]
    # doctors came with the practice context; offices once; nothing more.
    assert endpoints == ["offices"]


async def test_reads_return_the_resource_with_version_headers(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[0]
    response = await fhir.get(f"/fhir/Patient/{patient['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == str(patient["id"])
    etag = response.headers["ETag"]
    assert etag.startswith('W/"')
    assert response.headers["Last-Modified"].endswith("GMT")
    again = await fhir.get(f"/fhir/Patient/{patient['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    for kind, record in (
        ("Practitioner", dataset.endpoint("doctors")[0]),
        ("Location", dataset.endpoint("offices")[0]),
    ):
        read = await fhir.get(f"/fhir/{kind}/{record['id']}")
        assert read.status_code == 200 and read.json()["id"] == str(record["id"])
    org = await fhir.get(f"/fhir/Organization/{dataset.practice_group_id}")
    assert org.status_code == 200


async def test_inactive_and_deceased_patients_are_served(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    deceased = [p for p in dataset.endpoint("patients") if p.get("patient_status") == "D"]
    assert deceased
    resource = (await fhir.get(f"/fhir/Patient/{deceased[0]['id']}")).json()
    assert resource["active"] is False
    assert resource.get("deceasedDateTime") == deceased[0]["date_of_death"]
    everyone = await all_pages(fhir, "/fhir/Patient")
    assert str(deceased[0]["id"]) in ids_of(everyone)


async def test_repeated_reads_reuse_the_fetched_record(
    warm_fhir: httpx.AsyncClient, sandbox: SandboxState, dataset: SandboxDataset
) -> None:
    patient_id = dataset.endpoint("patients")[3]["id"]
    before = len(sandbox.api_requests("patients"))
    first = await warm_fhir.get(f"/fhir/Patient/{patient_id}")
    again = await warm_fhir.get(f"/fhir/Patient/{patient_id}")
    by_id = await warm_fhir.get(f"/fhir/Patient?_id={patient_id}")
    assert first.headers["x-upstream-calls"] == "1"
    assert again.headers["x-upstream-calls"] == "0"
    assert by_id.headers["x-upstream-calls"] == "0"
    assert again.json() == first.json()
    assert len(sandbox.api_requests("patients")) - before == 1
