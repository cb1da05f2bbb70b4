"""The CapabilityStatement, built from the mapping registry: it claims exactly what the
declarations serve, with each search parameter's published definition and how it is served.
"""

from __future__ import annotations

from typing import Any

from facade import __version__
from facade.core.mapping import ById, LocalFilter, Pushdown, ResourceMapping, Unsupported
from facade.core.registry import MappingRegistry

US_CORE_SERVER = "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server"
US_CORE_IG = "http://hl7.org/fhir/us/core/ImplementationGuide/hl7.fhir.us.core"
COMBINATION = (
    "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"
)
EXPECTATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation"


def serving_note(mapping: ResourceMapping, code: str) -> str:
    param = mapping.param(code)
    if param is None:
        return ""
    serve = param.serve
    if isinstance(serve, Unsupported):
        return f"unsupported: {serve.reason}"
    if mapping.lookup_data:
        return (
            f"filtered locally over the practice list (/api/{mapping.endpoint}, "
            "one cached vendor call)"
        )
    if isinstance(serve, Pushdown):
        return f"pushed down to the EHR: {serve.describe}"
    if isinstance(serve, ById):
        return f"read by id: {serve.describe}"
    assert isinstance(serve, LocalFilter)
    return serve.describe


def _resource(mapping: ResourceMapping) -> dict[str, Any]:
    search_params = [
        {
            "name": p.code,
            "definition": p.definition.url,
            "type": p.definition.type,
            "documentation": serving_note(mapping, p.code),
        }
        for p in mapping.search_params
        if not isinstance(p.serve, Unsupported)
    ]
    search_params.append(
        {
            "name": "_count",
            "definition": "http://hl7.org/fhir/SearchParameter/Resource-count",
            "type": "number",
            "documentation": "page size, at most the server's maximum (larger values are reduced)",
        }
    )
    entry: dict[str, Any] = {
        "type": mapping.resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{mapping.resource_type}",
        "supportedProfile": [mapping.profile],
        "interaction": [
            {"code": "read"},
            {"code": "search-type", "documentation": "GET and POST [type]/_search"},
        ],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": search_params,
    }
    combos = [
        {
            "url": COMBINATION,
            "extension": [{"url": EXPECTATION, "valueCode": expectation}]
            + [{"url": "required", "valueString": code} for code in codes],
        }
        for codes, expectation in mapping.combinations
        if all(mapping.param(code) is not None for code in codes)
    ]
    if combos:
        entry["extension"] = combos
    if mapping.notes:
        entry["documentation"] = mapping.notes
    return entry


def capability_statement(registry: MappingRegistry, base_url: str, date: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "id": "facade",
        "url": f"{base_url}/metadata",
        "version": __version__,
        "name": "FacadeCapabilityStatement",
        "title": f"facade US Core 6.1.0 server over {registry.vendor}",
        "status": "active",
        "experimental": False,
        "date": date,
        "publisher": "facade",
        "description": (
            "A FHIR R4 server that answers US Core 6.1.0 reads and searches from the "
            f"{registry.vendor} API. It stores no clinical data."
        ),
        "kind": "instance",
        "instantiates": [f"{US_CORE_SERVER}|6.1.0"],
        "software": {"name": "facade", "version": __version__},
        "implementation": {"description": f"facade over {registry.vendor}", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "implementationGuide": [f"{US_CORE_IG}|6.1.0"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Unknown search parameters are refused with 400 unless the request carries "
                    "'Prefer: handling=lenient'. Paging links carry an opaque cursor."
                ),
                "resource": [_resource(m) for m in sorted(registry, key=lambda m: m.resource_type)],
            }
        ],
    }


def support_matrix(registry: MappingRegistry) -> str:
    """The README's support matrix (Markdown), from the same declarations."""
    lines = [
        "| Resource | Profile | Search parameter | How it is served |",
        "| --- | --- | --- | --- |",
    ]
    for mapping in sorted(registry, key=lambda m: m.resource_type):
        profile = mapping.profile.rsplit("/", 1)[-1]
        for param in mapping.search_params:
            lines.append(
                f"| {mapping.resource_type} | {profile} | `{param.code}` | "
                f"{serving_note(mapping, param.code)} |"
            )
    return "\n".join(lines)
