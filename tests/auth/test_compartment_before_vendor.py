"""A patient's token never makes facade fetch another patient's records: ids that name their
patient are refused before any vendor call, a multi-valued `patient` is cut to the token's
patient before planning, and a record id only the vendor can place costs one honest,
counted call. The sandbox's request log shows what the vendor was asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from facade.app import create_app
from facade.core.compartment import CompartmentMapping, patient_named_by
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from facade.upstream.drchrono.sandbox.state import RequestLogEntry, SandboxState
from mappings.drchrono import REGISTRY
from mappings.drchrono.fields import PATIENT_ID_SYSTEM
from tests.conftest import FACADE_BASE, FHIR_BASE, all_pages
from tests.tokens import token

#: Sources read from the patient record: their ids carry the patient id.
PATIENT_ENDPOINT = REGISTRY.get("Patient").endpoint
PATIENT_KEYED = [
    (mapping, source)
    for mapping in REGISTRY
    if isinstance(mapping, CompartmentMapping)
    for source in mapping.sources
    if source.endpoint == PATIENT_ENDPOINT
]


@pytest.fixture
async def anonymous(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime.settings, runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE
    ) as client:
        yield client


@pytest.fixture
def pair(dataset: SandboxDataset) -> tuple[str, str]:
    """(mine, theirs): two patients who both have problems and documents."""
    with_data = [
        str(p["id"])
        for p in dataset.endpoint("patients")
        if any(c["patient"] == p["id"] for c in dataset.endpoint("problems"))
        and any(d["patient"] == p["id"] for d in dataset.endpoint("documents"))
    ]
    return with_data[0], with_data[1]


@pytest.fixture
def as_mine(runtime: Runtime, pair: tuple[str, str]) -> dict[str, str]:
    mine, _ = pair
    value = token(
        runtime, "patient/*.rs launch/patient", patient_id=mine, fhir_user=f"Patient/{mine}"
    )
    return {"Authorization": f"Bearer {value}"}


def naming(calls: list[RequestLogEntry], patient: str) -> list[str]:
    """The requests that name `patient` in their path or query."""
    return [c.path for c in calls if patient in c.path.split("/") or patient in c.query.values()]


def ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


# -- reads ---------------------------------------------------------------------------------


async def test_an_id_that_names_another_patient_is_404_without_a_vendor_call(
    anonymous: httpx.AsyncClient,
    sandbox: SandboxState,
    pair: tuple[str, str],
    as_mine: dict[str, str],
) -> None:
    """Not even the practice context is loaded: the answer needs nothing from the vendor."""
    _, theirs = pair
    paths = [
        f"Patient/{theirs}",
        f"CareTeam/careteam-{theirs}",
        f"Coverage/coverage-{theirs}-1",
        f"RelatedPerson/relatedperson-{theirs}-emergency",
        f"DocumentReference/ccd-{theirs}",
        f"Provenance/Patient-{theirs}",
        f"Provenance/CareTeam-careteam-{theirs}",
    ]
    before = len(sandbox.request_log)
    for path in paths:
        response = await anonymous.get(f"/fhir/{path}", headers=as_mine)
        assert response.status_code == 404, path
        assert response.json()["resourceType"] == "OperationOutcome"
        assert response.headers["X-Upstream-Calls"] == "0", path
    assert sandbox.request_log[before:] == []


async def test_a_record_id_is_fetched_once_checked_and_counted(
    anonymous: httpx.AsyncClient,
    runtime: Runtime,
    sandbox: SandboxState,
    dataset: SandboxDataset,
    pair: tuple[str, str],
    as_mine: dict[str, str],
) -> None:
    """A problem id says nothing of its patient: the one record is read, then refused with
    the same 404 a missing id gets, and the call shows in X-Upstream-Calls and the audit."""
    mine, theirs = pair
    await runtime.service.context()
    problem = next(p for p in dataset.endpoint("problems") if str(p["patient"]) == theirs)
    before = len(sandbox.request_log)
    theirs_read = await anonymous.get(f"/fhir/Condition/problem-{problem['id']}", headers=as_mine)
    calls = sandbox.request_log[before:]
    assert theirs_read.status_code == 404
    assert [c.path for c in calls] == [f"/api/problems/{problem['id']}"]
    assert theirs_read.headers["X-Upstream-Calls"] == "1"
    missing = await anonymous.get("/fhir/Condition/problem-999999999", headers=as_mine)
    assert missing.status_code == 404 and missing.headers["X-Upstream-Calls"] == "1"
    same = theirs_read.text.replace(str(problem["id"]), "999999999")
    assert same == missing.text, "the 404 does not tell another patient's record from none"
    read = next(
        r
        for r in runtime.audit.query(patient_id=mine)
        if r.interaction == "read" and r.resource_id == f"problem-{problem['id']}"
    )
    assert (read.vendor_calls, read.outcome) == (1, "not-found")


async def test_a_binary_of_another_patient_is_refused_before_its_file_is_downloaded(
    anonymous: httpx.AsyncClient,
    runtime: Runtime,
    sandbox: SandboxState,
    dataset: SandboxDataset,
    pair: tuple[str, str],
    as_mine: dict[str, str],
) -> None:
    mine, theirs = pair
    await runtime.service.context()
    documents = dataset.endpoint("documents")
    their_document = next(d for d in documents if str(d["patient"]) == theirs)
    before = len(sandbox.request_log)
    refused = await anonymous.get(f"/fhir/Binary/document-{their_document['id']}", headers=as_mine)
    assert refused.status_code == 404
    assert refused.headers["X-Upstream-Calls"] == "1"
    paths = [c.path for c in sandbox.request_log[before:]]
    assert paths == [f"/api/documents/{their_document['id']}"], "their file is never fetched"

    own = next(d for d in documents if str(d["patient"]) == mine)
    served = await anonymous.get(f"/fhir/Binary/document-{own['id']}", headers=as_mine)
    assert served.status_code == 200 and served.content
    assert served.headers["X-Upstream-Calls"] == "1", "the check costs no call of its own"


COMPARTMENT = [m.resource_type for m in REGISTRY if isinstance(m, CompartmentMapping)]


@pytest.mark.parametrize("resource_type", COMPARTMENT)
async def test_reading_another_patients_record_stops_at_that_record(
    anonymous: httpx.AsyncClient,
    runtime: Runtime,
    sandbox: SandboxState,
    pair: tuple[str, str],
    as_mine: dict[str, str],
    resource_type: str,
) -> None:
    """Of every source: the read asks for single records only, up to the first that names
    the other patient (a lab result's order), and never lists that patient's chart (the
    order's tests and results, the assessments around one). Each call is counted."""
    _, theirs = pair
    system = {"Authorization": f"Bearer {token(runtime)}"}
    theirs_by_source: dict[str, str] = {}
    for resource in await all_pages(
        anonymous, f"/fhir/{resource_type}?patient={theirs}", headers=system
    ):
        theirs_by_source.setdefault(resource["id"].split("-")[0], resource["id"])
    assert theirs_by_source, f"patient {theirs} needs {resource_type} data for this test"
    runtime.service.client.cache.clear()  # what the search fetched must not hide a read's calls
    for resource_id in theirs_by_source.values():
        before = len(sandbox.request_log)
        read = await anonymous.get(f"/fhir/{resource_type}/{resource_id}", headers=as_mine)
        calls = sandbox.request_log[before:]
        assert read.status_code == 404, resource_id
        assert read.headers["X-Upstream-Calls"] == str(len(calls)), resource_id
        assert len(calls) <= 2, (resource_id, [c.path for c in calls])
        for call in calls:
            assert call.path.rstrip("/").split("/")[-1].isdigit(), (resource_id, call.path)
            assert theirs not in call.query.values(), (resource_id, call.path)


@pytest.mark.parametrize(
    "mapping,source", PATIENT_KEYED, ids=[f"{m.resource_type}-{s.name}" for m, s in PATIENT_KEYED]
)
async def test_patient_keyed_ids_name_their_patient_and_stay_readable_by_it(
    anonymous: httpx.AsyncClient,
    runtime: Runtime,
    pair: tuple[str, str],
    as_mine: dict[str, str],
    mapping: CompartmentMapping,
    source: object,
) -> None:
    """The id rule the reads rely on, checked against what each such source serves."""
    mine, _ = pair
    system = {"Authorization": f"Bearer {token(runtime)}"}
    served = await all_pages(
        anonymous, f"/fhir/{mapping.resource_type}?patient={mine}", headers=system
    )
    own = [r["id"] for r in served if r["id"].startswith(f"{source.name}-")]  # type: ignore[attr-defined]
    if not own and source.name == "ccd":  # type: ignore[attr-defined]
        own = [f"ccd-{mine}"]  # generated on demand, readable by id, never listed
    assert own, f"{mapping.resource_type}: patient {mine} needs such a resource"
    for resource_id in own:
        assert patient_named_by(mapping, resource_id, PATIENT_ENDPOINT) == mine
        read = await anonymous.get(f"/fhir/{mapping.resource_type}/{resource_id}", headers=as_mine)
        assert read.status_code == 200, resource_id


# -- searches ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "{mine},{theirs}",
        "{theirs},{mine}",
        "Patient/{mine},Patient/{theirs}",
        f"{FHIR_BASE}/Patient/{{theirs}},{{mine}}",
    ],
)
async def test_a_patient_list_is_cut_to_the_tokens_patient_before_the_vendor_is_asked(
    anonymous: httpx.AsyncClient,
    runtime: Runtime,
    sandbox: SandboxState,
    dataset: SandboxDataset,
    pair: tuple[str, str],
    as_mine: dict[str, str],
    value: str,
) -> None:
    mine, theirs = pair
    await runtime.service.context()
    before = len(sandbox.request_log)
    patient = quote(value.format(mine=mine, theirs=theirs), safe="")
    response = await anonymous.get(f"/fhir/Condition?patient={patient}", headers=as_mine)
    assert response.status_code == 200
    calls = sandbox.request_log[before:]
    assert calls and naming(calls, theirs) == [], "only the token's patient is fetched"
    assert all(c.query.get("patient") == mine for c in calls if "patient" in c.query)
    bundle = response.json()
    problems = {
        f"problem-{p['id']}" for p in dataset.endpoint("problems") if str(p["patient"]) == mine
    }
    assert problems <= set(ids(bundle))
    assert all(e["resource"]["subject"]["reference"] == f"Patient/{mine}" for e in bundle["entry"])
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert theirs not in self_link, "the self link shows the patient filter actually applied"


