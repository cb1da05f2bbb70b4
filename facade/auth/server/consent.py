"""What the consent page offers and what a user's ticks amount to.

Only scopes the logged-in user may hold are offered (scopes.holdable), each worded for that
kind of user. The user may untick any of them, and may narrow Observation and Condition
access to some categories (SMART v2 granular scopes). The result never exceeds the offer.
"""

from __future__ import annotations

from dataclasses import dataclass

from facade.auth.scopes import PATIENT_USER, PRACTITIONER_USER, parse_scope

_OBSERVATION = "http://terminology.hl7.org/CodeSystem/observation-category"
_CONDITION = "http://terminology.hl7.org/CodeSystem/condition-category"
_US_CORE_CONDITION = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
_US_CORE = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"

#: Categories offered for granular narrowing: (system|code, label).
CATEGORIES: dict[str, list[tuple[str, str]]] = {
    "Observation": [
        (f"{_OBSERVATION}|laboratory", "Laboratory results"),
        (f"{_OBSERVATION}|vital-signs", "Vital signs"),
        (f"{_OBSERVATION}|social-history", "Social history"),
        (f"{_OBSERVATION}|survey", "Surveys and assessments"),
        (f"{_OBSERVATION}|exam", "Exam findings"),
        (f"{_OBSERVATION}|imaging", "Imaging results"),
        (f"{_OBSERVATION}|procedure", "Clinical test results"),
        (f"{_US_CORE}|sdoh", "Social determinants of health"),
    ],
    "Condition": [
        (f"{_CONDITION}|problem-list-item", "Problem list"),
        (f"{_CONDITION}|encounter-diagnosis", "Encounter diagnoses"),
        (f"{_US_CORE_CONDITION}|health-concern", "Health concerns"),
    ],
}

_CONTEXT_LABELS = {
    "openid": "Confirm your identity to the app",
    "fhirUser": "Tell the app who you are (your record's reference)",
    "launch": "Open in the context of the current record",
    "launch/patient": "Know which patient's record is open",
    "launch/encounter": "Know which visit is open",
    "offline_access": "Keep access when you are not using the app (long-term access)",
    "online_access": "Keep access while you are logged in",
}
#: Whose records a resource scope reaches, worded for who is reading the page:
#: (kind, context) → words around "{what}" ("health records", "Observation records").
_WHOSE = {
    (PATIENT_USER, "patient"): "your {what}",
    (PRACTITIONER_USER, "patient"): "the chosen patient's {what}",
    (PRACTITIONER_USER, "user"): "patients' {what} you can access",
}
#: Never offered to a login (scopes.holdable); worded plainly should it ever be shown.
_WHOSE_FALLBACK = {
    "patient": "one patient's {what}",
    "user": "patients' {what} the user can access",
    "system": "every patient's {what} in the practice",
}
#: How the page names the person who logged in.
KIND_LABELS = {PATIENT_USER: "patient", PRACTITIONER_USER: "practitioner"}
_ACCESS = {"r": "read", "s": "search", "c": "create", "u": "update", "d": "delete"}


@dataclass(frozen=True)
class CategoryChoice:
    scope: str
    label: str


@dataclass(frozen=True)
class ScopeChoice:
    scope: str
    label: str
    key: str
    type_label: str
    categories: tuple[CategoryChoice, ...]


def describe(scope: str, kind: str) -> str:
    """The consent page's words for `scope`, as the user of `kind` who logged in reads them:
    a patient reads "Read and search your health records", a practitioner "… patients'
    health records you can access" or "… the chosen patient's Observation records"."""
    if scope in _CONTEXT_LABELS:
        return _CONTEXT_LABELS[scope]
    parsed = parse_scope(scope)
    if parsed is None:
        return scope
    what = "health records" if parsed.resource_type == "*" else f"{parsed.resource_type} records"
    whose = _WHOSE.get((kind, parsed.context), _WHOSE_FALLBACK[parsed.context])
    verbs = " and ".join(_ACCESS[p] for p in "rscud" if p in parsed.permissions)
    text = f"{verbs.capitalize()} {whose.format(what=what)}"
    if parsed.filters:
        text += " (only " + ", ".join(f"{k} {v}" for k, v in parsed.filters) + ")"
    return f"{text} — {scope}"


def choices(requested: list[str], kind: str) -> list[ScopeChoice]:
    offered = []
    for index, scope in enumerate(requested):
        parsed = parse_scope(scope)
        categories: tuple[CategoryChoice, ...] = ()
        if parsed is not None and not parsed.filters and parsed.resource_type in CATEGORIES:
            categories = tuple(
                CategoryChoice(f"{scope}?category={token}", label)
                for token, label in CATEGORIES[parsed.resource_type]
            )
        type_label = parsed.resource_type if parsed is not None else ""
        offered.append(
            ScopeChoice(scope, describe(scope, kind), f"c{index}", type_label, categories)
        )
    return offered


def granted(requested: list[str], ticked: list[str]) -> list[str]:
    """The scopes the user's ticks grant: requested ones, or granular narrowings of them.

    A ticked category of a type replaces that type's resource-level scope."""
    wanted = set(requested)
    result: list[str] = []
    narrowed: set[str] = set()
    for scope in dict.fromkeys(ticked):
        if scope in wanted:
            result.append(scope)
            continue
        base, sep, _query = scope.partition("?")
        parsed = parse_scope(scope)
        if sep and base in wanted and parsed is not None and parsed.filters:
            result.append(scope)
            narrowed.add(base)
    return [s for s in result if s not in narrowed]
