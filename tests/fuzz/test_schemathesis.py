"""Schemathesis over the OpenAPI description of facade (capability/openapi.py): every FHIR and
authorization operation, as a backend, a patient, a practitioner and an anonymous caller,
with schema-conforming and schema-violating requests. No 5xx, no answer slower than
RESPONSE_TIME_LIMIT, and every error in the form its surface promises (issue 10, "Done when").

Bounded and reproducible: EXAMPLES per operation (each with a drawn caller), derandomized, no
example database.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from capability.openapi import openapi_document
from mappings.drchrono import REGISTRY
from tests.conftest import FACADE_BASE
from tests.fuzz.checks import Sent, check_answer
from tests.fuzz.harness import TOKEN_KINDS, FuzzTarget

#: Examples per operation, each as a caller drawn from TOKEN_KINDS: 104 operations x 30 ≈
#: 3,100 requests, about a minute on 2 cores (generating a case costs more than answering it).
EXAMPLES = 30

SCHEMA = schemathesis.openapi.from_dict(openapi_document(REGISTRY, server_url=FACADE_BASE))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
#: Headers schemathesis adds that mean nothing to facade (the caller's token is ours to set).
DROPPED_HEADERS = {"authorization", "connection", "x-schemathesis-testcaseid", "user-agent"}


def _pairs(values: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Query or form values as pairs; lists repeat the name (style form, explode)."""
    pairs: list[tuple[str, str]] = []
    for name, value in (values or {}).items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((str(name), "" if item is None else str(item)))
    return pairs


def _body(kwargs: dict[str, Any]) -> bytes:
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if data is None:
        return b""
    if isinstance(data, dict):
        return urlencode(_pairs(data)).encode()
    return data if isinstance(data, bytes) else str(data).encode()


def _with_real_ids(case: schemathesis.Case, target: FuzzTarget, choice: int) -> None:
    """Name a real patient (the token's own or another) in some examples, so searches and
    reads reach the vendor and the compartment checks instead of stopping at 'not found'."""
    if choice == 0:
        return
    patient = target.own_patient if choice == 1 else target.other_patient
    if case.path_parameters and case.path.startswith("/fhir/Patient/{id}"):
        case.path_parameters["id"] = patient
    if isinstance(case.query, dict) and "patient" in case.query:
        case.query["patient"] = patient
    if isinstance(case.body, dict) and "patient" in case.body:
        case.body["patient"] = f"Patient/{patient}"


@pytest.mark.parametrize(
    ("kind", "expected"), [("system", 200), ("patient", 200), ("user", 200), ("none", 401)]
)
def test_each_caller_is_who_the_fuzz_says(target: FuzzTarget, kind: str, expected: int) -> None:
    """The fuzz is only as deep as its tokens: each kind reads the patient it may read."""
    answer = target.send(
        "GET", f"/fhir/Patient/{target.own_patient}", headers=target.authorization(kind)
    )
    assert answer.status == expected, answer


def test_a_patient_token_is_confined_to_its_patient(target: FuzzTarget) -> None:
    answer = target.send(
        "GET", f"/fhir/Patient/{target.other_patient}", headers=target.authorization("patient")
    )
    assert answer.status in (403, 404), answer


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_operation_answers_without_server_error(
    target: FuzzTarget, operation: schemathesis.APIOperation
) -> None:
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=cases, kind=st.sampled_from(TOKEN_KINDS), ids=st.integers(0, 2))
    def run(case: schemathesis.Case, kind: str, ids: int) -> None:
        _with_real_ids(case, target, ids)
        kwargs = case.as_transport_kwargs(base_url=FACADE_BASE)
        headers = {
            str(k): str(v)
            for k, v in kwargs.get("headers", {}).items()
            if str(k).lower() not in DROPPED_HEADERS
        }
        shown = tuple(headers.items())
        headers.update(target.authorization(kind))
        params = _pairs(kwargs.get("params"))
        body = _body(kwargs)
        url = urlsplit(kwargs["url"])
        answer = target.send(
            kwargs["method"], url.path, params=params, headers=headers, content=body or None
        )
        sent = Sent(kwargs["method"], url.path, urlencode(params), body, kind, shown)
        check_answer(sent, answer)
        if answer.response is not None:  # schemathesis' own check, with its replay command
            case.validate_response(answer.response, checks=[not_a_server_error])

    run()
