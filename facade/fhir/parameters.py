"""Parameters bodies that clients send (`$export` kick-offs, `$docref` and other operations),
parsed and validated with fhir.resources before anything reads them.

fhir.resources knows every element and primitive format of the resource, so a malformed body
gets a 400 that names the element at fault (`Parameters.parameter[1].valueInstant`) instead of
whatever a hand-rolled check happened to notice. Its R4B package is used: fhir.resources ships
no R4, and R4B's Parameters is R4's on the wire. This is for request bodies only: one parse
costs ~0.1 ms, far too much per resource on the read path (DESIGN.md), negligible per request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.parameters import Parameters
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from facade.errors import InvalidParameterValue, InvalidRequest

#: Errors shown in one OperationOutcome; the rest are counted.
_MAX_SHOWN = 3
_PLAIN_MESSAGES = {
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "json_invalid": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "extra_forbidden": "is not an element of this FHIR type",
    "missing": "is required",
    "model_field_validation.missing": "is required",
}


@dataclass(frozen=True)
class Parameter:
    """One `Parameters.parameter`: its name, the value[x] it carries as search-style text
    (a primitive as written, a Reference as its reference, a Coding or Identifier as
    `system|code`), and where it is in the body for error messages."""

    name: str
    value: str | None
    #: The value[x] element name, e.g. "valueReference"; "" when the parameter has none.
    kind: str
    path: str


def read_parameters(body: object) -> list[Parameter]:
    """The parameters of a FHIR Parameters resource; 400 naming the wrong element when the
    body is not a valid R4 Parameters resource."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("The body must be a FHIR Parameters resource.")
    try:
        Parameters.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc.errors(include_url=False)) from None
    # Validated: every parameter is an object with a string name and at most one value[x].
    found: list[Parameter] = []
    for index, item in enumerate(body.get("parameter") or []):
        path = f"Parameters.parameter[{index}]"
        kind = next((key for key in item if key.startswith("value")), "")
        value = _as_text(kind, item[kind], path) if kind else None
        found.append(Parameter(name=item["name"], value=value, kind=kind, path=path))
    return found


def _as_text(kind: str, value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, dict):
        return str(value)
    if kind == "valueReference" and isinstance(value.get("reference"), str):
        return str(value["reference"])
    if kind in ("valueCoding", "valueIdentifier"):
        code = value.get("code" if kind == "valueCoding" else "value")
        if isinstance(code, str):
            system = value.get("system")
            return f"{system}|{code}" if isinstance(system, str) else code
    raise InvalidParameterValue(
        f"{path}.{kind} cannot be used as a parameter value here.",
        expression=[f"{path}.{kind}"],
    )


def _invalid(errors: list[ErrorDetails]) -> InvalidRequest:
    paths = [_fhir_path(error["loc"]) for error in errors]
    shown = [f"{path} {_plain(error)}" for path, error in zip(paths, errors, strict=True)]
    text = "; ".join(shown[:_MAX_SHOWN])
    if len(shown) > _MAX_SHOWN:
        text += f"; and {len(shown) - _MAX_SHOWN} more"
    return InvalidRequest(
        f"The body is not a valid FHIR Parameters resource: {text}.",
        expression=list(dict.fromkeys(paths)),
    )


def _fhir_path(loc: tuple[int | str, ...]) -> str:
    path = "Parameters"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.replace(".resource_type", ".resourceType")


def _plain(error: ErrorDetails) -> str:
    if error["type"] in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[error["type"]]
    message = error["msg"].removeprefix("Value error, ").rstrip(".")
    if message.startswith("Any of one field value is expected"):
        return "has more than one value[x]"
    primitive = re.fullmatch(r"(\w+) value string does not match spec regex", message)
    if primitive:
        return f"is not a valid FHIR {primitive.group(1).lower()}"
    return f"is not valid: {message}"
