"""Cross-patient leakage, for every vendor: with one patient's token, every type, search,
include, revinclude, read, operation and file aimed at another patient's data finds nothing.

The other patient's ids are the ones facade really serves them under (found with a system
token), so each refusal is of something that exists: record ids, and compartment ids that
carry the patient's own key (a coverage, a related person, a generated C-CDA), sampled from
every source. The token is got four ways: minted by the operator with patient/*.rs; minted
with user/*.rs for a patient (the FHIR access check alone must confine it); and through a real
patient login whose app asked for user/*.rs, once with an operator's public app (`facade
client add --public`, no --scope) and once with an app that registered itself (POST
/auth/register). Every case runs answered live and answered from the mirror.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from facade.app import create_app
from facade.core.compartment import CompartmentMapping
from facade.core.confinement import patient_of_id
from facade.runtime import Runtime
from tests.auth.conftest import PASSWORD
from tests.auth.logins import login_token, operator_public_app, self_registered_app
from tests.chart import every_resource, patient_of
from tests.conftest import FACADE_BASE, FHIR_BASE, all_pages
from tests.mirror.serving import mirror_on
from tests.tokens import token
from tests.vendors import VENDORS, patient_ids, per_vendor, registry, vendor_calls


def patient_data(vendor_name: str) -> list[str]:
    """Patient and every patient-compartment type the vendor serves."""
    served = registry(vendor_name)
    return ["Patient"] + [m.resource_type for m in served if isinstance(m, CompartmentMapping)]


#: What the attacking app asks for: everything, as any practitioner's app would.
ASKED_BY_THE_APP = "launch/patient openid fhirUser user/*.rs patient/*.rs"
TOKEN_SOURCES = [
    "operator, patient/*.rs",
    "operator, user/*.rs for a patient",
    "patient login, operator's public app asking user/*.rs",
    "patient login, self-registered app asking user/*.rs",
]
#: Ids read per source: enough to cover each id form a source writes, few enough to be quick.
READS_PER_SOURCE = 3


def owner(resource: dict) -> str | None:
    return resource["id"] if resource["resourceType"] == "Patient" else patient_of(resource)


def sampled(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first few resources of each source (the id's `<source>-` prefix)."""
    taken: dict[str, int] = {}
    chosen = []
    for resource in resources:
        source = resource["id"].split("-", 1)[0] if "-" in resource["id"] else ""
        if taken.get(source, 0) < READS_PER_SOURCE:
            taken[source] = taken.get(source, 0) + 1
            chosen.append(resource)
    return chosen


def sources(resources: list[dict[str, Any]]) -> set[str]:
    return {r["id"].split("-", 1)[0] for r in resources}


def binaries(resource: dict[str, Any]) -> list[str]:
    """The facade Binary urls a resource's attachments name."""
    urls = [c.get("attachment", {}).get("url", "") for c in resource.get("content", [])]
    return [url for url in urls if url.startswith("Binary/")]


@pytest.fixture(params=["live", "mirror"], autouse=True)
async def serving(request: pytest.FixtureRequest, runtime: Runtime) -> str:
    """Every case twice: answered live, and from the mirror (backfilled first)."""
    if request.param == "mirror":
        await mirror_on(runtime)
    return str(request.param)


