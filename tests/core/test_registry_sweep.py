"""A sweep over the whole registry: for every declared search parameter of every mapping,
a value taken from a real sandbox resource finds that resource, a value that matches
nothing finds nothing, and a pushdown actually reaches the vendor request."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from facade.core.compartment import CompartmentMapping
from facade.core.mapping import ById, Pushdown, ResourceMapping, Unsupported
from facade.fhir.definitions import SearchParamDefinition
from facade.fhir.matching import extract
from tests.chart import every_resource, patient_of
from tests.conftest import all_pages
from tests.vendors import patient_ids, per_vendor, registry


def cases(vendor_name: str) -> list[tuple[str, str]]:
    """Every served search parameter of the vendor's registry, by resource type."""
    return [
        (mapping.resource_type, param.code)
        for mapping in registry(vendor_name)
        for param in mapping.search_params
        if not isinstance(param.serve, Unsupported)
    ]


def sample_value(kind: str, element: Any) -> str | None:
    if kind == "string":
        if isinstance(element, str):
            return element[:3]
        for key in ("family", "city", "state", "postalCode", "text"):
            if isinstance(element.get(key), str):
                return str(element[key])[:3]
        for key in ("given", "line"):
            if element.get(key):
                return str(element[key][0])[:3]
        return None
    if kind == "token":
        if isinstance(element, str):
            return element
        if "system" in element and "value" in element:
            return f"{element['system']}|{element['value']}"
        coding = element["coding"][0] if element.get("coding") else element
        if "code" in coding:
            return f"{coding.get('system', '')}|{coding['code']}"
        return None
    if kind == "date":
        if isinstance(element, dict):  # a Period contains its start day only partly: ge
            start = element.get("start")
            return f"ge{str(start)[:10]}" if start else None
        return str(element)[:10] if isinstance(element, str) else None
    if kind == "reference":
        return element.get("reference") if isinstance(element, dict) else None
    return None


NO_MATCH = {
    "string": "zzqxj",
    "token": "urn:none|no-such-code",
    "date": "1801-01-01",
    "reference": "Patient/1",
}


def no_match(definition: SearchParamDefinition) -> str:
    """A value of the parameter's type that no sandbox resource has."""
    if definition.type == "reference":  # a reference of the type the parameter points at
        return f"{(definition.targets or ('Patient',))[0]}/1"
    return NO_MATCH[definition.type]


@per_vendor("resource_type,code", cases, ids="{}-{}".format)
async def test_parameter_finds_its_resource_and_drops_the_rest(
    warm_fhir: httpx.AsyncClient, sandbox: Any, vendor_name: str, resource_type: str, code: str
) -> None:
    mapping = registry(vendor_name).get(resource_type)
    param = mapping.param(code)
    assert param is not None
    definition = param.definition
    patients = patient_ids(sandbox)
    resources = await every_resource(warm_fhir, resource_type, patients, count=250)
    target, value = None, None
    for resource in resources:
        for element in extract(resource, definition.expression):
            value = sample_value(definition.type, element)
            if value:
                target = resource
                break
        if target:
            break
    assert target is not None and value, f"no sandbox {resource_type} has a value for {code}"

    compartment = isinstance(mapping, CompartmentMapping)
    scope = f"patient={patient_of(target)}&" if compartment and code != "patient" else ""
    before = len(sandbox.api_requests())
    found = await all_pages(warm_fhir, f"/fhir/{resource_type}?{scope}{code}={quote(value)}")
    assert target["id"] in {r["id"] for r in found}, (code, value)
    calls = sandbox.api_requests()[before:]

    serve = param.serve
    if (
        isinstance(serve, Pushdown)
        and isinstance(mapping, ResourceMapping)
        and not mapping.lookup_data
    ):
        pushed = serve.vendor_params(value, None)
        if pushed:
            assert any(pushed.items() <= c.query.items() for c in calls), (pushed, calls)
    if (
        isinstance(serve, ById)
        and isinstance(mapping, ResourceMapping)
        and not mapping.lookup_data
        and serve.vendor_id(value)
    ):
        assert any(c.path.endswith(f"/{serve.vendor_id(value)}") for c in calls)

    nothing = await all_pages(
        warm_fhir, f"/fhir/{resource_type}?{scope}{code}={quote(no_match(definition))}"
    )
    assert nothing == [], (code, [r["id"] for r in nothing])