@pytest.mark.parametrize(
    "query",
    [
        "Condition?patient={theirs}",
        "Condition?patient=Patient/{theirs}",
        "Condition?patient:Patient={theirs}",
        "Condition?patient={theirs}&patient={mine}",
        "Encounter?patient={theirs}&_include=Encounter:patient&_revinclude=Provenance:target",
        "CareTeam?_id=careteam-{theirs}",
        "CareTeam?patient={theirs}&_include=CareTeam:participant:RelatedPerson",
    ],
)
async def test_a_search_of_only_another_patient_is_empty_without_a_vendor_call(
    anonymous: httpx.AsyncClient,
    sandbox: SandboxState,
    pair: tuple[str, str],
    as_mine: dict[str, str],
    query: str,
) -> None:
    """An empty searchset, as for a patient who does not exist; cold, so not even the
    practice context is loaded."""
    mine, theirs = pair
    before = len(sandbox.request_log)
    url = f"/fhir/{query.format(mine=mine, theirs=theirs)}"
    response = await anonymous.get(url, headers=as_mine)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "searchset" and ids(response.json()) == []
    assert response.headers["X-Upstream-Calls"] == "0"
    assert sandbox.request_log[before:] == []


async def test_a_malformed_search_of_another_patient_is_still_refused(
    anonymous: httpx.AsyncClient, pair: tuple[str, str], as_mine: dict[str, str]
) -> None:
    _, theirs = pair
    response = await anonymous.get(
        f"/fhir/Condition?patient={theirs}&flavour=sweet", headers=as_mine
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "query,calls",
    [
        ("_id={theirs}", 0),
        (f"identifier={PATIENT_ID_SYSTEM}|{{theirs}}", 0),
        ("_id={mine},{theirs}", 1),
        (f"identifier={PATIENT_ID_SYSTEM}|{{theirs}},{PATIENT_ID_SYSTEM}|{{mine}}", 1),
    ],
)
async def test_patient_searches_never_read_another_patient(
    anonymous: httpx.AsyncClient,
    runtime: Runtime,
    sandbox: SandboxState,
    pair: tuple[str, str],
    as_mine: dict[str, str],
    query: str,
    calls: int,
) -> None:
    mine, theirs = pair
    await runtime.service.context()
    before = len(sandbox.request_log)
    url = f"/fhir/Patient?{query.format(mine=mine, theirs=theirs)}"
    response = await anonymous.get(url, headers=as_mine)
    assert response.status_code == 200
    assert ids(response.json()) == ([mine] if calls else [])
    assert response.headers["X-Upstream-Calls"] == str(calls)
    assert naming(sandbox.request_log[before:], theirs) == []