@pytest.fixture
async def browser(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A user agent with no token of its own: it keeps the login session's cookie."""
    app = create_app(runtime.settings, runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=FACADE_BASE
    ) as client:
        yield client


async def patient_token(
    source: str, runtime: Runtime, browser: httpx.AsyncClient, patient_id: str
) -> str:
    if source == "operator, patient/*.rs":
        return token(runtime, "patient/*.rs launch/patient", patient_id=patient_id)
    if source == "operator, user/*.rs for a patient":
        fhir_user = f"Patient/{patient_id}"
        return token(
            runtime, "user/*.rs launch/patient", patient_id=patient_id, fhir_user=fhir_user
        )
    authority = runtime.authorization
    assert authority is not None
    authority.users.create("leaky", PASSWORD, f"Patient/{patient_id}")
    app = (
        operator_public_app(runtime)
        if "operator's" in source
        else await self_registered_app(browser, authority)
    )
    body = await login_token(browser, app, "leaky", ASKED_BY_THE_APP)
    assert body["patient"] == patient_id
    assert not [s for s in body["scope"].split() if s.startswith(("user/", "system/"))]
    return str(body["access_token"])


async def theirs_served(
    fhir: httpx.AsyncClient, resource_type: str, mapping: Any, theirs: str
) -> list[dict[str, Any]]:
    """Everything of `resource_type` facade serves for patient `theirs` (system token):
    searched, and what the type's operations answer for them (the C-CDA $docref makes)."""
    if resource_type == "Patient":
        read = await fhir.get(f"/fhir/Patient/{theirs}")
        assert read.status_code == 200, read.text
        return [read.json()]
    found = await every_resource(fhir, resource_type, [theirs])
    for name in getattr(mapping, "operations", {}):
        answered = await fhir.get(f"/fhir/{resource_type}/${name}?patient={theirs}")
        assert answered.status_code == 200, answered.text
        found += [entry["resource"] for entry in answered.json().get("entry", [])]
    return found


_RICHEST: dict[tuple[str, str], str] = {}


async def richest(
    fhir: httpx.AsyncClient, vendor_name: str, resource_type: str, mapping: Any, patients: list[str]
) -> tuple[str, list[dict[str, Any]]]:
    """The patient with resources from the most sources of this type, and those resources.
    The sandboxes are generated from a fixed seed, so the choice is remembered per vendor."""
    chosen = _RICHEST.get((vendor_name, resource_type))
    if chosen is not None:
        return chosen, await theirs_served(fhir, resource_type, mapping, chosen)
    best: tuple[str, list[dict[str, Any]]] = (patients[0], [])
    for patient in patients:
        served = await theirs_served(fhir, resource_type, mapping, patient)
        if len(sources(served)) > len(sources(best[1])):
            best = (patient, served)
    assert best[1], f"no other patient has a {resource_type}: nothing to leak"
    _RICHEST[vendor_name, resource_type] = best[0]
    return best


def searches_for(
    resource_type: str, mapping: Any, theirs: str, reads: list[dict[str, Any]]
) -> list[str]:
    """Every way a search can name the other patient or their resources."""
    includes = [i.name for i in mapping.includes]
    if resource_type == "Patient":
        named = [f"_id={theirs}", f"_id={theirs.upper()}"]
        named += [
            f"identifier={quote(i['system'] + '|' + i['value'])}"
            for r in reads
            for i in r.get("identifier", [])
            if "system" in i and "value" in i
        ]
    else:
        references = [theirs, f"Patient/{theirs}", f"{FHIR_BASE}/Patient/{theirs}"]
        named = [f"patient={quote(r)}" for r in references] + [f"patient:Patient={theirs}"]
    queries = [
        *named,
        f"{named[0]}&_revinclude=Provenance:target",
        *[f"{named[0]}&_include={quote(name)}" for name in includes],
    ]
    if reads:
        queries.append(f"_id={','.join(r['id'] for r in reads)}")
    return queries


async def assert_practice_data_only(
    fhir: httpx.AsyncClient,
    access: dict[str, str],
    resources: list[dict[str, Any]],
    served: set[str],
) -> None:
    """What the other patient's resources reference outside the compartment (practitioners,
    locations, the practice, their payers) is readable only if the practice lists it: one
    built from their record (a payer their insurance names) is not."""
    listed: dict[str, set[str]] = {}
    for reference in sorted(
        {v for r in resources for v in references_in(r) if v.split("/")[0] not in served}
    ):
        kind, _, target = reference.partition("/")
        read = await fhir.get(f"/fhir/{reference}", headers=access)
        if read.status_code == 404:
            continue
        assert read.status_code == 200, (reference, read.text)
        if kind not in listed:
            listed[kind] = {r["id"] for r in await all_pages(fhir, f"/fhir/{kind}?_count=250")}
        assert target in listed[kind], f"{reference} is theirs, not the practice's"


def references_in(value: Any) -> list[str]:
    """Every relative `Type/id` reference anywhere in a resource."""
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in references_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in references_in(v)]
    return []


