"""Bad input of every kind, and a vendor that fails, get the right status and an
OperationOutcome, never a stack trace: for every vendor, through the sandboxes' shared
fault plan."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from facade.clock import FakeClock
from tests.conftest import all_pages
from tests.vendors import (
    VENDORS,
    expire_sessions,
    patient_ids,
    renewals,
    revoke_access,
    vendor_calls,
)

pytestmark = VENDORS


def assert_outcome(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["severity"] == "error"
    assert issue["details"]["coding"][0]["code"] == code
    assert "Traceback" not in response.text
    return body


async def test_unknown_parameter_is_refused_listing_the_supported_ones(
    fhir: httpx.AsyncClient,
) -> None:
    body = assert_outcome(
        await fhir.get("/fhir/Patient?favourite-colour=blue"), 400, "unknown-parameter"
    )
    text = body["issue"][0]["details"]["text"]
    for supported in ("_id", "identifier", "name", "family", "given", "birthdate", "gender"):
        assert supported in text


async def test_unknown_parameter_is_ignored_with_lenient_handling(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get(
        "/fhir/Patient?favourite-colour=blue", headers={"Prefer": "handling=lenient"}
    )
    assert response.status_code == 200
    assert "favourite-colour" not in response.json()["link"][0]["url"]


async def test_strict_handling_is_the_default_and_can_be_asked_for(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get("/fhir/Location?zip=1", headers={"Prefer": "handling=strict"})
    assert_outcome(response, 400, "unknown-parameter")


async def test_unsupported_modifier_is_refused(fhir: httpx.AsyncClient) -> None:
    assert_outcome(await fhir.get("/fhir/Patient?birthdate:missing=true"), 400, "unknown-parameter")


@pytest.mark.parametrize(
    "query",
    [
        "birthdate=yesterday",
        "birthdate=2020-13-01",
        "birthdate=xx2020",
        "_lastUpdated=soon",
        "name=",
    ],
)
async def test_values_of_the_wrong_type_are_refused(fhir: httpx.AsyncClient, query: str) -> None:
    assert_outcome(await fhir.get(f"/fhir/Patient?{query}"), 400, "invalid-parameter-value")


@pytest.mark.parametrize(
    ("path", "form", "says"),
    [
        ("Observation", "patient=Practitioner/1&category=laboratory", "reference to Patient"),
        ("Encounter", "patient=Patient/a$b", "valid FHIR id"),
        ("Condition", "patient=1&encounter=Location/2", "reference to Encounter"),
        ("Patient", "birthdate=yesterday", "is not a FHIR date"),
        ("Patient", "_count=many", "_count"),
    ],
)
async def test_a_search_form_value_of_the_wrong_type_is_400_like_the_same_get(
    warm_fhir: httpx.AsyncClient, sandbox: Any, path: str, form: str, says: str
) -> None:
    fhir = warm_fhir
    before = len(vendor_calls(sandbox))
    posted = await fhir.post(
        f"/fhir/{path}/_search",
        content=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    body = assert_outcome(posted, 400, "invalid-parameter-value")
    assert says in body["issue"][0]["details"]["text"]
    assert (await fhir.get(f"/fhir/{path}?{form}")).json() == body
    assert vendor_calls(sandbox)[before:] == [], "refused before any vendor call"


async def test_references_in_every_accepted_form_are_searched(
    fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    patient = patient_ids(sandbox)[0]
    expected = await all_pages(fhir, f"/fhir/Condition?patient={patient}")
    assert expected, "the patient has conditions to find"
    for value in (f"Patient/{patient}", f"http://elsewhere.test/fhir/Patient/{patient}"):
        assert await all_pages(fhir, f"/fhir/Condition?patient={value}") == expected, value
    versioned = f"http://elsewhere.test/fhir/Patient/{patient}/_history/2"
    assert (await fhir.get(f"/fhir/Condition?patient={versioned}")).status_code == 200


@pytest.mark.parametrize("count", ["abc", "0", "-5", "1.5"])
async def test_bad_count_is_refused(fhir: httpx.AsyncClient, count: str) -> None:
    assert_outcome(await fhir.get(f"/fhir/Patient?_count={count}"), 400, "invalid-parameter-value")


async def test_count_above_the_maximum_is_reduced_and_shown(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get("/fhir/Practitioner?_count=100000")
    assert response.status_code == 200
    assert response.json()["link"][0]["url"].endswith("_count=250")


async def test_tampered_cursor_is_refused(fhir: httpx.AsyncClient) -> None:
    first = (await fhir.get("/fhir/Patient?_count=2")).json()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    tampered = next_url[:-6] + ("AAAAAA" if not next_url.endswith("AAAAAA") else "BBBBBB")
    assert_outcome(await fhir.get(tampered), 400, "invalid-cursor")


async def test_cursor_of_another_search_is_refused(fhir: httpx.AsyncClient) -> None:
    first = (await fhir.get("/fhir/Patient?_count=2")).json()
    cursor = next(link["url"] for link in first["link"] if link["relation"] == "next").split(
        "_cursor="
    )[1]
    assert_outcome(
        await fhir.get(f"/fhir/Patient?_count=3&_cursor={cursor}"), 400, "invalid-cursor"
    )


async def test_unknown_id_is_404(fhir: httpx.AsyncClient) -> None:
    for path in (
        "/fhir/Patient/999999999",
        "/fhir/Patient/not-a-number",
        "/fhir/Patient/00000000-0000-4000-8000-000000000000",
        "/fhir/Practitioner/999999999",
        "/fhir/Organization/999999999",
        "/fhir/Location/999999999",
        "/fhir/Condition/problem-999999999",
        "/fhir/Condition/nosuchsource-1",
    ):
        assert_outcome(await fhir.get(path), 404, "not-found")


async def test_malformed_id_is_400(fhir: httpx.AsyncClient) -> None:
    assert_outcome(await fhir.get("/fhir/Patient/has_underscore!"), 400, "invalid-request")


async def test_unknown_resource_type_is_404(fhir: httpx.AsyncClient) -> None:
    assert_outcome(await fhir.get("/fhir/Spaceship?name=x"), 404, "not-found")
    assert_outcome(await fhir.get("/fhir/Spaceship/1"), 404, "not-found")
    assert_outcome(await fhir.get("/fhir/not-a-type"), 400, "invalid-request")


async def test_unknown_path_is_404_outcome(fhir: httpx.AsyncClient) -> None:
    assert_outcome(await fhir.get("/nowhere"), 404, "not-found")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_writes_are_405(fhir: httpx.AsyncClient, method: str) -> None:
    response = await fhir.request(method, "/fhir/Patient/1", json={"resourceType": "Patient"})
    assert_outcome(response, 405, "interaction-not-supported")


async def test_create_is_405(fhir: httpx.AsyncClient) -> None:
    response = await fhir.post(
        "/fhir/Patient", content=b"{not json", headers={"Content-Type": "application/fhir+json"}
    )
    assert_outcome(response, 405, "interaction-not-supported")


async def test_post_search_needs_a_form_body(fhir: httpx.AsyncClient) -> None:
    response = await fhir.post("/fhir/Patient/_search", json={"name": "x"})
    assert_outcome(response, 415, "media-type-not-supported")


async def test_post_search_with_a_malformed_body_is_400(fhir: httpx.AsyncClient) -> None:
    response = await fhir.post(
        "/fhir/Patient/_search",
        content=b"name=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_outcome(response, 400, "invalid-request")


async def test_xml_is_not_acceptable(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get("/fhir/Patient", headers={"Accept": "application/fhir+xml"})
    assert_outcome(response, 406, "format-not-supported")
    assert_outcome(await fhir.get("/fhir/Patient?_format=xml"), 406, "format-not-supported")


async def test_json_formats_are_accepted(fhir: httpx.AsyncClient) -> None:
    for accept in (
        "application/fhir+json",
        "application/json",
        "*/*",
        "application/fhir+json; fhirVersion=4.0",
    ):
        response = await fhir.get("/fhir/Location", headers={"Accept": accept})
        assert response.status_code == 200, accept
    assert (await fhir.get("/fhir/Location?_format=json")).status_code == 200


# -- the vendor fails ----------------------------------------------------------------------------


#: FHIR requests that reach the vendor by different paths: a practice-wide listing, a read
#: by id, and one patient's chart (a compartment search).
ASKING_THE_VENDOR = {
    "search": "/fhir/Patient?_count=1",
    "read": "/fhir/Patient/{patient}",
    "chart": "/fhir/Condition?patient={patient}",
}


def asking(kind: str, sandbox: Any) -> str:
    return ASKING_THE_VENDOR[kind].format(patient=patient_ids(sandbox)[0])


@pytest.mark.parametrize("kind", ASKING_THE_VENDOR)
async def test_a_short_vendor_throttle_is_waited_out(
    warm_fhir: httpx.AsyncClient, sandbox: Any, clock: FakeClock, kind: str
) -> None:
    sandbox.fail_next(1, "429")
    response = await warm_fhir.get(asking(kind, sandbox))
    assert response.status_code == 200, response.text
    assert 1.0 in clock.slept  # the sandbox asked for a one-second wait


@pytest.mark.parametrize("kind", ASKING_THE_VENDOR)
async def test_persistent_vendor_5xx_is_502_after_retries(
    warm_fhir: httpx.AsyncClient, sandbox: Any, kind: str
) -> None:
    before = len(vendor_calls(sandbox))
    sandbox.fail_next(10, "500")
    response = await warm_fhir.get(asking(kind, sandbox))
    assert_outcome(response, 502, "upstream-unavailable")
    assert len(vendor_calls(sandbox)) - before == 4  # the first try and 3 retries


async def test_a_passing_vendor_5xx_is_retried_invisibly(
    warm_fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    sandbox.fail_next(2, "500")
    found = await all_pages(warm_fhir, "/fhir/Patient?_count=50")
    assert [p["id"] for p in found] == patient_ids(sandbox)


@pytest.mark.parametrize("kind", ASKING_THE_VENDOR)
async def test_vendor_timeout_is_504(warm_fhir: httpx.AsyncClient, sandbox: Any, kind: str) -> None:
    sandbox.fail_next(10, "timeout", timeout_seconds=3.0)
    response = await warm_fhir.get(asking(kind, sandbox))
    assert_outcome(response, 504, "upstream-timeout")


@pytest.mark.parametrize("kind", ASKING_THE_VENDOR)
async def test_expired_vendor_token_is_refreshed_transparently(
    warm_fhir: httpx.AsyncClient, sandbox: Any, kind: str
) -> None:
    sandbox.fail_next(1, "expire_token")
    response = await warm_fhir.get(asking(kind, sandbox))
    assert response.status_code == 200, response.text
    assert len(renewals(sandbox)) == 2  # the first connect, and the refresh


async def test_revoked_vendor_authorization_is_503(
    warm_fhir: httpx.AsyncClient, sandbox: Any
) -> None:
    revoke_access(sandbox)
    expire_sessions(sandbox)
    response = await warm_fhir.get("/fhir/Patient?_count=1")
    assert_outcome(response, 503, "upstream-authorization-failed")
