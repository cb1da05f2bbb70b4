"""Property-based requests an OpenAPI-driven fuzzer reaches poorly: random search parameter
names, modifiers, prefixes and values (calendar edges, ±14:00 offsets, huge numbers, unicode,
long strings and long OR-lists within the request limits), random ids and paths, and random
form and JSON bodies for _search, the OAuth endpoints, Group and $export. Every answer: no
5xx, within RESPONSE_TIME_LIMIT, and a 4xx is an OperationOutcome (FHIR) or an RFC 6749 error.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from facade.core.mapping import Unsupported
from mappings.drchrono import REGISTRY
from tests.fuzz.checks import Sent, check_answer
from tests.fuzz.harness import TOKEN_KINDS, FuzzTarget
from tests.tokens import TEST_CLIENT

FUZZ = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    # No "explain" phase: the failure message already names the exact request.
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
#: Item 5's query limit is about 8 KiB: values stay below it so they reach the parser and
#: the matcher (a longer query is refused with 414 before any parsing).
QUERY_BUDGET = 7000

TYPES = REGISTRY.resource_types
CODES = sorted({p.code for m in REGISTRY for p in m.search_params})
SUPPORTED = {
    m.resource_type: [p.code for p in m.search_params if not isinstance(p.serve, Unsupported)]
    for m in REGISTRY
}


# -- values ---------------------------------------------------------------------------------

years = st.one_of(
    st.sampled_from(["0000", "0001", "1969", "1970", "2000", "2038", "9999"]),
    st.integers(0, 99999).map(lambda y: f"{y:04d}"),
)
months = st.sampled_from(["00", "01", "02", "12", "13", "99", "1"])
days = st.sampled_from(["00", "01", "28", "29", "30", "31", "32"])
times = st.sampled_from(
    ["00:00", "23:59", "24:00", "00:00:00", "23:59:59", "23:59:60", "12:00:00.123456789",
     "12:00:00.12345678901234567890", "99:99:99", "12"]
)  # fmt: skip
zones = st.sampled_from(
    ["", "Z", "+14:00", "-14:00", "+00:00", "-00:00", "+23:59", "-23:59", "+14:01", "+99:99",
     "+1400", "z"]
)  # fmt: skip
prefixes = st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "xx", "GT"])
dates = st.one_of(
    years,
    st.builds(lambda y, m: f"{y}-{m}", years, months),
    st.builds(lambda y, m, d: f"{y}-{m}-{d}", years, months, days),
    st.builds(lambda y, m, d, t, z: f"{y}-{m}-{d}T{t}{z}", years, months, days, times, zones),
)
numbers = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["9" * 400, "1e999", "-0", "0x10", "1_000", "NaN", "١٢٣"]),
)
#: Item 5 bounds a search value at 1,024 characters and 100 OR-values: most long values stay
#: within (they reach the matcher), some go past (they must be refused with 400, not choke).
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=1024),
    st.integers(900, 1024).map(lambda n: "a" * n),
    st.integers(1025, 3000).map(lambda n: "a" * n),
)
systems = st.sampled_from(["", "http://loinc.org", "http://snomed.info/sct", "urn:oid:1.2.3"])
tokens = st.builds(lambda s, c: f"{s}|{c}" if s else c, systems, st.text(max_size=30))
references = st.one_of(
    st.sampled_from(["Patient/", "Patient/../1", "/", "Patient/1/_history/2", "Practitioner/1"]),
    st.builds(lambda t, i: f"{t}/{i}", st.sampled_from(["Patient", "Encounter", "X"]), texts),
    st.text(max_size=20).map(lambda i: f"http://facade.test/fhir/Patient/{i}"),
    st.integers(-5, 10**30).map(str),
)
single_values = st.one_of(
    st.builds(lambda p, d: p + d, prefixes, dates), numbers, texts, tokens, references
)
values = st.one_of(
    single_values,
    st.lists(single_values, min_size=2, max_size=100).map(",".join),
    st.lists(st.sampled_from(["a", "ge2000", "1"]), min_size=90, max_size=130).map(",".join),
    st.lists(st.text(max_size=5), max_size=20).map("\\,".join).map(lambda v: v + "\\"),
)
modifiers = st.one_of(
    st.just(""),  # most clauses carry no modifier, so they reach the matcher
    st.sampled_from(
        ["", ":exact", ":contains", ":not", ":missing", ":text", ":above", ":below", ":in",
         ":Patient", ":identifier", ":of-type", ":", "::"]
    ),
    st.text(max_size=10).map(lambda m: f":{m}"),
)  # fmt: skip
names = st.one_of(
    st.sampled_from(
        [*CODES, "_count", "_include", "_revinclude", "_format", "_cursor", "_sort", "_summary",
         "_elements", "_total", "_has:Observation:patient:code", "patient.name", ""]
    ),
    st.text(max_size=15),
)  # fmt: skip
kinds = st.sampled_from(TOKEN_KINDS)


@st.composite
def search_pairs(draw: st.DrawFn, resource_type: str) -> list[tuple[str, str]]:
    own = st.sampled_from(SUPPORTED.get(resource_type) or CODES)
    pairs = draw(
        st.lists(
            st.tuples(st.one_of(own, names), modifiers, values).map(lambda t: (t[0] + t[1], t[2])),
            max_size=8,
        )
    )
    while len(urlencode(pairs)) > QUERY_BUDGET:
        pairs.pop()
    return pairs


def _with_patient(pairs: list[tuple[str, str]], target: FuzzTarget, choice: int) -> None:
    """Most clinical searches need a patient: name the token's own, another or none."""
    if choice:
        pairs.insert(0, ("patient", target.own_patient if choice == 1 else target.other_patient))