@pytest.mark.parametrize("source", TOKEN_SOURCES)
@per_vendor("resource_type", patient_data)
async def test_one_patients_token_reaches_nothing_of_another(
    fhir: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    runtime: Runtime,
    sandbox: Any,
    vendor_name: str,
    resource_type: str,
    source: str,
) -> None:
    mine, *others = patient_ids(sandbox)
    access = {"Authorization": f"Bearer {await patient_token(source, runtime, browser, mine)}"}
    mapping = runtime.service.registry.get(resource_type)
    served = set(patient_data(vendor_name))
    theirs, theirs_all = await richest(fhir, vendor_name, resource_type, mapping, others)
    reads = sampled(theirs_all)
    for query in searches_for(resource_type, mapping, theirs, reads):
        found = await all_pages(fhir, f"/fhir/{resource_type}?{query}", headers=access)
        assert found == [], (query, [r["id"] for r in found])
    for resource in reads:
        for read_id in (resource["id"], resource["id"].upper()):
            read = await fhir.get(f"/fhir/{resource_type}/{read_id}", headers=access)
            assert read.status_code == 404, read_id
        provenance = await fhir.get(
            f"/fhir/Provenance/{resource_type}-{resource['id']}", headers=access
        )
        assert provenance.status_code == 404
        for url in binaries(resource):
            assert (await fhir.get(f"/fhir/{url}")).status_code == 200, url
            assert (await fhir.get(f"/fhir/{url}", headers=access)).status_code == 404, url
    await assert_practice_data_only(fhir, access, theirs_all, served)
    for name in getattr(mapping, "operations", {}):
        for named in (theirs, f"Patient/{theirs}"):
            asked = await fhir.get(f"/fhir/{resource_type}/${name}?patient={named}", headers=access)
            assert asked.status_code == 404, (name, asked.text)
        posted = await fhir.post(
            f"/fhir/{resource_type}/${name}",
            json={
                "resourceType": "Parameters",
                "parameter": [{"name": "patient", "valueId": theirs}],
            },
            headers={**access, "Content-Type": "application/fhir+json"},
        )
        assert posted.status_code == 404, (name, posted.text)
    both = f"_id={mine},{theirs}" if resource_type == "Patient" else f"patient={mine},{theirs}"
    includes = [f"_include={quote(i.name)}" for i in mapping.includes]
    for query in ["", both, "_revinclude=Provenance:target", *includes]:
        own = await all_pages(fhir, f"/fhir/{resource_type}?{query}", headers=access)
        for resource in own:
            if resource["resourceType"] in served:
                assert owner(resource) == mine, (query, resource["resourceType"], resource["id"])
    for resource in sampled(own):  # the refusals above are not a token that reads nothing
        if resource["resourceType"] == resource_type:
            read = await fhir.get(f"/fhir/{resource_type}/{resource['id']}", headers=access)
            assert read.status_code == 200, (resource["id"], read.text)


@VENDORS
async def test_another_patients_payer_is_refused_before_any_vendor_call(
    fhir: httpx.AsyncClient, runtime: Runtime, sandbox: Any
) -> None:
    """A payer Organization is built from one patient's insurance, and its id names that
    patient: its owner reads it, anyone else's patient token is refused without a call."""
    payers = {}
    for patient in patient_ids(sandbox):
        coverage = await all_pages(fhir, f"/fhir/Coverage?patient={patient}")
        named = [p["reference"] for c in coverage for p in c.get("payor", [])]
        if named:
            payers[patient] = named[0]
    (mine, own_payer), (_, their_payer) = list(payers.items())[:2]
    access = {"Authorization": f"Bearer {token(runtime, 'patient/*.rs', patient_id=mine)}"}
    assert (await fhir.get(f"/fhir/{own_payer}", headers=access)).status_code == 200
    before = len(vendor_calls(sandbox))
    assert (await fhir.get(f"/fhir/{their_payer}", headers=access)).status_code == 404
    provenance = f"/fhir/Provenance/{their_payer.replace('/', '-')}"
    assert (await fhir.get(provenance, headers=access)).status_code == 404
    assert vendor_calls(sandbox)[before:] == []


@VENDORS
async def test_ids_that_carry_another_patients_key_are_refused_before_any_vendor_call(
    fhir: httpx.AsyncClient, runtime: Runtime, sandbox: Any
) -> None:
    """Sources read from the patient record (a coverage, a related person, the C-CDA) write
    the patient's key into their ids: each such id names exactly its patient, and another
    patient's token is refused it without asking the vendor."""
    served = runtime.service.registry
    patient_endpoint = served.get("Patient").endpoint
    keyed = {
        (mapping.resource_type, source.name): mapping
        for mapping in served
        if isinstance(mapping, CompartmentMapping)
        for source in mapping.sources
        if source.endpoint == patient_endpoint
    }
    assert keyed, "the vendor has sources read from the patient record"
    mine, *others = patient_ids(sandbox)
    theirs: dict[tuple[str, str], dict[str, Any]] = {}
    for (resource_type, name), mapping in keyed.items():
        for patient in others:
            resources = await theirs_served(fhir, resource_type, mapping, patient)
            found = [r for r in resources if r["id"].split("-", 1)[0] == name]
            if found:
                theirs[resource_type, name] = found[0]
                break
    assert theirs.keys() == keyed.keys(), "another patient has a resource of every such source"
    access = {"Authorization": f"Bearer {token(runtime, 'patient/*.rs', patient_id=mine)}"}
    await runtime.service.context()
    before = len(vendor_calls(sandbox))
    for (resource_type, _), resource in theirs.items():
        named = patient_of_id(served, resource_type, resource["id"])
        assert named == owner(resource) != mine, resource["id"]
        read = await fhir.get(f"/fhir/{resource_type}/{resource['id']}", headers=access)
        assert read.status_code == 404, resource["id"]
        assert read.headers["X-Upstream-Calls"] == "0", resource["id"]
    assert vendor_calls(sandbox)[before:] == []
