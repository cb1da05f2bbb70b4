"""The CapabilityStatement, built from the mapping registry: it claims exactly what the
declarations serve, with each search parameter's published definition and how it is served.
"""

from __future__ import annotations

from typing import Any

from facade import __version__
from facade.auth.server.discovery import AuthEndpoints
from facade.core.compartment import CompartmentMapping
from facade.core.mapping import (
    ById,
    LocalFilter,
    NoChangeTime,
    PatientParam,
    Pushdown,
    ResourceMapping,
    SearchParam,
    Unsupported,
)
from facade.core.provenance import PROFILE as PROVENANCE_PROFILE
from facade.core.registry import AnyMapping, MappingRegistry
from facade.core.vendor import Wire
from facade.fhir.uscore import us_core_search

US_CORE_SERVER = "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server"
US_CORE_IG = "http://hl7.org/fhir/us/core/ImplementationGuide/hl7.fhir.us.core"
COMBINATION = (
    "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"
)
EXPECTATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation"


#: Operations facade can declare, by name, with their published definitions.
OPERATION_DEFINITIONS = {"docref": "http://hl7.org/fhir/us/core/OperationDefinition/docref"}
BULK = "http://hl7.org/fhir/uv/bulkdata"


def serving_note(mapping: AnyMapping, code: str, registry: MappingRegistry) -> str:
    """How `mapping` serves search parameter `code`, naming the vendor endpoints the way the
    registry's vendor writes them."""
    path = registry.endpoint_path
    param = mapping.param(code)
    if param is None:
        return ""
    serve = param.serve
    if isinstance(serve, Unsupported):
        return f"unsupported: {serve.reason}"
    if isinstance(mapping, ResourceMapping) and mapping.lookup_data:
        return (
            f"filtered locally over the practice list ({path(mapping.endpoint)}, "
            "one cached vendor call)"
        )
    if isinstance(serve, Pushdown):
        return f"pushed down to the EHR: {serve.describe}"
    if isinstance(serve, ById):
        return f"read by id: {serve.describe}"
    if isinstance(serve, PatientParam):
        # Each endpoint once: several sources may read the same vendor list.
        sources = getattr(mapping, "sources", ())
        endpoints = ", ".join(dict.fromkeys(path(s.endpoint) for s in sources))
        return f"{serve.describe} ({endpoints})"
    assert isinstance(serve, LocalFilter)
    return serve.describe


def _profiles(mapping: AnyMapping) -> list[str]:
    if isinstance(mapping, CompartmentMapping):
        return list(mapping.profiles)
    return [mapping.profile]


def _served(mapping: AnyMapping, code: str) -> bool:
    param = mapping.param(code)
    return param is not None and not isinstance(param.serve, Unsupported)


#: What the mirror changes in a parameter's serving (`capability_statement(mirror=True)`).
MIRROR_SEARCH_NOTE = (
    "from the mirror when it holds the type's records (no EHR call): filtered locally over "
    "every record it keeps; live: "
)
MIRROR_LAST_UPDATED_NOTE = (
    "exact from the mirror: each resource's meta.lastUpdated is the EHR change time stored "
    "with its record, compared over every record the mirror keeps (no EHR call); live: "
)


def _search_param(
    mapping: AnyMapping, param: SearchParam, registry: MappingRegistry, mirror: bool
) -> Any:
    """A served parameter, with US Core's expectation of it (SHALL/SHOULD/MAY) when US Core
    lists it: single parameters carry theirs here, combinations on the resource."""
    entry: dict[str, Any] = {}
    expectation = us_core_search(mapping.resource_type).expectation(param.code)
    if expectation:
        entry["extension"] = [{"url": EXPECTATION, "valueCode": expectation}]
    entry.update(
        name=param.code,
        definition=param.definition.url,
        type=param.definition.type,
        documentation=_mirrored(
            serving_note(mapping, param.code, registry), param.code, mirror, mapping
        ),
    )
    return entry


def _mirrored(note: str, code: str, mirror: bool, mapping: AnyMapping) -> str:
    if not mirror or (isinstance(mapping, ResourceMapping) and mapping.lookup_data):
        return note
    if code == "_lastUpdated":
        return MIRROR_LAST_UPDATED_NOTE + note
    param = mapping.param(code)
    if param is not None and isinstance(param.serve, Pushdown):
        return MIRROR_SEARCH_NOTE + note
    return note


