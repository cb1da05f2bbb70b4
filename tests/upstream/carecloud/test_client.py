"""The CareCloud client against the CareCloud sandbox: root-keyed bodies, Link-header paging
to the last page, unpaged encounters, records by GUID, 93-day appointment windows, retries,
the call budget, 429s and the refusal to carry the session token to another origin.

The client reaches the sandbox through an ASGI transport and waits on a FakeClock; what
reached the vendor is read from the sandbox's request log.
"""

from __future__ import annotations

from datetime import datetime

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
from facade.upstream.carecloud.sandbox.state import Fault
from tests.upstream.carecloud.client_harness import (  # noqa: F401  (fixtures)
    BASE_URL,
    PATIENTS,
    Connect,
    connect_fixture,
    practice_fixture,
)

UNKNOWN_GUID = "00000000-0000-4000-8000-000000000000"

# -- lists and records ---------------------------------------------------------------------


async def test_list_all_follows_the_link_header_to_the_last_page(connect: Connect) -> None:
    c = await connect()
    with metered() as meter:
        patients = await c.client.list_all("patients", {}, reason="test")
    assert [p["id"] for p in patients] == [p["id"] for p in c.patients]
    assert len(patients) == PATIENTS
    # 120 patients, 50 a page: pages 1, 2 and 3, and not one call more.
    assert [e.params.get("page", "1") for e in c.state.api_requests("patients")] == [
        "1",
        "2",
        "3",
    ]
    assert meter.count == 3
    assert {call.endpoint for call in meter.calls} == {"patients"}


async def test_a_page_names_its_next_page_with_the_filters_kept(connect: Connect) -> None:
    c = await connect()
    first = await c.client.fetch_page(c.client.list_url("patients", {"status": "A"}), reason="t")
    assert first.next_url is not None
    assert first.next_url.startswith(f"{BASE_URL}/patients?")
    assert "status=A" in first.next_url and "page=2" in first.next_url
    pages = await c.client.list_all("patients", {"status": "A"}, reason="test")
    assert all(entry.params.get("status") == "A" for entry in c.state.api_requests("patients"))
    assert {p["status"] for p in pages} == {"A"}


async def test_a_filter_that_matches_nothing_is_one_empty_page(connect: Connect) -> None:
    c = await connect()
    assert await c.client.list_all("patients", {"last_name": "Zzyzx"}, reason="test") == []
    assert c.statuses() == [200]


async def test_encounters_are_one_unpaged_list_for_a_patient(connect: Connect) -> None:
    c = await connect()
    patient = c.patients[4]["id"]
    encounters = await c.client.list_all("encounters", {"patient_id": patient}, reason="test")
    expected = [e for e in c.state.dataset.encounters if e["patient_id"] == patient]
    assert len(encounters) == len(expected) > 0
    assert {e["patient_id"] for e in encounters} == {patient}
    assert c.statuses() == [200]


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
    wanted = c.patients[2]
    assert await c.client.get_record("patients", wanted["id"], reason="test") == wanted


async def test_an_unknown_id_is_none_and_an_odd_one_cannot_leave_its_path(
    connect: Connect,
) -> None:
    c = await connect()
    assert await c.client.get_record("patients", UNKNOWN_GUID, reason="test") is None
    assert await c.client.get_record("patients", "../authorization", reason="test") is None
    assert c.state.api_requests("authorization") == []


async def test_record_ids_are_metered_as_a_template_not_as_ids(connect: Connect) -> None:
    c = await connect()
    with metered() as meter:
        await c.client.get_record("patients", c.patients[0]["id"], reason="test")
        await c.client.get_record("providers", str(c.state.dataset.providers[0]["id"]), reason="t")
    assert [call.endpoint for call in meter.calls] == ["patients/{id}", "providers/{id}"]


async def test_get_document_returns_the_ccda_bytes_or_none(connect: Connect) -> None:
    c = await connect()
    pid = c.patients[0]["id"]
    ccda = await c.client.get_document(f"/patients/{pid}/ccda", reason="test")
    assert ccda is not None and b"ClinicalDocument" in ccda
    assert await c.client.get_document(f"/patients/{UNKNOWN_GUID}/ccda", reason="test") is None


async def test_cached_pages_are_not_fetched_again(connect: Connect) -> None:
    c = await connect()
    url = c.client.list_url("patients", {})
    await c.client.fetch_page(url, reason="test", cache_ttl=60)
    await c.client.fetch_page(url, reason="test", cache_ttl=60)
    assert len(c.statuses()) == 1
    c.clock.advance(61)
    await c.client.fetch_page(url, reason="test", cache_ttl=60)
    assert len(c.statuses()) == 2


