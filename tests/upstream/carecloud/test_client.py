"""The CareCloud client against a stateful fake CareCloud: root-keyed bodies, Link-header
paging, unpaged encounters, records by GUID, retries, the call budget, 429s and the refusal
to carry the session token to another origin.

The client reaches the fake through httpx.ASGITransport and waits on a FakeClock; what reached
the vendor is read from the fake's request log.
"""

from __future__ import annotations

import pytest

from facade.errors import (
    UpstreamError,
    UpstreamThrottled,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from facade.upstream.budget import metered
from facade.upstream.carecloud.client import ClientPolicy
from facade.upstream.carecloud.practice_context import load_practice_context
from tests.upstream.carecloud.client_harness import Connect, connect_fixture  # noqa: F401
from tests.upstream.carecloud.fake_carecloud import BASE_URL, BUSINESS_ENTITY_ID

# -- lists and records ---------------------------------------------------------------------


async def test_list_all_follows_the_link_header_to_the_last_page(connect: Connect) -> None:
    c = await connect()
    with metered() as meter:
        patients = await c.client.list_all("patients", {}, reason="test")
    assert [p["id"] for p in patients] == [p["id"] for p in c.fake.patients]
    # 7 patients, 3 a page: pages 1, 2 and 3, and not one call more.
    assert [s.path for s in c.fake.api()] == ["/patients"] * 3
    assert meter.count == 3
    assert {call.endpoint for call in meter.calls} == {"patients"}


async def test_a_page_names_its_next_page_with_the_filters_kept(connect: Connect) -> None:
    c = await connect()
    first = await c.client.fetch_page(
        c.client.list_url("patients", {"last_name": "doe"}), reason="test"
    )
    assert len(first.results) == 3
    assert first.next_url == f"{BASE_URL}/patients?last_name=doe&page=2"
    last = await c.client.fetch_page(f"{BASE_URL}/patients?last_name=doe&page=3", reason="test")
    assert len(last.results) == 1
    assert last.next_url is None


async def test_a_filter_that_matches_nothing_is_one_empty_page(connect: Connect) -> None:
    c = await connect()
    assert await c.client.list_all("patients", {"last_name": "zz"}, reason="test") == []
    assert len(c.fake.api()) == 1


async def test_encounters_are_one_unpaged_list_for_a_patient(connect: Connect) -> None:
    c = await connect()
    patient = c.fake.patients[4]["id"]
    encounters = await c.client.list_all("encounters", {"patient_id": patient}, reason="test")
    assert len(encounters) == 2
    assert {e["patient_id"] for e in encounters} == {patient}
    assert len(c.fake.api()) == 1


async def test_a_long_appointment_range_is_asked_in_93_day_windows(connect: Connect) -> None:
    c = await connect()
    appointments = await c.client.list_all(
        "appointments", {"start_date": "2026-01-01", "end_date": "2026-07-19"}, reason="test"
    )
    assert len(appointments) == 200  # one a day, every day of the range, none twice
    assert len({a["id"] for a in appointments}) == 200
    assert [s.status for s in c.fake.api()] == [200, 200, 200]  # 93 + 93 + 14 days


async def test_a_range_within_93_days_is_one_request(connect: Connect) -> None:
    c = await connect()
    appointments = await c.client.list_all(
        "appointments", {"start_date": "2026-01-01", "end_date": "2026-04-03"}, reason="test"
    )
    assert len(appointments) == 93
    assert len(c.fake.api()) == 1


async def test_a_vendor_400_is_an_upstream_error_without_the_vendor_text(
    connect: Connect,
) -> None:
    c = await connect()
    with pytest.raises(UpstreamError) as raised:
        await c.client.list_all("encounters", {}, reason="test")
    assert "HTTP 400" in raised.value.message
    assert "patient_id" not in raised.value.message


async def test_get_record_unwraps_the_singular_root_key(connect: Connect) -> None:
    c = await connect()
    wanted = c.fake.patients[2]
    assert await c.client.get_record("patients", wanted["id"], reason="test") == wanted


async def test_an_unknown_id_is_none_and_an_odd_one_cannot_leave_its_path(
    connect: Connect,
) -> None:
    c = await connect()
    assert await c.client.get_record("patients", "no-such-patient", reason="test") is None
    assert await c.client.get_record("patients", "../authorization", reason="test") is None
    assert "/authorization" not in [s.path for s in c.fake.api()]


async def test_record_ids_are_metered_as_a_template_not_as_ids(connect: Connect) -> None:
    c = await connect()
    with metered() as meter:
        await c.client.get_record("patients", c.fake.patients[0]["id"], reason="test")
    assert [call.endpoint for call in meter.calls] == ["patients/{id}"]


async def test_get_document_returns_the_ccda_bytes_or_none(connect: Connect) -> None:
    c = await connect()
    pid = c.fake.patients[0]["id"]
    assert await c.client.get_document(f"/patients/{pid}/ccda", reason="test") == (
        b"<ClinicalDocument/>"
    )
    missing = "00000000-0000-4000-8000-000000000000"
    assert await c.client.get_document(f"/patients/{missing}/ccda", reason="test") is None


async def test_cached_pages_are_not_fetched_again(connect: Connect) -> None:
    c = await connect()
    url = c.client.list_url("patients", {})
    await c.client.fetch_page(url, reason="test", cache_ttl=60)
    await c.client.fetch_page(url, reason="test", cache_ttl=60)
    assert len(c.fake.api()) == 1
    c.clock.advance(61)
    await c.client.fetch_page(url, reason="test", cache_ttl=60)
    assert len(c.fake.api()) == 2


# -- other origins ----------------------------------------------------------------------------


async def test_fetch_file_fetches_under_the_base_url(connect: Connect) -> None:
    c = await connect()
    assert await c.client.fetch_file("/files/note.pdf") == ("application/pdf", b"%PDF-1.4 fake")


@pytest.mark.parametrize(
    "url",
    [
        "http://elsewhere.example/files/note.pdf",
        "https://carecloud.sandbox/files/note.pdf",
        "//elsewhere.example/files/note.pdf",
    ],
)
async def test_fetch_file_refuses_another_origin_without_asking_it(
    connect: Connect, url: str
) -> None:
    c = await connect()
    with pytest.raises(UpstreamUnavailable, match="another host"):
        await c.client.fetch_file(url)
    assert c.fake.api() == []


async def test_a_next_link_to_another_host_is_refused(connect: Connect) -> None:
    c = await connect()
    with pytest.raises(UpstreamUnavailable, match="another host"):
        await c.client.fetch_page("http://elsewhere.example/patients?page=2", reason="test")
    assert c.fake.api() == []


# -- failures, retries and the budget ---------------------------------------------------------


async def test_a_5xx_is_retried_with_backoff_then_succeeds(connect: Connect) -> None:
    c = await connect()
    c.fake.faults = {1: "500", 2: "500"}
    await c.call()
    assert [s.status for s in c.fake.api()] == [500, 500, 200]
    assert len(c.clock.slept) == 2  # one backoff before each retry


async def test_5xx_beyond_the_retries_is_upstream_unavailable(connect: Connect) -> None:
    c = await connect(policy=ClientPolicy(timeout_seconds=0.05, retries=2))
    c.fake.faults = {1: "500", 2: "500", 3: "500"}
    with pytest.raises(UpstreamUnavailable):
        await c.call()
    assert len(c.fake.api()) == 3


async def test_a_timeout_is_retried(connect: Connect) -> None:
    c = await connect()
    c.fake.faults = {1: "timeout"}
    await c.call()
    assert [s.status for s in c.fake.api()][-1] == 200


async def test_timeouts_beyond_the_retries_are_upstream_timeout(connect: Connect) -> None:
    c = await connect(policy=ClientPolicy(timeout_seconds=0.05, retries=1))
    c.fake.faults = {1: "timeout", 2: "timeout"}
    with pytest.raises(UpstreamTimeout):
        await c.call()


async def test_a_429_retry_after_is_waited_through_the_budget(connect: Connect) -> None:
    c = await connect()
    c.fake.faults = {1: "429"}
    c.fake.retry_after = "7"
    await c.call()
    assert [s.status for s in c.fake.api()] == [429, 200]
    assert c.clock.slept == [7.0]  # the budget slept what CareCloud named, no more
    assert c.client.budget.wait_needed() == 0


async def test_a_429_longer_than_the_caller_waits_is_upstream_throttled(
    connect: Connect,
) -> None:
    c = await connect()
    c.fake.faults = {1: "429"}
    c.fake.retry_after = "600"
    with pytest.raises(UpstreamThrottled) as raised:
        await c.call()
    assert raised.value.headers["Retry-After"] == "600"
    assert "asked facade to wait" in raised.value.message
    # The budget holds every caller back until then: nothing more goes out meanwhile.
    with pytest.raises(UpstreamThrottled):
        await c.call()
    assert len(c.fake.api()) == 1


async def test_the_hourly_budget_is_taken_per_call(connect: Connect) -> None:
    c = await connect(hourly_limit=2)
    await c.call()
    await c.client.list_all("patients", {"last_name": "zz"}, reason="test")
    with pytest.raises(UpstreamThrottled, match="hourly budget"):
        await c.call()
    assert len(c.fake.api()) == 2


# -- the practice context ------------------------------------------------------------------


async def test_practice_context_comes_from_authorization(connect: Connect) -> None:
    c = await connect()
    context = await load_practice_context(c.client, 3600)
    assert context.practice_group_id == BUSINESS_ENTITY_ID
    assert context.practice_name == "Riverbend Family Medicine"
    assert str(context.timezone) == "America/New_York"
    await load_practice_context(c.client, 3600)
    assert [s.path for s in c.fake.api()] == ["/authorization"]  # kept for its TTL
