"""The /api surface: bearer tokens, list and detail, paging, verbose fields, the request log."""

from __future__ import annotations

import pytest

from facade.upstream.drchrono.sandbox.dataset import ENDPOINTS, SandboxDataset
from tests.upstream.sandbox.app_harness import (
    BASE_URL,
    ids,
    make_state,
    patient_record,
    sandbox_client,
    tiny_dataset,
)


def _many_patients(count: int) -> SandboxDataset:
    dataset = tiny_dataset()
    # Inserted out of order: listing must still be by id.
    dataset.records["patients"] = [
        patient_record(1000 + n, f"P{n}", "Many") for n in reversed(range(count))
    ]
    return dataset


async def test_api_without_a_token_is_401_with_drf_body() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        response = await client.get("/api/patients")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


async def test_api_with_an_unknown_token_is_invalid_token() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        response = await client.get("/api/patients", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


async def test_access_token_expires_after_48_hours() -> None:
    state, clock = make_state()
    async with sandbox_client(state) as client:
        clock.advance(172_799)
        still = await client.get("/api/doctors")
        clock.advance(1)
        expired = await client.get("/api/doctors")
    assert still.status_code == 200
    assert expired.status_code == 401


@pytest.mark.parametrize("name", ENDPOINTS)
async def test_every_endpoint_lists_and_reads_by_id(name: str) -> None:
    state, _ = make_state()
    params = (
        {"date_range": "2024-01-01/2024-06-30"}
        if name in ("appointments", "clinical_notes")
        else {}
    )
    async with sandbox_client(state) as client:
        listing = await client.get(f"/api/{name}", params=params)
        body = listing.json()
        first = body["results"][0]
        detail = await client.get(f"/api/{name}/{first['id']}")
        missing = await client.get(f"/api/{name}/987654321")
    assert listing.status_code == 200
    assert set(body) == {"previous", "next", "results"}
    assert detail.status_code == 200 and detail.json()["id"] == first["id"]
    assert missing.status_code == 404 and missing.json() == {"detail": "Not found."}


async def test_paths_have_no_trailing_slash() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        response = await client.get("/api/patients/")
    assert response.status_code == 404


async def test_paging_follows_absolute_next_urls_in_id_order() -> None:
    state, _ = make_state(_many_patients(23))
    seen: list[object] = []
    async with sandbox_client(state) as client:
        url: str | None = "/api/patients?page_size=10&gender=Female"
        pages = []
        while url:
            body = (await client.get(url)).json()
            pages.append(body)
            seen += ids(body)
            url = body["next"]
    assert seen == [1000 + n for n in range(23)]
    assert [len(page["results"]) for page in pages] == [10, 10, 3]
    assert pages[0]["previous"] is None
    next_url = pages[0]["next"]
    assert next_url.startswith(f"{BASE_URL}/api/patients?")
    assert "page_size=10" in next_url and "gender=Female" in next_url and "cursor=" in next_url


async def test_previous_link_returns_the_earlier_page() -> None:
    state, _ = make_state(_many_patients(23))
    async with sandbox_client(state) as client:
        first = (await client.get("/api/patients?page_size=10")).json()
        second = (await client.get(first["next"])).json()
        back = (await client.get(second["previous"])).json()
    assert ids(back) == ids(first)
    assert back["next"] is not None


async def test_pages_are_stable_when_records_are_added_behind_the_cursor() -> None:
    dataset = _many_patients(20)
    state, _ = make_state(dataset)
    async with sandbox_client(state) as client:
        first = (await client.get("/api/patients?page_size=10")).json()
        dataset.records["patients"].insert(0, patient_record(999, "Early", "Bird"))
        second = (await client.get(first["next"])).json()
    assert ids(second) == [1000 + n for n in range(10, 20)]


async def test_a_record_added_ahead_of_the_cursor_appears_on_a_later_page() -> None:
    dataset = _many_patients(20)
    state, _ = make_state(dataset)
    async with sandbox_client(state) as client:
        first = (await client.get("/api/patients?page_size=10")).json()
        dataset.records["patients"].append(patient_record(5000, "Late", "Comer"))
        second = (await client.get(first["next"])).json()
        third = (await client.get(second["next"])).json()
    assert ids(second) == [1000 + n for n in range(10, 20)]
    assert ids(third) == [5000] and third["next"] is None


async def test_tampered_cursor_is_invalid() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        response = await client.get("/api/patients?cursor=bm90LWEtY3Vyc29y")
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", 250),
        ("page_size=1000", 250),
        ("page_size=7", 7),
        ("page_size=abc", 250),
        ("verbose=true", 50),
        ("verbose=true&page_size=200", 50),
        ("verbose=true&page_size=20", 20),
    ],
)
async def test_page_size_defaults_and_silent_clamps(query: str, expected: int) -> None:
    state, _ = make_state(_many_patients(300))
    async with sandbox_client(state) as client:
        body = (await client.get(f"/api/patients?{query}")).json()
    assert len(body["results"]) == expected


