"""SMART App Launch scopes (v1 and v2), parsed into what they permit.

    patient/Observation.read           v1: read and search within the patient's compartment
    user/*.rs                          v2: read + search of every type the user can see
    system/Patient.cruds               v2: all interactions, backend services
    patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs
                                       v2 granular: only resources matching the query
    openid fhirUser launch launch/patient launch/encounter offline_access online_access

Parsing never raises on unknown scopes: they are kept as "other" and grant nothing.
Which scopes a login may hold is decided here too (`holdable`): patient/ for a patient's
own record, user/ only for practitioners, system/ never through a user's authorization.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

CONTEXTS = ("patient", "user", "system")
_RESOURCE_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<access>[a-z*]+)(?:\?(?P<query>.+))?$"
)
_V2_ACCESS = re.compile(r"^c?r?u?d?s?$")
#: The letters of v2 access, as the interactions they allow. Only r and s exist server-side.
READ, SEARCH = "r", "s"
#: Scopes that carry identity or launch context, not data: they grant no resource on their own.
#: In the order discovery lists them.
CONTEXT_SCOPE_ORDER = (
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
)
CONTEXT_SCOPES = frozenset(CONTEXT_SCOPE_ORDER)
#: The kinds of people who log in (UserAccount.fhir_user "Patient/…" or "Practitioner/…").
PATIENT_USER, PRACTITIONER_USER = "patient", "practitioner"


@dataclass(frozen=True)
class ResourceScope:
    context: str
    resource_type: str
    permissions: frozenset[str]
    #: Granular restriction: (parameter, value) pairs a resource must match (AND), or ().
    filters: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def covers(self, resource_type: str) -> bool:
        return self.resource_type in ("*", resource_type)


def parse_scope(text: str) -> ResourceScope | None:
    match = _RESOURCE_SCOPE.match(text)
    if not match:
        return None
    access = match["access"]
    if access in ("read",):
        permissions = frozenset({READ, SEARCH})
    elif access == "write":
        permissions = frozenset({"c", "u", "d"})
    elif access == "*":
        permissions = frozenset({"c", READ, "u", "d", SEARCH})
    elif access and _V2_ACCESS.match(access):
        permissions = frozenset(access)
    else:
        return None
    query = match["query"]
    filters = tuple(parse_qsl(query, keep_blank_values=False)) if query else ()
    if query and not filters:
        return None
    return ResourceScope(match["context"], match["type"], permissions, filters, text)


@dataclass(frozen=True)
class ScopeSet:
    scopes: tuple[str, ...]
    resources: tuple[ResourceScope, ...] = field(default=())

    @classmethod
    def parse(cls, text: str) -> ScopeSet:
        names = tuple(dict.fromkeys(s for s in text.split() if s))
        parsed = tuple(p for p in (parse_scope(s) for s in names) if p is not None)
        return cls(scopes=names, resources=parsed)

    def __contains__(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def text(self) -> str:
        return " ".join(self.scopes)

    def contexts(self) -> set[str]:
        return {r.context for r in self.resources}

    def granting(self, context: str, resource_type: str, permission: str) -> list[ResourceScope]:
        """The scopes that allow `permission` on `resource_type` in `context`."""
        return [
            r
            for r in self.resources
            if r.context == context and r.covers(resource_type) and permission in r.permissions
        ]

    def restricted_to(self, allowed: ScopeSet) -> ScopeSet:
        """Only the scopes of this set that `allowed` also names (for narrowing a grant)."""
        return ScopeSet.parse(" ".join(s for s in self.scopes if s in allowed.scopes))


# -- binding scopes to who logged in ------------------------------------------------------------


def user_kind(fhir_user: str) -> str:
    """PATIENT_USER for "Patient/<id>", PRACTITIONER_USER for "Practitioner/<id>", else ""."""
    if fhir_user.startswith("Patient/"):
        return PATIENT_USER
    if fhir_user.startswith("Practitioner/"):
        return PRACTITIONER_USER
    return ""


def holdable(scope: str, kind: str, *, patient_context: bool) -> bool:
    """Whether a login of `kind` may hold `scope` through an authorization-code grant.

    patient/ scopes need a patient in context (a patient's own, or the one a practitioner
    chose); user/ scopes reach every record the user may see, so only practitioners hold
    them; system/ scopes belong to backend services (client_credentials) and are never held
    by a login. Unknown scopes grant nothing and are dropped."""
    if scope in CONTEXT_SCOPES:
        return True
    parsed = parse_scope(scope)
    if parsed is None:
        return False
    if parsed.context == "patient":
        return kind in (PATIENT_USER, PRACTITIONER_USER) and patient_context
    if parsed.context == "user":
        return kind == PRACTITIONER_USER
    return False


def bind_to_user(scopes: Iterable[str], kind: str, *, patient_context: bool) -> list[str]:
    """The scopes of `scopes` a login of `kind` may hold, in order, without duplicates."""
    return [s for s in dict.fromkeys(scopes) if holdable(s, kind, patient_context=patient_context)]


def bound_to_login(scope: str, fhir_user: str, patient_id: str) -> str:
    """The part of `scope` (space-separated) the login `fhir_user` may hold, when the
    authorization carries `patient_id` (or no patient, "")."""
    kind = user_kind(fhir_user)
    return " ".join(bind_to_user(scope.split(), kind, patient_context=bool(patient_id)))


def grants_data(scopes: Iterable[str]) -> bool:
    """True when at least one scope is a resource scope (launch, openid and the like are not)."""
    return any(parse_scope(s) is not None for s in scopes)
