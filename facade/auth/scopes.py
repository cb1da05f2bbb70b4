"""SMART App Launch scopes (v1 and v2), parsed into what they permit.

    patient/Observation.read           v1: read and search within the patient's compartment
    user/*.rs                          v2: read + search of every type the user can see
    system/Patient.cruds               v2: all interactions, backend services
    patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs
                                       v2 granular: only resources matching the query
    openid fhirUser launch launch/patient launch/encounter offline_access online_access

Parsing never raises on unknown scopes: they are kept as "other" and grant nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

CONTEXTS = ("patient", "user", "system")
_RESOURCE_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<access>[a-z*]+)(?:\?(?P<query>.+))?$"
)
_V2_ACCESS = re.compile(r"^c?r?u?d?s?$")
#: The letters of v2 access, as the interactions they allow. Only r and s exist server-side.
READ, SEARCH = "r", "s"


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
