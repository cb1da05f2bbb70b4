"""Cross-patient leakage: with one patient's token, every type, search, include,
revinclude and read aimed at another patient's data finds nothing.

The token is got four ways: minted by the operator with patient/*.rs; minted with user/*.rs
for a patient (the FHIR access check alone must confine it); and through a real patient
login whose app asked for user/*.rs, once with an operator's public app (`facade client add
--public`, no --scope) and once with an app that registered itself (POST /auth/register).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from facade.app import create_app
from facade.core.compartment import CompartmentMapping
from facade.runtime import Runtime
from facade.upstream.drchrono.sandbox.dataset import SandboxDataset
from mappings.drchrono import REGISTRY
from tests.auth.conftest import PASSWORD
from tests.auth.logins import login_token, operator_public_app, self_registered_app
from tests.chart import every_resource, patient_of
from tests.conftest import FACADE_BASE, all_pages
from tests.tokens import token

PATIENT_DATA = ["Patient"] + [
    m.resource_type for m in REGISTRY if isinstance(m, CompartmentMapping)
]


#: What the attacking app asks for: everything, as any practitioner's app would.
ASKED_BY_THE_APP = "launch/patient openid fhirUser user/*.rs patient/*.rs"
TOKEN_SOURCES = [
    "operator, patient/*.rs",
    "operator, user/*.rs for a patient",
    "patient login, operator's public app asking user/*.rs",
    "patient login, self-registered app asking user/*.rs",
]


def owner(resource: dict) -> str | None:
    return resource["id"] if resource["resourceType"] == "Patient" else patient_of(resource)


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


@pytest.mark.parametrize("source", TOKEN_SOURCES)
@pytest.mark.parametrize("resource_type", PATIENT_DATA)
async def test_one_patients_token_reaches_nothing_of_another(
    fhir: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    runtime: Runtime,
    dataset: SandboxDataset,
    resource_type: str,
    source: str,
) -> None:
    mine, theirs = (str(p["id"]) for p in dataset.endpoint("patients")[:2])
    access = {"Authorization": f"Bearer {await patient_token(source, runtime, browser, mine)}"}
    system = {"Authorization": f"Bearer {token(runtime)}"}
    theirs_all = (
        await every_resource(fhir, resource_type, [theirs])
        if resource_type != "Patient"
        else [(await fhir.get(f"/fhir/Patient/{theirs}", headers=system)).json()]
    )
    mapping = REGISTRY.get(resource_type)
    includes = [i.name for i in mapping.includes]
    scope = f"patient={theirs}" if resource_type != "Patient" else f"_id={theirs}"
    queries = [
        scope,
        f"{scope}&_revinclude=Provenance:target",
        *[f"{scope}&_include={quote(name)}" for name in includes],
    ]
    if theirs_all:
        ids = ",".join(r["id"] for r in theirs_all[:10])
        queries.append(f"_id={ids}")
    for query in queries:
        found = await all_pages(fhir, f"/fhir/{resource_type}?{query}", headers=access)
        assert found == [], (query, [r["id"] for r in found])
    for resource in theirs_all[:10]:
        read = await fhir.get(f"/fhir/{resource_type}/{resource['id']}", headers=access)
        assert read.status_code == 404, resource["id"]
        provenance = await fhir.get(
            f"/fhir/Provenance/{resource_type}-{resource['id']}", headers=access
        )
        assert provenance.status_code == 404
    if resource_type != "Patient":
        own = await all_pages(
            fhir, f"/fhir/{resource_type}?_revinclude=Provenance:target", headers=access
        )
        for resource in own:
            if resource["resourceType"] == resource_type:
                assert owner(resource) == mine, resource["id"]
