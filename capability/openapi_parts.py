"""Building blocks of facade's OpenAPI document: parameter lists, request bodies, answers
and the shared component schemas. Plain dicts only; nothing here knows a route.
"""

from __future__ import annotations

from typing import Any

from facade.bulk.request import KNOWN_PARAMETERS

Schema = dict[str, Any]

FHIR_JSON = "application/fhir+json"
FORM = "application/x-www-form-urlencoded"
STRING: Schema = {"type": "string"}


def query_parameters(named: dict[str, Schema], required: tuple[str, ...] = ()) -> list[Schema]:
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": schema,
            **({"explode": True, "style": "form"} if schema.get("type") == "array" else {}),
        }
        for name, schema in named.items()
    ]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def fhir_answer(status: str, description: str, schema: str) -> dict[str, Schema]:
    return {status: {"description": description, "content": {FHIR_JSON: {"schema": ref(schema)}}}}


def fhir_errors() -> dict[str, Schema]:
    """Every FHIR error is an OperationOutcome (facade/errors.py is the one error tree)."""
    return fhir_answer("default", "an error, as an OperationOutcome", "OperationOutcome")


def oauth_errors() -> dict[str, Schema]:
    return {
        "default": {
            "description": "an RFC 6749 error",
            "content": {"application/json": {"schema": ref("OAuthError")}},
        }
    }


def operation(
    operation_id: str,
    summary: str,
    parameters: list[Schema],
    responses: dict[str, Schema],
    *,
    body: Schema | None = None,
    secured: bool = True,
    tag: str = "FHIR",
) -> Schema:
    built: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "parameters": parameters,
        "responses": responses,
    }
    if body is not None:
        built["requestBody"] = body
    if secured:
        built["security"] = [{"smart": []}]
    return built


def form_body(named: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {"type": "object", "properties": named, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return {"required": True, "content": {FORM: {"schema": schema}}}


def json_answer(status: str, description: str, schema: Schema) -> dict[str, Schema]:
    return {
        status: {"description": description, "content": {"application/json": {"schema": schema}}}
    }


def html_answer(status: str, description: str) -> dict[str, Schema]:
    return {status: {"description": description, "content": {"text/html": {}}}}


def components() -> Schema:
    resource: Schema = {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"type": "string"}},
    }

    def of_type(resource_type: str, **properties: Schema) -> Schema:
        return {
            **resource,
            "properties": {"resourceType": {"const": resource_type}, **properties},
        }

    return {
        "securitySchemes": {
            "smart": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A SMART on FHIR access token from /auth/token",
            }
        },
        "schemas": {
            "Resource": resource,
            "Bundle": of_type("Bundle", type={"type": "string"}, entry={"type": "array"}),
            "OperationOutcome": {
                **of_type("OperationOutcome", issue={"type": "array", "minItems": 1}),
                "required": ["resourceType", "issue"],
            },
            "Group": of_type(
                "Group",
                id=STRING,
                name=STRING,
                member={
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "entity": {"type": "object", "properties": {"reference": STRING}}
                        },
                    },
                },
            ),
            "Parameters": of_type(
                "Parameters",
                parameter={
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "enum": sorted(KNOWN_PARAMETERS)},
                            "valueString": STRING,
                            "valueInstant": {"type": "string", "format": "date-time"},
                            "valueReference": {
                                "type": "object",
                                "properties": {"reference": STRING},
                            },
                        },
                    },
                },
            ),
            "OAuthError": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": STRING, "error_description": STRING},
            },
            "TokenResponse": {
                "type": "object",
                "required": ["access_token", "token_type"],
                "properties": {
                    "access_token": STRING,
                    "token_type": STRING,
                    "expires_in": {"type": "integer"},
                    "scope": STRING,
                    "patient": STRING,
                    "refresh_token": STRING,
                },
            },
            "SmartConfiguration": {
                "type": "object",
                "required": ["authorization_endpoint", "token_endpoint", "capabilities"],
            },
        },
    }
