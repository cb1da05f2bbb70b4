"""Patient searches return exactly the sandbox's matching patients (US Core SHALL searches,
comparators, OR lists, GET = POST), and push down what DrChrono can filter."""

from __future__ import annotations

import unicodedata
from datetime import date

import httpx
import pytest

from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import SandboxState
from tests.conftest import FHIR_BASE, all_pages


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def custom_values(dataset: SandboxDataset, patient: dict, template: str) -> list[str]:
    ids = {
        str(d["id"])
        for d in dataset.endpoint("custom_demographics")
        if d.get("template_name") == template
    }
    return [
        str(e["value"])
        for e in patient.get("custom_demographics") or []
        if str(e.get("field_type")) in ids and e.get("value")
    ]


def name_parts(dataset: SandboxDataset, patient: dict) -> list[str]:
    parts = [patient.get(k) or "" for k in ("first_name", "middle_name", "last_name", "nick_name")]
    parts += custom_values(dataset, patient, "previous_last_name")
    parts += custom_values(dataset, patient, "name_suffix")
    return [p for p in parts if p]


def ids_of(resources: list[dict]) -> list[str]:
    return sorted(r["id"] for r in resources)


def expected(dataset: SandboxDataset, keep) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(str(p["id"]) for p in dataset.endpoint("patients") if keep(p))


