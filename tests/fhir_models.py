"""A second, independent check of what facade emits: every resource parses as the resource
model of fhir.resources, which knows each element, cardinality and primitive format.

The validator (../shared/tools/validator) judges US Core conformance; this catches a
misspelt element, a list where one value belongs or a malformed date in tests that do not
run the validator. fhir.resources ships no R4 models; its R4B package is used, which for
every type facade serves has R4's elements on the wire (R4B changed no element of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError


def fhir_problems(resource: dict[str, Any]) -> list[str]:
    """What fhir.resources finds wrong with one resource (a Bundle's entries included)."""
    name = f"{resource.get('resourceType')}/{resource.get('id', '')}"
    try:
        model = get_fhir_model_class(str(resource.get("resourceType")))
    except ValueError:
        return [f"{name}: not a FHIR resource type"]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [f"{name} {e['loc']}: {e['msg']}" for e in exc.errors(include_url=False)]
    return []


def assert_fhir_resources(resources: Iterable[dict[str, Any]]) -> int:
    """Asserts every resource parses; how many were checked."""
    count = 0
    problems: list[str] = []
    for resource in resources:
        count += 1
        problems += fhir_problems(resource)
    assert not problems, "\n".join(problems[:20])
    return count
