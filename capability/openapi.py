"""An OpenAPI 3.1 description of facade's HTTP surface (FHIR, SMART authorization, health),
built from the mapping registry like the CapabilityStatement, so it never drifts from what is
served. It is data for fuzzers and docs; nothing here serves a route or touches a vendor.
"""

from __future__ import annotations

import re
from typing import Any

from capability.openapi_auth import auth_paths
from capability.openapi_parts import (
    FHIR_JSON,
    STRING,
    Schema,
    components,
    fhir_answer,
    fhir_errors,
    form_body,
    html_answer,
    json_answer,
    operation,
    query_parameters,
    ref,
)
from capability.statement import OPERATION_DEFINITIONS, serving_note
from facade import __version__
from facade.bulk.request import KNOWN_PARAMETERS, OUTPUT_FORMATS, exportable_types
from facade.core.compartment import CompartmentMapping
from facade.core.mapping import PROVENANCE_REVINCLUDE, Unsupported
from facade.core.registry import AnyMapping, MappingRegistry
from facade.fhir.definitions import SearchParamDefinition
from facade.fhir.matching import SUPPORTED_MODIFIERS

#: The FHIR id rule (R4 `id` datatype), which facade's routes enforce before any lookup.
FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
#: The media type of /health answers (the IETF health-check draft).
HEALTH_JSON = "application/health+json"
#: `_format` values facade answers; anything else is 406.
FORMATS = ["json", "application/json", "application/fhir+json"]

#: Parameters of the operations a mapping may declare, from their published
#: OperationDefinitions (US Core docref), by operation name.
OPERATION_PARAMETERS: dict[str, dict[str, Schema]] = {
    "docref": {
        "patient": {"type": "string", "minLength": 1, "description": "Patient id or reference"},
        "start": {"type": "string", "format": "date"},
        "end": {"type": "string", "format": "date"},
        "type": {"type": "string", "minLength": 1, "description": "[system|]code"},
        "on-demand": {"type": "string", "enum": ["true", "false"]},
    }
}

#: The audit log search (`GET /fhir/AuditEvent`), served by facade itself, not by a mapping.
AUDIT_PARAMETERS: dict[str, Schema] = {
    "patient": {"type": "string", "minLength": 1},
    "agent": {"type": "string", "minLength": 1},
    "date": {"type": "string", "pattern": r"^(ge)?[0-9]{4}-[0-9]{2}-[0-9]{2}(T.*)?$"},
    "_count": {"type": "integer", "minimum": 1},
    "_offset": {"type": "integer", "minimum": 0},
}


def _date_pattern(comparators: tuple[str, ...], multiple_or: bool) -> str:
    """A FHIR date search value (R4 search §3.1.1.4): an optional prefix, then a date,
    partial date or dateTime with an optional zone."""
    prefixes = "|".join(sorted({"eq", *comparators}))
    value = (
        rf"({prefixes})?[0-9]{{4}}(-[0-9]{{2}}(-[0-9]{{2}}"
        r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
    )
    return f"^{value}(,{value})*$" if multiple_or else f"^{value}$"


def _value_schema(definition: SearchParamDefinition, note: str) -> Schema:
    kind = definition.type
    description = f"{kind} search value"
    if definition.multiple_or:
        description += "; comma-separated values are ORed"
    if note:
        description += f". Served: {note}"
    if kind == "date":
        pattern = _date_pattern(definition.comparators, definition.multiple_or)
        return {"type": "string", "pattern": pattern, "description": description}
    if kind == "token":
        description += " ([system|]code)"
    elif kind == "reference":
        description += " (id, Type/id or an absolute reference)"
    return {"type": "string", "minLength": 1, "description": description}


def _search_parameters(mapping: AnyMapping, registry: MappingRegistry) -> dict[str, Schema]:
    """Query parameter name (with modifier, when one applies) → value schema."""
    named: dict[str, Schema] = {}
    for param in mapping.search_params:
        if isinstance(param.serve, Unsupported):
            continue
        definition = param.definition
        schema = _value_schema(definition, serving_note(mapping, param.code, registry))
        named[param.code] = schema
        for modifier in sorted(SUPPORTED_MODIFIERS.get(definition.type, frozenset())):
            named[f"{param.code}:{modifier}"] = schema
    named["_count"] = {
        "type": "integer",
        "minimum": 1,
        "description": "page size; larger than the server's maximum is reduced to it",
    }
    if mapping.includes:
        named["_include"] = {
            "type": "array",
            "items": {"type": "string", "enum": [i.name for i in mapping.includes]},
        }
    named["_revinclude"] = {
        "type": "array",
        "items": {"type": "string", "enum": [PROVENANCE_REVINCLUDE]},
    }
    named["_format"] = {"type": "string", "enum": FORMATS}
    named["_cursor"] = {"type": "string", "description": "opaque paging cursor from a next link"}
    return named


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text.title())