async def test_a_long_appointment_range_is_asked_in_93_day_windows(connect: Connect) -> None:
    c = await connect()
    start, end = "2025-06-01", "2026-12-31"
    appointments = await c.client.list_all(
        "appointments", {"start_date": start, "end_date": end}, reason="test"
    )
    expected = {
        a["id"]
        for a in c.state.dataset.appointments
        if start <= datetime.fromisoformat(a["start_time"]).date().isoformat() <= end
    }
    assert expected and {a["id"] for a in appointments} == expected
    assert len(appointments) == len(expected)  # none twice
    asked = c.state.api_requests("appointments")
    assert all(entry.status == 200 for entry in asked)
    windows = sorted({(e.params["start_date"], e.params["end_date"]) for e in asked})
    assert len(windows) == 7  # 579 days, 93 at a time
    assert windows[0] == ("2025-06-01", "2025-09-01")
    assert windows[-1][1] == end


async def test_a_range_within_93_days_is_one_request(connect: Connect) -> None:
    c = await connect()
    await c.client.list_all(
        "appointments", {"start_date": "2026-05-01", "end_date": "2026-08-01"}, reason="test"
    )
    assert [e.params["end_date"] for e in c.state.api_requests("appointments")] == ["2026-08-01"]


# -- other origins ----------------------------------------------------------------------------


async def test_fetch_file_fetches_under_the_base_url(connect: Connect) -> None:
    c = await connect()
    content_type, body = await c.client.fetch_file(f"/patients/{c.patients[0]['id']}/ccda")
    assert content_type == "application/xml"
    assert b"ClinicalDocument" in body


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
    assert c.statuses() == []


async def test_a_next_link_to_another_host_is_refused(connect: Connect) -> None:
    c = await connect()
    with pytest.raises(UpstreamUnavailable, match="another host"):
        await c.client.fetch_page("http://elsewhere.example/patients?page=2", reason="test")
    assert c.statuses() == []


# -- failures, retries and the budget ---------------------------------------------------------


async def test_a_5xx_is_retried_with_backoff_then_succeeds(connect: Connect) -> None:
    c = await connect()
    c.state.fail_next(2, Fault.SERVER_ERROR)
    await c.call()
    assert c.statuses() == [500, 500, 200]
    assert len(c.clock.slept) == 2  # one backoff before each retry


async def test_5xx_beyond_the_retries_is_upstream_unavailable(connect: Connect) -> None:
    c = await connect(policy=ClientPolicy(timeout_seconds=0.05, retries=2))
    c.state.fail_next(3, Fault.SERVER_ERROR)
    with pytest.raises(UpstreamUnavailable):
        await c.call()
    assert c.statuses() == [500, 500, 500]


async def test_a_timeout_is_retried(connect: Connect) -> None:
    c = await connect()
    c.state.fail_call(1, Fault.TIMEOUT, timeout_seconds=1.0)
    await c.call()
    assert c.statuses()[-1] == 200
    assert len(c.statuses()) == 2


async def test_timeouts_beyond_the_retries_are_upstream_timeout(connect: Connect) -> None:
    c = await connect(policy=ClientPolicy(timeout_seconds=0.05, retries=1))
    c.state.fail_next(2, Fault.TIMEOUT, timeout_seconds=1.0)
    with pytest.raises(UpstreamTimeout):
        await c.call()


async def test_a_429_retry_after_is_waited_through_the_budget(connect: Connect) -> None:
    c = await connect()
    c.state.fail_call(1, Fault.THROTTLED)  # Retry-After: 1
    await c.call()
    assert c.statuses() == [429, 200]
    assert c.clock.slept == [1.0]  # the budget slept what CareCloud named, no more
    assert c.client.budget.wait_needed() == 0


async def test_a_429_longer_than_the_caller_waits_is_upstream_throttled(
    connect: Connect,
) -> None:
    """The sandbox's own per-user budget spent: it names the rest of its rolling hour."""
    c = await connect(sandbox_hourly_budget=1)
    await c.call()
    with pytest.raises(UpstreamThrottled) as raised:
        await c.call()
    assert raised.value.headers["Retry-After"] == "3600"
    assert "asked facade to wait" in raised.value.message
    # The budget holds every caller back until then: nothing more goes out meanwhile.
    with pytest.raises(UpstreamThrottled):
        await c.call()
    assert c.statuses() == [200, 429]


async def test_the_hourly_budget_is_taken_per_call(connect: Connect) -> None:
    c = await connect(hourly_limit=2)
    await c.call()
    await c.client.list_all("patients", {"last_name": "Zzyzx"}, reason="test")
    with pytest.raises(UpstreamThrottled, match="hourly budget"):
        await c.call()
    assert len(c.statuses()) == 2


# -- the practice context ------------------------------------------------------------------


async def test_practice_context_comes_from_authorization(connect: Connect) -> None:
    c = await connect()
    context = await load_practice_context(c.client, 3600)
    entity = c.state.dataset.business_entity
    assert context.practice_group_id == entity["id"] == c.keeper.credentials.business_entity_id
    assert context.practice_name == entity["name"]
    assert str(context.timezone) == "America/New_York"
    await load_practice_context(c.client, 3600)
    assert c.statuses("authorization") == [200]  # kept for its TTL
