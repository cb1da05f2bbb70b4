"""Request limits on every route: a body over FACADE_MAX_BODY_BYTES is 413 and a path or
query string over FACADE_MAX_QUERY_BYTES is 414, answered before the body is read (an
OperationOutcome on FHIR routes, RFC 6749 JSON on /auth/*); a search's values are bounded
(400), so one request cannot stall the server with matching work."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest

from facade.app import create_app
from facade.fhir.query import MAX_OR_VALUES, MAX_PARAMETERS, MAX_TOTAL_VALUES, MAX_VALUE_LENGTH
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from tests.conftest import FACADE_BASE
from tests.tokens import FreshToken, token

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MiB = 1024 * 1024
CHUNK = 64 * 1024


class CountedBody:
    """A streamed request body that records how much of it the server pulled."""

    def __init__(self, size: int, prefix: bytes = b"name=", chunk: int = CHUNK):
        self.size = size
        self.prefix = prefix
        self.chunk = chunk
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.prefix
        self.sent += len(self.prefix)
        while self.sent < self.size:
            chunk = b"a" * min(self.chunk, self.size - self.sent)
            self.sent += len(chunk)
            yield chunk


def assert_outcome(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "too-long" if status in (413, 414) else True
    assert body["issue"][0]["details"]["coding"][0]["code"] == code


def assert_oauth_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


# -- body size -------------------------------------------------------------------------------


async def test_a_10_mb_form_search_is_413_before_its_body_is_read(
    fhir: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = CountedBody(10_000_000)
    started = time.perf_counter()
    response = await fhir.post(
        "/fhir/Patient/_search",
        content=body,
        headers={**FORM, "Content-Length": str(body.size)},
    )
    elapsed = time.perf_counter() - started
    assert_outcome(response, 413, "request-too-large")
    assert str(runtime.settings.max_body_bytes) in response.json()["issue"][0]["details"]["text"]
    assert body.sent <= CHUNK, "the declared length alone refused it"
    assert elapsed < 5, f"took {elapsed:.1f} s"


async def test_a_chunked_body_over_the_limit_is_413_once_the_limit_is_passed(
    fhir: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = CountedBody(10_000_000)
    response = await fhir.post("/fhir/Patient/_search", content=body, headers=FORM)
    assert "content-length" not in response.request.headers
    assert_outcome(response, 413, "request-too-large")
    # Read up to the first chunk past the limit, and not a byte of the rest.
    assert body.sent <= runtime.settings.max_body_bytes + CHUNK + len(body.prefix)


async def test_a_body_within_the_limit_is_read(fhir: httpx.AsyncClient) -> None:
    response = await fhir.post("/fhir/Patient/_search", content=b"name=zz", headers=FORM)
    assert response.status_code == 200, response.text


@pytest.fixture
async def small_limits(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """facade with 1,000-byte body and 200-byte query limits (FACADE_MAX_BODY_BYTES=1000,
    FACADE_MAX_QUERY_BYTES=200)."""
    settings = runtime.settings.with_overrides(max_body_bytes=1000, max_query_bytes=200)
    app = create_app(settings, runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE, auth=FreshToken(runtime)
    ) as client:
        yield client


FHIR_POSTS = [
    "/fhir/Patient/_search",
    "/fhir/$export",
    "/fhir/Patient/$export",
    "/fhir/Group",
    "/fhir/DocumentReference/$docref",
    "/fhir/Patient",  # not offered (405), still limited first
    "/fhir/nothing/here/at/all",
]
OAUTH_POSTS = ["/auth/token", "/auth/register", "/auth/introspect", "/auth/revoke", "/auth/login"]
KICKOFF = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


@pytest.mark.parametrize("path", FHIR_POSTS + OAUTH_POSTS)
async def test_every_route_refuses_a_declared_length_over_the_limit_unread(
    small_limits: httpx.AsyncClient, path: str
) -> None:
    body = CountedBody(5000, prefix=b"x=", chunk=100)
    response = await small_limits.post(
        path, content=body, headers={**FORM, **KICKOFF, "Content-Length": str(body.size)}
    )
    if path.startswith("/auth/"):
        assert_oauth_error(response, 413)
    else:
        assert_outcome(response, 413, "request-too-large")
    assert body.sent == 0


@pytest.mark.parametrize(
    "path,content_type",
    [
        ("/fhir/Patient/_search", "application/x-www-form-urlencoded"),
        ("/fhir/$export", "application/fhir+json"),
        ("/fhir/Group", "application/fhir+json"),
        ("/fhir/DocumentReference/$docref", "application/x-www-form-urlencoded"),
        ("/auth/token", "application/x-www-form-urlencoded"),
        ("/auth/register", "application/json"),
        ("/auth/introspect", "application/x-www-form-urlencoded"),
        ("/auth/revoke", "application/x-www-form-urlencoded"),
        ("/auth/login", "application/x-www-form-urlencoded"),
    ],
)
async def test_every_route_that_reads_a_body_refuses_a_chunked_one_over_the_limit(
    small_limits: httpx.AsyncClient, runtime: Runtime, path: str, content_type: str
) -> None:
    body = CountedBody(5000, prefix=b"x=", chunk=100)
    headers = {**KICKOFF, "Content-Type": content_type}
    if path == "/fhir/Group":
        headers["Authorization"] = f"Bearer {token(runtime, 'system/Group.c')}"
    # OAuth routes without the suite's bearer token (registration reads it as an initial
    # access token).
    auth = None if path.startswith("/auth/") else httpx.USE_CLIENT_DEFAULT
    response = await small_limits.post(path, content=body, headers=headers, auth=auth)
    assert "content-length" not in response.request.headers
    if path.startswith("/auth/"):
        assert_oauth_error(response, 413)
    else:
        assert_outcome(response, 413, "request-too-large")
    assert body.sent <= 1000 + 100 + len(body.prefix)


async def test_a_content_length_that_is_not_a_number_is_400(fhir: httpx.AsyncClient) -> None:
    response = await fhir.post(
        "/fhir/Patient/_search", content=b"name=a", headers={**FORM, "Content-Length": "ten"}
    )
    assert_outcome(response, 400, "invalid-request")


async def test_a_bulk_kickoff_post_of_normal_size_still_works(
    fhir: httpx.AsyncClient, dataset: SandboxDataset
) -> None:
    patients = [str(p["id"]) for p in dataset.endpoint("patients")]
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "_type", "valueString": "Patient,Condition"}]
        + [{"name": "patient", "valueReference": {"reference": f"Patient/{p}"}} for p in patients],
    }
    response = await fhir.post(
        "/fhir/Patient/$export",
        json=body,
        headers={"Accept": "application/fhir+json", "Prefer": "respond-async"},
    )
    assert response.status_code == 202, response.text


async def test_a_pretty_printed_group_of_20000_members_fits_the_default_limit(
    fhir: httpx.AsyncClient, runtime: Runtime, dataset: SandboxDataset
) -> None:
    patients = [str(p["id"]) for p in dataset.endpoint("patients")]
    members = [
        {"entity": {"reference": f"Patient/{patients[i % len(patients)]}"}} for i in range(20_000)
    ]
    group = {"resourceType": "Group", "id": "cohort", "name": "cohort", "member": members}
    pretty = json.dumps(group, indent=2).encode()
    assert 1.5 * MiB < len(pretty) < runtime.settings.max_body_bytes
    response = await fhir.post(
        "/fhir/Group",
        content=pretty,
        headers={
            "Content-Type": "application/fhir+json",
            "Authorization": f"Bearer {token(runtime, 'system/Group.c')}",
        },
    )
    assert response.status_code == 201, response.text


# -- URL size --------------------------------------------------------------------------------


async def test_a_20_kb_query_is_414(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get("/fhir/Patient", params={"name": "a" * 20_000})
    assert_outcome(response, 414, "uri-too-long")


async def test_a_query_within_the_limit_is_answered(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get("/fhir/Patient", params={"name": "a" * 1000})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "path",
    ["/fhir/metadata", "/fhir/$export", "/fhir/Group", "/fhir/.well-known/smart-configuration"],
)
async def test_every_fhir_route_limits_the_query(
    small_limits: httpx.AsyncClient, path: str
) -> None:
    response = await small_limits.get(path, params={"q": "a" * 300})
    assert_outcome(response, 414, "uri-too-long")


@pytest.mark.parametrize("path", ["/auth/authorize", "/auth/login", "/auth/jwks"])
async def test_oauth_routes_answer_414_as_oauth_errors(
    small_limits: httpx.AsyncClient, path: str
) -> None:
    response = await small_limits.get(path, params={"state": "a" * 300})
    assert_oauth_error(response, 414)


async def test_a_long_path_is_414(small_limits: httpx.AsyncClient) -> None:
    response = await small_limits.get("/fhir/Patient/" + "1" * 300)
    assert_outcome(response, 414, "uri-too-long")


# -- search values ---------------------------------------------------------------------------


async def _form_search(fhir: httpx.AsyncClient, pairs: list[tuple[str, str]]) -> httpx.Response:
    return await fhir.post("/fhir/Patient/_search", content=urlencode(pairs), headers=FORM)


async def test_a_search_with_10000_values_is_400(fhir: httpx.AsyncClient) -> None:
    values = ",".join(str(100000 + i) for i in range(10_000))
    response = await _form_search(fhir, [("_id", values)])
    assert_outcome(response, 400, "invalid-parameter-value")
    assert "10000 values" in response.json()["issue"][0]["details"]["text"]


async def test_a_parameter_takes_a_bounded_number_of_values(fhir: httpx.AsyncClient) -> None:
    names = [f"zz{i}" for i in range(MAX_OR_VALUES + 1)]
    assert (await _form_search(fhir, [("name", ",".join(names[:-1]))])).status_code == 200
    response = await _form_search(fhir, [("name", ",".join(names))])
    assert_outcome(response, 400, "invalid-parameter-value")


async def test_a_search_takes_a_bounded_number_of_values_in_all(fhir: httpx.AsyncClient) -> None:
    per_clause = MAX_OR_VALUES
    clauses = MAX_TOTAL_VALUES // per_clause + 1
    pairs = [("name", ",".join(f"zz{i}" for i in range(per_clause)))] * clauses
    response = await _form_search(fhir, pairs)
    assert_outcome(response, 400, "invalid-parameter-value")


async def test_a_search_takes_a_bounded_number_of_parameters(fhir: httpx.AsyncClient) -> None:
    response = await _form_search(fhir, [("gender", "female")] * (MAX_PARAMETERS + 1))
    assert_outcome(response, 400, "invalid-parameter-value")


@pytest.mark.parametrize("name", ["name", "identifier", "_id", "birthdate", "_include"])
async def test_a_value_longer_than_the_bound_is_400(fhir: httpx.AsyncClient, name: str) -> None:
    response = await _form_search(fhir, [(name, "a" * (MAX_VALUE_LENGTH + 1))])
    assert_outcome(response, 400, "invalid-parameter-value")
    assert "a" * 100 not in response.text, "the value is not echoed back"


async def test_the_longest_value_allowed_is_searched(fhir: httpx.AsyncClient) -> None:
    response = await _form_search(fhir, [("name", "a" * MAX_VALUE_LENGTH)])
    assert response.status_code == 200, response.text
    assert response.json().get("entry", []) == []


async def test_a_one_mb_value_costs_no_matching_work(fhir: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    response = await _form_search(fhir, [("name", "a" * (1024 * 1024))])
    assert_outcome(response, 400, "invalid-parameter-value")
    assert time.perf_counter() - started < 2