async def test_search_without_parameters_returns_every_patient(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    found = await all_pages(fhir, "/fhir/Patient?_count=5")
    assert ids_of(found) == expected(dataset, lambda p: True)
    assert all(r["resourceType"] == "Patient" for r in found)


@pytest.mark.parametrize("prefix_length", [1, 2, 3])
async def test_name_matches_any_name_part_by_prefix(
    fhir: httpx.AsyncClient, dataset: SandboxDataset, prefix_length: int
) -> None:
    target = dataset.endpoint("patients")[3]
    for part in name_parts(dataset, target):
        prefix = part[:prefix_length]
        found = await all_pages(fhir, f"/fhir/Patient?name={prefix}")
        want = expected(
            dataset,
            lambda p, prefix=prefix: any(
                fold(x).startswith(fold(prefix)) for x in name_parts(dataset, p)
            ),
        )
        assert ids_of(found) == want, prefix


async def test_previous_last_name_is_searchable_as_family(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    with_previous = [
        p for p in dataset.endpoint("patients") if custom_values(dataset, p, "previous_last_name")
    ]
    assert with_previous, "the sandbox has a patient with a previous name"
    patient = with_previous[0]
    previous = custom_values(dataset, patient, "previous_last_name")[0]
    found = await all_pages(fhir, f"/fhir/Patient?family={previous}")
    assert str(patient["id"]) in ids_of(found)
    resource = next(r for r in found if r["id"] == str(patient["id"]))
    assert {"use": "old", "family": previous}.items() <= next(
        n for n in resource["name"] if n["use"] == "old"
    ).items()


@pytest.mark.parametrize(
    "prefix,keep",
    [
        ("", lambda born, ref: born == ref),
        ("eq", lambda born, ref: born == ref),
        ("ge", lambda born, ref: born >= ref),
        ("le", lambda born, ref: born <= ref),
        ("gt", lambda born, ref: born > ref),
        ("lt", lambda born, ref: born < ref),
        ("ne", lambda born, ref: born != ref),
    ],
)
async def test_birthdate_comparators_on_a_full_date(
    fhir: httpx.AsyncClient,
    dataset: SandboxDataset,
    prefix: str,
    keep,  # type: ignore[no-untyped-def]
) -> None:
    reference = dataset.endpoint("patients")[5]["date_of_birth"]
    found = await all_pages(fhir, f"/fhir/Patient?birthdate={prefix}{reference}")
    want = expected(
        dataset,
        lambda p: bool(p.get("date_of_birth")) and keep(p["date_of_birth"], reference),
    )
    assert ids_of(found) == want


async def test_birthdate_on_a_partial_date_covers_the_whole_year_and_month(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    born = dataset.endpoint("patients")[2]["date_of_birth"]
    for partial in (born[:4], born[:7]):
        found = await all_pages(fhir, f"/fhir/Patient?birthdate={partial}")
        want = expected(
            dataset, lambda p, partial=partial: (p.get("date_of_birth") or "").startswith(partial)
        )
        assert ids_of(found) == want
        found_ge = await all_pages(fhir, f"/fhir/Patient?birthdate=ge{partial}")
        assert ids_of(found_ge) == expected(
            dataset,
            lambda p, partial=partial: (p.get("date_of_birth") or "")[: len(partial)] >= partial,
        )


async def test_birthdate_eq_is_pushed_down_and_costs_one_call(
    warm_fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    fhir = warm_fhir
    born = dataset.endpoint("patients")[0]["date_of_birth"]
    before = len(sandbox.api_requests("patients"))
    response = await fhir.get(
        f"/fhir/Patient?birthdate={born}&name={dataset.endpoint('patients')[0]['last_name']}"
    )
    assert response.status_code == 200
    calls = sandbox.api_requests("patients")[before:]
    assert len(calls) == 1
    assert calls[0].query["date_of_birth"] == born
    assert response.headers["x-upstream-calls"] == "1"


@pytest.mark.parametrize("gender,vendor", [("male", "Male"), ("female", "Female")])
async def test_gender_is_pushed_down(
    fhir: httpx.AsyncClient,
    dataset: SandboxDataset,
    sandbox: SandboxState,
    gender: str,
    vendor: str,
) -> None:
    found = await all_pages(fhir, f"/fhir/Patient?gender={gender}")
    assert ids_of(found) == expected(dataset, lambda p: p.get("gender") == vendor)
    assert sandbox.api_requests("patients")[-1].query["gender"] == vendor


async def test_gender_or_list_is_filtered_locally(
    fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    found = await all_pages(fhir, "/fhir/Patient?gender=male,female")
    assert ids_of(found) == expected(dataset, lambda p: p.get("gender") in ("Male", "Female"))
    assert "gender" not in sandbox.api_requests("patients")[-1].query


async def test_gender_and_name_combination(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[4]
    gender = {"Male": "male", "Female": "female", "Other": "other"}[patient["gender"]]
    found = await all_pages(fhir, f"/fhir/Patient?gender={gender}&name={patient['last_name']}")
    assert str(patient["id"]) in ids_of(found)
    assert all(r["gender"] == gender for r in found)


async def test_id_search_reads_the_patient_directly(
    fhir: httpx.AsyncClient, dataset: SandboxDataset, sandbox: SandboxState
) -> None:
    first, second = (str(p["id"]) for p in dataset.endpoint("patients")[:2])
    found = await all_pages(fhir, f"/fhir/Patient?_id={first},{second}")
    assert ids_of(found) == sorted([first, second])
    paths = [e.path for e in sandbox.api_requests("patients")]
    assert f"/api/patients/{first}" in paths and f"/api/patients/{second}" in paths


async def test_identifier_by_chart_id_with_and_without_system(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patient = dataset.endpoint("patients")[6]
    for value in (patient["chart_id"], f"urn:drchrono:chart|{patient['chart_id']}"):
        found = await all_pages(fhir, f"/fhir/Patient?identifier={value}")
        assert ids_of(found) == [str(patient["id"])]
    found = await all_pages(fhir, f"/fhir/Patient?identifier=urn:drchrono:patient|{patient['id']}")
    assert ids_of(found) == [str(patient["id"])]
    wrong_system = await all_pages(
        fhir, f"/fhir/Patient?identifier=urn:other|{patient['chart_id']}"
    )
    assert wrong_system == []


async def test_post_search_equals_get(fhir: httpx.AsyncClient, dataset: SandboxDataset) -> None:
    patient = dataset.endpoint("patients")[1]
    params = {"name": patient["last_name"][:3], "birthdate": f"le{date.today().isoformat()}"}
    got = await fhir.get("/fhir/Patient", params=params)
    posted = await fhir.post("/fhir/Patient/_search", data=params)
    assert posted.status_code == 200
    assert ids_of([e["resource"] for e in got.json()["entry"]]) == ids_of(
        [e["resource"] for e in posted.json()["entry"]]
    )
    assert posted.json()["link"][0]["url"] == got.json()["link"][0]["url"]


async def test_self_link_shows_only_applied_parameters(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get(
        "/fhir/Patient?gender=female&unknown=1&_count=7",
        headers={"Prefer": "handling=lenient"},
    )
    assert response.status_code == 200
    assert response.json()["link"][0] == {
        "relation": "self",
        "url": f"{FHIR_BASE}/Patient?gender=female&_count=7",
    }