def _resource(mapping: AnyMapping, registry: MappingRegistry, mirror: bool) -> dict[str, Any]:
    search_params = [
        _search_param(mapping, p, registry, mirror)
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
        "supportedProfile": _profiles(mapping),
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
        "searchInclude": [include.name for include in mapping.includes],
        "searchRevInclude": ["Provenance:target"],
        "searchParam": search_params,
    }
    if not entry["searchInclude"]:
        del entry["searchInclude"]
    operations = getattr(mapping, "operations", {})
    if operations:
        entry["operation"] = [
            {"name": name, "definition": OPERATION_DEFINITIONS[name]} for name in operations
        ]
    combos = [
        {
            "url": COMBINATION,
            "extension": [{"url": EXPECTATION, "valueCode": expectation}]
            + [{"url": "required", "valueString": code} for code in codes],
        }
        for codes, expectation in mapping.combinations
        if all(_served(mapping, code) for code in codes)
    ]
    if combos:
        entry["extension"] = combos
    if mapping.notes:
        entry["documentation"] = mapping.notes
    return entry


def _security(base_url: str) -> dict[str, Any]:
    """SMART on FHIR: the service coding and the oauth-uris extension, from the same
    endpoint list the discovery documents use."""
    endpoints = AuthEndpoints.for_fhir_base(base_url)
    uris = [
        ("authorize", endpoints.authorize),
        ("token", endpoints.token),
        ("introspect", endpoints.introspect),
        ("revoke", endpoints.revoke),
        ("register", endpoints.register),
    ]
    return {
        "cors": True,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                        "display": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": name, "valueUri": uri} for name, uri in uris],
            }
        ],
        "description": (
            "Every FHIR interaction but /metadata needs a bearer token from facade's SMART "
            "authorization server; see .well-known/smart-configuration."
        ),
    }


#: How an export answers `_since` with the mirror on (before the live note).
MIRROR_SINCE_NOTE = (
    "From the mirror (when it holds every listing the export reads, no EHR call): `_since` is "
    "exact, compared with the EHR change time stored with each record. Live: "
)


def export_since_note(registry: MappingRegistry, wire: Wire) -> str:
    """How an export answers `_since` (Markdown): whether the vendor can list changed records
    (its wire's `since_param`), the sources whose records keep no change time (from their
    `last_updated` declarations), and what Patient and Group exports add."""
    unchanged: dict[tuple[str, str], None] = {}
    for mapping in sorted(registry, key=lambda m: m.resource_type):
        if isinstance(mapping, ResourceMapping):
            declared = [mapping.last_updated]
        else:
            declared = [source.last_updated for source in mapping.sources]
        for last_updated in declared:
            if isinstance(last_updated, NoChangeTime):
                unchanged[(mapping.resource_type, last_updated.reason)] = None
    sources = "\n".join(f"- {t}: {reason}" for t, reason in unchanged)
    asked = (
        "the EHR is asked for records changed since a day earlier where it can filter, and "
        "facade checks the exact instant"
        if wire.since_param
        else "the EHR cannot list records changed since a moment, so an export reads every "
        "record and facade filters `_since` locally, to the exact instant"
    )
    return (
        "`_since`: a resource is exported when its `meta.lastUpdated` (the EHR record's update "
        f"time, or its creation time when it was never updated) is after `_since`; {asked}."
        f"{_by_patient_note(registry)} These sources keep no change time, so their resources "
        "carry no `meta.lastUpdated` and are always included (facade cannot prove they did not "
        f"change):\n\n{sources}\n\nPatient and Group exports also carry, once each, the "
        "Practitioner, PractitionerRole, Organization (Coverage payers too) and Location "
        "resources their lines reference (with `_type` naming practice types alone: those "
        "the members' Patient records reference)."
    )