@pytest.mark.parametrize(
    ("query", "expected"), [("", 5), ("page_size=50", 20), ("verbose=true&page_size=50", 20)]
)
async def test_clinical_notes_pages_are_small(query: str, expected: int) -> None:
    dataset = tiny_dataset()
    dataset.records["clinical_notes"] = [
        {
            "id": n,
            "appointment": "500",
            "patient": 100,
            "archived": False,
            "updated_at": "2024-01-01",
        }
        for n in range(30)
    ]
    state, _ = make_state(dataset)
    async with sandbox_client(state) as client:
        body = (await client.get(f"/api/clinical_notes?since=2020-01-01&{query}")).json()
    assert len(body["results"]) == expected


@pytest.mark.parametrize(
    ("name", "record_id", "fields"),
    [
        ("patients", 100, {"primary_insurance", "custom_demographics", "referring_doctor"}),
        ("appointments", "500", {"vitals", "clinical_note", "status_transitions", "custom_fields"}),
        ("allergies", 50, {"description"}),
        ("offices", 20, {"online_timeslots"}),
    ],
)
async def test_verbose_only_fields_appear_only_with_verbose_true(
    name: str, record_id: object, fields: set[str]
) -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        plain = (await client.get(f"/api/{name}/{record_id}")).json()
        verbose = (await client.get(f"/api/{name}/{record_id}?verbose=true")).json()
        listed = (await client.get(f"/api/{name}?verbose=true&date=2024-03-05")).json()
    assert not fields & set(plain)
    assert fields <= set(verbose)
    assert fields <= set(next(r for r in listed["results"] if r["id"] == record_id))


async def test_clinical_note_values_need_verbose() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        plain = (await client.get("/api/clinical_notes/800")).json()
        verbose = (await client.get("/api/clinical_notes/800?verbose=true")).json()
    assert plain["clinical_note_sections"] == [{"name": "HPI"}]
    assert verbose["clinical_note_sections"][0]["values"][0]["value"] == "Headache"


async def test_users_current_redirects_to_the_authorizing_user() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        redirect = await client.get("/api/users/current")
        user = await client.get(redirect.headers["location"])
    assert redirect.status_code == 302
    assert redirect.headers["location"] == f"{BASE_URL}/api/users/900"
    assert user.json()["username"] == "ada"


async def test_request_log_records_what_was_pushed_down() -> None:
    state, _ = make_state()
    async with sandbox_client(state) as client:
        await client.get("/api/patients?last_name=doe&verbose=true&page_size=5")
        await client.get("/api/patients/100")
    first, second = state.api_requests("patients")
    assert first.method == "GET" and first.path == "/api/patients"
    assert first.query == {"last_name": "doe", "verbose": "true", "page_size": "5"}
    assert first.status == 200 and first.verbose and first.counted
    assert first.client_id == "facade-sandbox"
    assert second.path == "/api/patients/100" and not second.verbose


async def test_unauthenticated_calls_are_logged_but_not_counted() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        await client.get("/api/patients")
    (entry,) = state.api_requests()
    assert entry.status == 401 and not entry.counted


async def test_non_api_requests_are_logged_with_their_own_endpoint_names() -> None:
    state, _ = make_state()
    async with sandbox_client(state, authorized=False) as client:
        await client.post("/o/token/", data={"grant_type": "password"})
    assert [(e.endpoint, e.status, e.counted) for e in state.request_log] == [
        ("oauth.token", 400, False)
    ]
    assert state.api_requests() == []