def _send(
    target: FuzzTarget,
    method: str,
    path: str,
    kind: str,
    *,
    params: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> None:
    answer = target.send(
        method,
        path,
        params=params,
        headers={**(headers or {}), **target.authorization(kind)},
        content=body or None,
    )
    shown = tuple((headers or {}).items())
    check_answer(Sent(method, path, urlencode(params or []), body, kind, shown), answer)


# -- searches -------------------------------------------------------------------------------


@settings(FUZZ, max_examples=500)
@given(data=st.data(), kind=kinds, post=st.booleans(), lenient=st.booleans())
def test_random_search_parameters(
    target: FuzzTarget, data: st.DataObject, kind: str, post: bool, lenient: bool
) -> None:
    resource_type = data.draw(st.sampled_from(TYPES), label="type")
    pairs = data.draw(search_pairs(resource_type), label="pairs")
    _with_patient(pairs, target, data.draw(st.integers(0, 2), label="patient"))
    headers = {"Prefer": "handling=lenient"} if lenient else {}
    if post:
        body = urlencode(pairs).encode()
        path = f"/fhir/{resource_type}/_search"
        _send(target, "POST", path, kind, headers={**headers, **FORM}, body=body)
    else:
        _send(target, "GET", f"/fhir/{resource_type}", kind, params=pairs, headers=headers)


@FUZZ
@given(body=st.binary(max_size=2000), kind=kinds, resource_type=st.sampled_from(TYPES))
def test_raw_search_form_bodies(
    target: FuzzTarget, body: bytes, kind: str, resource_type: str
) -> None:
    """Bytes that are not a well-formed form (bad escapes, invalid UTF-8, stray '&=')."""
    _send(target, "POST", f"/fhir/{resource_type}/_search", kind, headers=FORM, body=body)


#: The inputs issue 10 reported as 500s (OverflowError in date handling).
CALENDAR_EDGES = [
    ("Patient", [("birthdate", "9999-12-31")]),
    ("Patient", [("birthdate", "gt9999-12-31")]),
    ("Patient", [("_lastUpdated", "9999-12-31")]),
    ("Patient", [("birthdate", "0001-01-01T00:00:00+14:00")]),
    ("Patient", [("birthdate", "lt0001-01-01T00:00:00-14:00")]),
    ("Observation", [("patient", "{patient}"), ("date", "9999-12-31T23:59:59Z")]),
    (
        "Condition",
        [("patient", "{patient}"), ("onset-date", "sa9999-12-31T23:59:59.999999999-14:00")],
    ),  # fmt: skip
]


@pytest.mark.parametrize(("resource_type", "pairs"), CALENDAR_EDGES)
@pytest.mark.parametrize("kind", ["system", "patient"])
def test_calendar_edges(
    target: FuzzTarget, resource_type: str, pairs: list[tuple[str, str]], kind: str
) -> None:
    params = [(name, value.format(patient=target.own_patient)) for name, value in pairs]
    _send(target, "GET", f"/fhir/{resource_type}", kind, params=params)


def test_export_since_the_end_of_time(target: FuzzTarget) -> None:
    params = [("_since", "9999-12-31T23:59:59Z")]
    _send(target, "GET", "/fhir/$export", "system", params=params, headers=JSON_HEADERS)


#: Bodies up to this size are within item 5's body limit (about 1 MiB), so they reach the
#: parser and the matcher, which must bound their work rather than stall.
LARGE_BODY = 1_000_000
LARGE_SHAPES = {
    "one long value": lambda code, n, patient: [(code, "a" * n)],
    "many OR values": lambda code, n, patient: [(code, ",".join(f"v{i}" for i in range(n // 6)))],
    "many clauses": lambda code, n, patient: [(code, f"v{i}") for i in range(n // 12)],
    "many dates": lambda code, n, patient: [
        (code, ",".join(["ge2000-01-01T00:00:00+14:00"] * (n // 28)))
    ],  # fmt: skip
    "many patients": lambda code, n, patient: [("patient", ",".join([patient] * (n // 8)))],
}


@settings(FUZZ, max_examples=30)
@given(
    data=st.data(),
    shape=st.sampled_from(sorted(LARGE_SHAPES)),
    size=st.integers(1_000, LARGE_BODY),
    kind=kinds,
    lenient=st.booleans(),
)
def test_large_searches_within_the_limits_answer_in_time(
    target: FuzzTarget, data: st.DataObject, shape: str, size: int, kind: str, lenient: bool
) -> None:
    resource_type = data.draw(st.sampled_from(TYPES), label="type")
    code = data.draw(st.sampled_from(SUPPORTED[resource_type]), label="code")
    pairs = [("patient", target.own_patient)] if "patient" in SUPPORTED[resource_type] else []
    pairs += LARGE_SHAPES[shape](code, size, target.own_patient)
    body = urlencode(pairs).encode()[:LARGE_BODY]
    headers = {**FORM, **({"Prefer": "handling=lenient"} if lenient else {})}
    _send(target, "POST", f"/fhir/{resource_type}/_search", kind, headers=headers, body=body)


# -- ids and paths --------------------------------------------------------------------------

segments = st.one_of(
    st.sampled_from(["", ".", "..", "%00", "_history", "$export", "$docref", "_search", "-",
                     "a" * 64, "a" * 65, "1" * 500, "Patient", "metadata", "$export-status"]),
    st.text(max_size=30).map(lambda s: quote(s, safe="")),
)  # fmt: skip


@FUZZ
@given(
    method=st.sampled_from(["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
    head=st.sampled_from(["/fhir", "/fhir", "/auth", ""]),
    resource_type=st.one_of(st.sampled_from([*TYPES, "Group", "Binary", "Provenance"]), segments),
    rest=st.lists(segments, max_size=3),
    kind=kinds,
    patient=st.booleans(),
)
def test_random_ids_and_paths(
    target: FuzzTarget,
    method: str,
    head: str,
    resource_type: str,
    rest: list[str],
    kind: str,
    patient: bool,
) -> None:
    if patient and rest:
        rest[0] = target.other_patient
    path = "/".join([head, resource_type, *rest]) or "/"
    answer = target.send(method, path, headers=target.authorization(kind))
    sent = Sent(method, path, "", b"", kind)
    if method == "HEAD":  # no body to inspect
        assert answer.exception is None and answer.status < 500, f"{answer}: {sent}"
        return
    check_answer(sent, answer)


# -- OAuth forms ----------------------------------------------------------------------------

GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials", "password",
               "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer", ""]  # fmt: skip
JWT_LIKE = st.builds(
    lambda h, p, s: ".".join(
        base64.urlsafe_b64encode(json.dumps(x).encode()).decode().rstrip("=") for x in (h, p)
    )
    + "."
    + s,
    st.fixed_dictionaries({"alg": st.sampled_from(["RS384", "ES384", "none", "HS256", ""])}),
    st.dictionaries(st.sampled_from(["iss", "sub", "aud", "exp", "jti"]), st.one_of(
        st.just(TEST_CLIENT), st.integers(), st.text(max_size=10), st.none())),
    st.text(alphabet="abcAB-_", max_size=20),
)  # fmt: skip
oauth_fields = st.dictionaries(
    st.sampled_from(
        ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
         "client_id", "client_secret", "client_assertion_type", "client_assertion", "token",
         "token_type_hint", "aud", "launch"]
    ),
    st.one_of(
        st.sampled_from([*GRANT_TYPES, TEST_CLIENT, "system/*.rs", "patient/*.rs user/*.rs",
                         "system/Observation.rs?category=laboratory", "openid fhirUser",
                         "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                         "https://app.example/callback", "a" * 43]),
        JWT_LIKE,
        texts,
    ),
)  # fmt: skip
basic_credentials = st.one_of(
    st.none(),
    st.builds(
        lambda u, p: "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode(),
        st.one_of(st.just(TEST_CLIENT), st.text(max_size=20)),
        st.text(max_size=20),
    ),
    st.binary(max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    st.text(max_size=30).map(lambda t: "Basic " + t),
)


@FUZZ
@given(
    endpoint=st.sampled_from(["/auth/token", "/auth/token", "/auth/introspect", "/auth/revoke"]),
    fields=oauth_fields,
    repeated=st.lists(
        st.tuples(st.sampled_from(["grant_type", "scope", "client_id"]), texts), max_size=2
    ),  # fmt: skip
    basic=basic_credentials,
    kind=kinds,
    bearer=st.booleans(),
)
@example(  # credentials that are not UTF-8
    endpoint="/auth/introspect",
    fields={"token": "x"},
    repeated=[],
    basic="Basic " + base64.b64encode(b"\xff:x").decode(),
    kind="none",
    bearer=False,
)
@example(  # a scheme and no credentials (NBSP is obs-text, so HTTP servers keep it)
    endpoint="/auth/revoke",
    fields={"token": "x"},
    repeated=[],
    basic="Basic \xa0",
    kind="none",
    bearer=False,
)
def test_random_oauth_forms(
    target: FuzzTarget,
    endpoint: str,
    fields: dict[str, str],
    repeated: list[tuple[str, str]],
    basic: str | None,
    kind: str,
    bearer: bool,
) -> None:
    body = urlencode([*fields.items(), *repeated]).encode()
    headers = dict(FORM)
    if basic is not None:
        headers["Authorization"] = basic
    elif bearer:
        headers.update(target.authorization(kind))
    answer = target.send("POST", endpoint, headers=headers, content=body)
    shown = (("Authorization", basic),) if basic is not None else ()
    check_answer(Sent("POST", endpoint, "", body, "none" if basic else kind, shown), answer)


@FUZZ
@given(
    endpoint=st.sampled_from(["/auth/token", "/auth/introspect", "/auth/revoke", "/auth/login"]),
    body=st.binary(max_size=500),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1",
         "application/json", "multipart/form-data; boundary=x", "text/plain", ""]
    ),
)  # fmt: skip
@example(endpoint="/auth/login", body=b"csrf_token=%C2%80", content_type=FORM["Content-Type"])
def test_raw_oauth_bodies(
    target: FuzzTarget, endpoint: str, body: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = target.send("POST", endpoint, headers=headers, content=body or None)
    check_answer(Sent("POST", endpoint, "", body, "none", tuple(headers.items())), answer)


# -- JSON bodies: Group and $export Parameters ----------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
    ),  # fmt: skip
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),  # fmt: skip
    max_leaves=12,
)
members = st.lists(
    st.one_of(
        json_values,
        st.fixed_dictionaries({"entity": st.one_of(json_values, st.fixed_dictionaries(
            {"reference": st.one_of(references, json_values)}))}),
    ),
    max_size=5,
)  # fmt: skip
groups = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Group", "Group", "Group", "Patient", ""])},
    optional={
        "id": st.one_of(st.text(max_size=70), json_values),
        "name": st.one_of(st.text(max_size=70), json_values),
        "member": st.one_of(members, st.sampled_from([True, 0, "x", None, {}]), json_values),
    },
)
parameter_names = st.sampled_from(
    ["_type", "_since", "_typeFilter", "_outputFormat", "patient", "includeAssociatedData", "x"]
)
parameters = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Parameters", "Parameters", "Bundle"])},
    optional={
        "parameter": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {"name": st.one_of(parameter_names, json_values)},
                    optional={
                        "valueString": st.one_of(
                            st.builds(lambda p, d: p + d, prefixes, dates), texts, json_values
                        ),
                        "valueInstant": st.one_of(dates, json_values),
                        "valueReference": st.one_of(
                            st.fixed_dictionaries(
                                {"reference": st.one_of(references, json_values)}
                            ),  # fmt: skip
                            json_values,
                        ),
                        "valueBoolean": json_values,
                    },
                ),
                max_size=5,
            ),
        )
    },
)
EXPORTS = ["/fhir/$export", "/fhir/Patient/$export", "/fhir/Group/x1/$export"]


#: Writes and kick-offs need a backend token, so most examples carry one.
backend_mostly = st.sampled_from(["system", "system", "system", *TOKEN_KINDS])
JSON_HEADERS = {
    "Content-Type": "application/fhir+json",
    "Accept": "application/fhir+json",
    "Prefer": "respond-async",
}


@FUZZ
@given(body=st.one_of(groups, groups, groups, json_values), kind=backend_mostly)
@example(body={"resourceType": "Group", "member": True}, kind="system")
@example(body={"resourceType": "Group", "member": [{"entity": "x"}]}, kind="system")
def test_random_group_bodies(target: FuzzTarget, body: object, kind: str) -> None:
    _send(target, "POST", "/fhir/Group", kind, headers=JSON_HEADERS, body=json.dumps(body).encode())


@FUZZ
@given(
    endpoint=st.sampled_from(EXPORTS),
    body=st.one_of(parameters, parameters, parameters, json_values),
    kind=backend_mostly,
    raw=st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=200)),
)
@example(endpoint="/fhir/$export", body=[], kind="system", raw=None)
@example(
    endpoint="/fhir/Patient/$export",
    body={"resourceType": "Parameters", "parameter": True},
    kind="system",
    raw=None,
)
def test_random_export_parameters(
    target: FuzzTarget, endpoint: str, body: object, kind: str, raw: bytes | None
) -> None:
    content = raw if raw is not None else json.dumps(body).encode()
    _send(target, "POST", endpoint, kind, headers=JSON_HEADERS, body=content)