_PREFER_LENIENT: Schema = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "enum": ["handling=lenient", "handling=strict"]},
}
_ID_PATH: Schema = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": FHIR_ID},
}


def _resource_paths(mapping: AnyMapping, registry: MappingRegistry) -> dict[str, Schema]:
    name = mapping.resource_type
    named = _search_parameters(mapping, registry)
    documentation = " Searches must name a patient (or _id)." if _patient_required(mapping) else ""
    paths: dict[str, Schema] = {
        f"/fhir/{name}": {
            "get": operation(
                f"search{name}",
                f"Search {name}.{documentation}",
                [*query_parameters(named), _PREFER_LENIENT],
                {**fhir_answer("200", "a searchset Bundle", "Bundle"), **fhir_errors()},
            )
        },
        f"/fhir/{name}/_search": {
            "post": operation(
                f"search{name}Post",
                f"Search {name} with the parameters in a form body.{documentation}",
                [_PREFER_LENIENT],
                {**fhir_answer("200", "a searchset Bundle", "Bundle"), **fhir_errors()},
                body=form_body(named),
            )
        },
        f"/fhir/{name}/{{id}}": {
            "get": operation(
                f"read{name}",
                f"Read one {name}",
                [_ID_PATH],
                {**fhir_answer("200", f"the {name}", "Resource"), **fhir_errors()},
            )
        },
    }
    for op_name in getattr(mapping, "operations", {}):
        parameters = OPERATION_PARAMETERS[op_name]
        summary = f"{name}/${op_name} ({OPERATION_DEFINITIONS[op_name]})"
        responses = {**fhir_answer("200", "a searchset Bundle", "Bundle"), **fhir_errors()}
        op_id = f"{name[0].lower()}{name[1:]}{_safe_id(op_name)}"
        paths[f"/fhir/{name}/${op_name}"] = {
            "get": operation(op_id, summary, query_parameters(parameters, ("patient",)), responses),
            "post": operation(
                f"{op_id}Post",
                summary,
                [],
                responses,
                body=form_body(parameters, ("patient",)),
            ),
        }
    return paths


def _patient_required(mapping: AnyMapping) -> bool:
    return isinstance(mapping, CompartmentMapping) and mapping.patient_required


