"""What a verified access token lets its bearer do, as the core's access checks need it.

A Grant answers one question per interaction: may this token do `r` or `s` on this type,
and if so, confined to which patient and narrowed by which granular filters. Deny by
default: no matching scope means no access. A token issued to a patient's login never
reaches beyond that patient, whatever scopes it carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from facade.auth.scopes import PATIENT_USER, READ, SEARCH, ScopeSet


@dataclass(frozen=True)
class Access:
    #: The only patient whose compartment may be touched, or None when not confined.
    patient_id: str | None
    #: Granular alternatives: the resource must match all pairs of at least one of them.
    #: None means no granular narrowing.
    filters: tuple[tuple[tuple[str, str], ...], ...] | None


@dataclass(frozen=True)
class Grant:
    client_id: str
    scopes: ScopeSet
    #: The launch patient (patient context), if any.
    patient_id: str | None = None
    encounter_id: str | None = None
    #: "Patient/123" or "Practitioner/456" for user tokens; None for backend services.
    fhir_user: str | None = None
    username: str | None = None
    token_id: str = ""
    #: True for tokens from the client_credentials grant (the only ones system/ scopes work for).
    backend: bool = False
    #: Who logged in: PATIENT_USER, PRACTITIONER_USER, or "" (a backend or an operator's tool).
    user_kind: str = ""

    def access(self, resource_type: str, permission: str) -> Access | None:
        """How `permission` (READ or SEARCH) on `resource_type` is allowed, or None."""
        assert permission in (READ, SEARCH)
        unconfined: list[tuple[tuple[str, str], ...]] = []
        confined: list[tuple[tuple[str, str], ...]] = []
        # A patient's login is granted only patient/ scopes, but an older or operator-made
        # token may carry user/ or system/ ones: user/ is held to the patient, system/ is void.
        patient_login = self.user_kind == PATIENT_USER
        for context in ("system", "user", "patient"):
            if context == "system" and (not self.backend or patient_login):
                continue
            confine = context == "patient" or patient_login
            if confine and self.patient_id is None:
                continue
            for scope in self.scopes.granting(context, resource_type, permission):
                (confined if confine else unconfined).append(scope.filters)
        if () in unconfined:
            return Access(patient_id=None, filters=None)
        if not unconfined and not confined:
            return None
        patient = self.patient_id if confined else None
        alternatives = unconfined + confined
        if () in alternatives:
            return Access(patient_id=patient, filters=None)
        return Access(patient_id=patient, filters=tuple(alternatives))


#: The grant facade's own tooling uses (bulk export workers, operator commands): everything.
INTERNAL = Grant(client_id="facade", scopes=ScopeSet.parse("system/*.rs"), backend=True)