def _by_patient_note(registry: MappingRegistry) -> str:
    """What an export does with the types the EHR lists only patient by patient (from their
    sources' `BulkListing.per_patient`), or "" when it lists every type practice-wide."""
    types = sorted(
        {
            mapping.resource_type
            for mapping in registry
            if isinstance(mapping, CompartmentMapping)
            for source in mapping.sources
            if source.bulk is not None and source.bulk.per_patient
        }
    )
    if not types:
        return ""
    return (
        f" The EHR lists {', '.join(types)} only patient by patient: an export asks for each "
        "of its patients' records whole (one call per patient, shared by every type read "
        "from it) and checks `_since` itself."
    )


def _with_patient_export(entry: dict[str, Any]) -> dict[str, Any]:
    if entry["type"] == "Patient":
        entry.setdefault("operation", []).append(
            {"name": "export", "definition": f"{BULK}/OperationDefinition/patient-export"}
        )
    return entry


def _group_entry() -> dict[str, Any]:
    return {
        "type": "Group",
        "profile": "http://hl7.org/fhir/StructureDefinition/Group",
        "interaction": [
            {"code": "read"},
            {"code": "search-type"},
            {"code": "create", "documentation": "operator-defined attribution lists"},
        ],
        "operation": [{"name": "export", "definition": f"{BULK}/OperationDefinition/group-export"}],
        "documentation": (
            "Each doctor's panel and each office's patients, from the EHR, plus groups an "
            "operator or a backend client with a Group write scope defines."
        ),
    }


def _binary_entry() -> dict[str, Any]:
    return {
        "type": "Binary",
        "profile": "http://hl7.org/fhir/StructureDefinition/Binary",
        "interaction": [{"code": "read"}],
        "documentation": "The files behind DocumentReference attachments (scanned documents).",
    }


def _provenance_entry() -> dict[str, Any]:
    return {
        "type": "Provenance",
        "profile": "http://hl7.org/fhir/StructureDefinition/Provenance",
        "supportedProfile": [PROVENANCE_PROFILE],
        "interaction": [{"code": "read"}],
        "documentation": (
            "Every resource has a Provenance (author: the practice and its doctor; transmitter: "
            "facade), reachable by _revinclude=Provenance:target and by read."
        ),
    }


def capability_statement(
    registry: MappingRegistry, wire: Wire, base_url: str, date: str, *, mirror: bool = False
) -> dict[str, Any]:
    """What facade serves over the vendor of `registry`, whose client carries `wire`; with
    `mirror`, from the change-capture mirror where it holds the records."""
    stores = (
        f"With the change-capture mirror on, it answers from an encrypted copy of the "
        f"{registry.vendor} records it keeps in sync (no vendor call) wherever the copy holds "
        "a type's records, and from the API otherwise. A request with 'Cache-Control: "
        "no-cache' is answered from the API; 'max-age=N' takes the copy only when it was "
        "synced within N seconds. Answers from the copy carry Age, Last-Modified and ETag."
        if mirror
        else "It stores no clinical data."
    )
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
            f"{registry.vendor} API. {stores}"
        ),
        "kind": "instance",
        "instantiates": [
            f"{US_CORE_SERVER}|6.1.0",
            f"{BULK}/CapabilityStatement/bulk-data|2.0.0",
        ],
        "software": {"name": "facade", "version": __version__},
        "implementation": {"description": f"facade over {registry.vendor}", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "implementationGuide": [f"{US_CORE_IG}|6.1.0"],
        "rest": [
            {
                "mode": "server",
                "security": _security(base_url),
                "documentation": (
                    "Unknown search parameters are refused with 400 unless the request carries "
                    "'Prefer: handling=lenient'. Paging links carry an opaque cursor."
                ),
                "resource": sorted(
                    [_with_patient_export(_resource(m, registry, mirror)) for m in registry]
                    + [_provenance_entry(), _group_entry(), _binary_entry()],
                    key=lambda entry: str(entry["type"]),
                ),
                "operation": [
                    {
                        "name": "export",
                        "definition": f"{BULK}/OperationDefinition/export",
                        "documentation": (MIRROR_SINCE_NOTE if mirror else "")
                        + export_since_note(registry, wire),
                    }
                ],
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
        profile = ", ".join(p.rsplit("/", 1)[-1] for p in _profiles(mapping))
        for param in mapping.search_params:
            lines.append(
                f"| {mapping.resource_type} | {profile} | `{param.code}` | "
                f"{serving_note(mapping, param.code, registry)} |"
            )
    return "\n".join(lines)
