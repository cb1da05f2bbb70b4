"""The OpenAPI description (capability/openapi.py) is valid OpenAPI 3.1, describes exactly the
search parameters the mapping declarations serve, and names only routes facade really has."""

from __future__ import annotations

import re

import httpx
import pytest
import schemathesis

from capability.openapi import openapi_document
from facade.core.mapping import Unsupported
from mappings.drchrono import REGISTRY
from tests.conftest import FACADE_BASE


@pytest.fixture(scope="module")
def document() -> dict:
    return openapi_document(REGISTRY, server_url=FACADE_BASE)


def _query_names(operation: dict) -> set[str]:
    return {p["name"] for p in operation["parameters"] if p["in"] == "query"}


def test_document_is_valid_openapi_3_1(document: dict) -> None:
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()


def test_a_broken_document_fails_validation(document: dict) -> None:
    """The validity check above can fail."""
    broken = {**document, "paths": {"/fhir/metadata": {"get": {"parameters": [{"in": "x"}]}}}}
    with pytest.raises(Exception, match="parameter|in"):
        schemathesis.openapi.from_dict(broken).validate()


@pytest.mark.parametrize("mapping", list(REGISTRY), ids=lambda m: m.resource_type)
def test_search_parameters_are_the_declared_ones(document: dict, mapping) -> None:
    supported = {p.code for p in mapping.search_params if not isinstance(p.serve, Unsupported)}
    refused = {p.code for p in mapping.search_params if isinstance(p.serve, Unsupported)}
    get = document["paths"][f"/fhir/{mapping.resource_type}"]["get"]
    post = document["paths"][f"/fhir/{mapping.resource_type}/_search"]["post"]
    form = post["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    for names in (_query_names(get), set(form["properties"])):
        codes = {name.split(":")[0] for name in names if not name.startswith("_")}
        codes |= {name for name in names if name in supported}
        assert supported <= names
        assert codes - {"_id", "_lastUpdated"} == supported - {"_id", "_lastUpdated"}
        assert not refused & names
        assert {"_count", "_revinclude", "_format", "_cursor"} <= names


def test_date_parameters_carry_their_declared_prefixes(document: dict) -> None:
    get = document["paths"]["/fhir/Patient"]["get"]
    birthdate = next(p for p in get["parameters"] if p["name"] == "birthdate")
    pattern = re.compile(birthdate["schema"]["pattern"])
    for value in (
        "1970",
        "ge1970-01",
        "lt2000-02-03",
        "1999-12-31T23:59:59.123+14:00",
        "2000,2001",
    ):
        assert pattern.search(value), value
    for value in ("xx1970", "1970-1", "yesterday", ""):
        assert not pattern.search(value), value


async def test_every_described_operation_is_a_served_route(
    document: dict, fhir: httpx.AsyncClient
) -> None:
    """No operation describes an address facade does not route (the generic 404 'nothing at
    this address' or a 405 would mean the description invented it)."""
    for path, item in document["paths"].items():
        url = re.sub(r"\{[^}]+\}", "x1", path)
        for method in item:
            response = await fhir.request(method.upper(), url)
            assert response.status_code != 405, (method, path)
            if response.status_code == 404:
                assert "nothing at this address" not in response.text, (method, path)