async def test_chart_ids_that_name_another_patient_are_not_read(
    anonymous: httpx.AsyncClient,
    runtime: Runtime,
    sandbox: SandboxState,
    pair: tuple[str, str],
    as_mine: dict[str, str],
) -> None:
    mine, theirs = pair
    await runtime.service.context()
    before = len(sandbox.request_log)
    response = await anonymous.get(
        f"/fhir/CareTeam?_id=careteam-{mine},careteam-{theirs}", headers=as_mine
    )
    assert response.status_code == 200
    assert ids(response.json()) == [f"careteam-{mine}"]
    assert naming(sandbox.request_log[before:], theirs) == []


@pytest.mark.parametrize("patient", ["{theirs}", "Patient/{theirs}", "{mine},{theirs}"])
async def test_docref_for_another_patient_is_404_without_a_vendor_call(
    anonymous: httpx.AsyncClient,
    sandbox: SandboxState,
    pair: tuple[str, str],
    as_mine: dict[str, str],
    patient: str,
) -> None:
    mine, theirs = pair
    before = len(sandbox.request_log)
    named = quote(patient.format(mine=mine, theirs=theirs), safe="")
    response = await anonymous.get(
        f"/fhir/DocumentReference/$docref?patient={named}", headers=as_mine
    )
    assert response.status_code == 404
    assert response.headers["X-Upstream-Calls"] == "0"
    assert sandbox.request_log[before:] == []


async def test_a_user_token_is_not_cut(
    anonymous: httpx.AsyncClient,
    runtime: Runtime,
    sandbox: SandboxState,
    dataset: SandboxDataset,
    pair: tuple[str, str],
) -> None:
    """The cut is the patient compartment's, not a general rule: a practitioner's search of
    two patients asks the vendor for both."""
    mine, theirs = pair
    doctor = dataset.endpoint("doctors")[0]["id"]
    practitioner = token(runtime, "user/*.rs", fhir_user=f"Practitioner/{doctor}")
    await runtime.service.context()
    before = len(sandbox.request_log)
    response = await anonymous.get(
        f"/fhir/Condition?patient={mine},{theirs}",
        headers={"Authorization": f"Bearer {practitioner}"},
    )
    assert response.status_code == 200
    calls = sandbox.request_log[before:]
    assert naming(calls, mine) and naming(calls, theirs)