def _export_paths(registry: MappingRegistry) -> dict[str, Schema]:
    """Bulk Data 2.0 kick-off at each level, status, cancel and file download."""
    kickoff_headers = [
        {
            "name": "Accept",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "enum": [FHIR_JSON]},
        },
        {
            "name": "Prefer",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "enum": ["respond-async"]},
        },
    ]
    accepted = {
        "202": {
            "description": "accepted; poll the Content-Location",
            "headers": {"Content-Location": {"schema": {"type": "string"}}},
        }
    }
    paths: dict[str, Schema] = {}
    levels = [
        ("system", "/fhir/$export", []),
        ("patient", "/fhir/Patient/$export", []),
        (
            "group",
            "/fhir/Group/{id}/$export",
            [{**_ID_PATH, "schema": {"type": "string", "minLength": 1}}],
        ),
    ]
    for level, path, path_params in levels:
        types = exportable_types(registry, level)
        type_list = f"({'|'.join(types)})"
        named: dict[str, Schema] = {
            "_outputFormat": {"type": "string", "enum": sorted(OUTPUT_FORMATS)},
            "_type": {"type": "string", "pattern": f"^{type_list}(,{type_list})*$"},
            "_since": {"type": "string", "format": "date-time"},
            "_typeFilter": {"type": "string", "pattern": f"^{type_list}\\?.+$"},
        }
        assert set(named) <= KNOWN_PARAMETERS
        parameters_body = {
            "required": False,
            "content": {FHIR_JSON: {"schema": ref("Parameters")}},
        }
        responses = {**accepted, **fhir_errors()}
        paths[path] = {
            "get": operation(
                f"export{level.title()}",
                f"Bulk Data $export at {level} level",
                [*path_params, *kickoff_headers, *query_parameters(named)],
                responses,
                tag="Bulk Data",
            ),
            "post": operation(
                f"export{level.title()}Post",
                f"Bulk Data $export at {level} level, parameters in a Parameters body",
                [*path_params, *kickoff_headers],
                responses,
                body=parameters_body,
                tag="Bulk Data",
            ),
        }
    job = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
    paths["/fhir/$export-status/{job_id}"] = {
        "get": operation(
            "exportStatus",
            "An export's progress (202) or its manifest (200)",
            [job],
            {
                "200": {"description": "the manifest", "content": {"application/json": {}}},
                "202": {"description": "in progress (X-Progress, Retry-After)"},
                **fhir_errors(),
            },
            tag="Bulk Data",
        ),
        "delete": operation(
            "exportCancel",
            "Cancel an export",
            [job],
            {"202": {"description": "cancelled"}, **fhir_errors()},
            tag="Bulk Data",
        ),
    }
    paths["/fhir/$export-file/{job_id}/{name}"] = {
        "get": operation(
            "exportFile",
            "One NDJSON output file",
            [job, {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            {
                "200": {"description": "NDJSON", "content": {"application/fhir+ndjson": {}}},
                **fhir_errors(),
            },
            tag="Bulk Data",
        )
    }
    return paths


def _practice_paths() -> dict[str, Schema]:
    """Routes facade serves itself, outside the mapping registry."""
    bundle = {**fhir_answer("200", "a searchset Bundle", "Bundle"), **fhir_errors()}
    return {
        "/fhir/metadata": {
            "get": operation(
                "capabilities",
                "The CapabilityStatement (no token needed)",
                query_parameters({"_format": {"type": "string", "enum": FORMATS}}),
                {**fhir_answer("200", "the CapabilityStatement", "Resource"), **fhir_errors()},
                secured=False,
            )
        },
        "/fhir/Group": {
            "get": operation("searchGroup", "Every Group (practice data)", [], bundle),
            "post": operation(
                "createGroup",
                "Define a Group (backend token with system/Group.c)",
                [],
                {**fhir_answer("201", "the Group", "Resource"), **fhir_errors()},
                body={"required": True, "content": {FHIR_JSON: {"schema": ref("Group")}}},
            ),
        },
        "/fhir/Group/{id}": {
            "get": operation(
                "readGroup",
                "Read one Group",
                [{**_ID_PATH, "schema": {"type": "string", "minLength": 1}}],
                {**fhir_answer("200", "the Group", "Resource"), **fhir_errors()},
            )
        },
        "/fhir/Binary/{id}": {
            "get": operation(
                "readBinary",
                "A file behind a DocumentReference attachment (raw, or Binary as JSON)",
                [_ID_PATH],
                {"200": {"description": "the file, or a Binary"}, **fhir_errors()},
            )
        },
        "/fhir/Provenance/{id}": {
            "get": operation(
                "readProvenance",
                "Read a Provenance",
                [_ID_PATH],
                {**fhir_answer("200", "the Provenance", "Resource"), **fhir_errors()},
            )
        },
        "/fhir/AuditEvent": {
            "get": operation(
                "searchAuditEvent",
                "The audit log (backend token with system/AuditEvent.rs)",
                query_parameters(AUDIT_PARAMETERS),
                bundle,
            )
        },
    }


def _service_paths() -> dict[str, Schema]:
    """facade/rest/site.py and health.py: the pages and probes that need no token."""
    health: Schema = {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
            "output": STRING,
            "checks": {"type": "object"},
        },
    }

    def probe(op_id: str, summary: str, answers: dict[str, Schema]) -> Schema:
        return {"get": operation(op_id, summary, [], answers, secured=False, tag="Service")}

    def health_json(status: str, description: str) -> dict[str, Schema]:
        return {status: {"description": description, "content": {HEALTH_JSON: {"schema": health}}}}

    readiness = {**health_json("200", "ready"), **health_json("503", "what is not ready")}
    return {
        "/": probe("landing", "What this server is, with links", html_answer("200", "a page")),
        "/docs": probe("docs", "This document in Swagger UI", html_answer("200", "a page")),
        "/openapi.json": probe(
            "openapi", "This document", json_answer("200", "OpenAPI 3.1", {"type": "object"})
        ),
        "/health/live": probe("live", "The process answers (no I/O)", health_json("200", "up")),
        "/health/ready": probe(
            "ready",
            "The database answers, the audit log is written and the EHR answers (the EHR probed"
            " at most once per 5 minutes)",
            readiness,
        ),
        "/health": probe("health", "Readiness with version and EHR call budget", readiness),
    }


def openapi_document(registry: MappingRegistry, server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document of facade's FHIR and authorization routes. `server_url` is
    the origin facade is served at (paths carry their /fhir and /auth prefixes)."""
    paths: dict[str, Schema] = {}
    for mapping in sorted(registry, key=lambda m: m.resource_type):
        paths.update(_resource_paths(mapping, registry))
    paths.update(_practice_paths())
    paths.update(_export_paths(registry))
    paths.update(auth_paths(registry.resource_types))
    paths.update(_service_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"facade over {registry.vendor}",
            "version": __version__,
            "description": (
                "A US Core 6.1.0 FHIR R4 server and its SMART App Launch authorization "
                "server. Generated from the mapping declarations (capability/openapi.py). "
                "Unknown search parameters are refused with 400 unless the request says "
                "'Prefer: handling=lenient'."
            ),
        },
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": components(),
    }
