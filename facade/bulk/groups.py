"""Groups a Group export can name: the vendor's own practice structure (the PracticeGroups
of its vendor entry, e.g. each clinician's panel) and operator-defined lists (e.g. a payer's
attribution list). Members are vendor patient ids; an operator list may only name patients
the vendor knows.
Groups are practice data: who may see them is `may_see_groups`, never a patient's token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from facade.auth.grant import Grant
from facade.bulk.models import BulkGroup
from facade.bulk.store import GroupStore
from facade.core.planner import patient_id_of
from facade.core.service import FhirService
from facade.core.vendor import PracticeGroup, PracticeGroups
from facade.errors import InvalidParameterValue, ResourceNotFound

_OPERATOR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def may_see_groups(grant: Grant, permission: str) -> bool:
    """Whether `grant` may read (`r`) or search (`s`) Groups, and so learn their members.

    A Group lists patients of the whole practice, so it is never in a patient's compartment:
    patient/ scopes grant no Group, and neither does any scope of a patient's login (an
    older or operator-made token of a patient user may carry user/ ones). A backend service
    needs system/Group. A practitioner's login (fhirUser Practitioner/<id>) with user/Group
    sees every group, its own panel and the others alike: user/ tokens see the practice's
    patients in this deployment (Patient?general-practitioner=… lists any doctor's panel to
    them), so hiding other panels would protect nothing and differ from how Patient is
    served. A user/ token with no practitioner behind it (no fhirUser) sees none.
    """
    if grant.backend:
        return bool(grant.scopes.granting("system", "Group", permission))
    if not (grant.fhir_user or "").startswith("Practitioner/"):
        return False
    return bool(grant.scopes.granting("user", "Group", permission))


class UnknownMembers(InvalidParameterValue):
    code = "unknown-group-members"


@dataclass(frozen=True)
class GroupInfo:
    id: str
    name: str
    members: list[str]
    origin: str  # the practice group's kind (the vendor's), or "operator"


class GroupDirectory:
    def __init__(self, service: FhirService, store: GroupStore, practice: PracticeGroups):
        self.service = service
        self.store = store
        self.practice = practice

    async def vendor_groups(self) -> list[tuple[str, str]]:
        ttl = self.service.limits.lookup_cache_seconds
        return [(g.id, g.name) for g in await self._practice_groups(ttl)]

    async def _practice_groups(self, ttl: float) -> list[PracticeGroup]:
        return await self.practice.groups(self.service.client, ttl)

    async def get(self, group_id: str) -> GroupInfo:
        if self.practice.owns(group_id):
            ttl = self.service.limits.lookup_cache_seconds
            known = {g.id: g for g in await self._practice_groups(ttl)}
            if group_id not in known:
                raise ResourceNotFound(f"Group/{group_id} is not known.")
            members = await self.practice.members(
                self.service.client, group_id, self.service.limits.page_cache_seconds
            )
            practice = known[group_id]
            return GroupInfo(group_id, practice.name, members, practice.kind)
        stored = self.store.get(group_id)
        if stored is None:
            raise ResourceNotFound(f"Group/{group_id} is not known.")
        group, members = stored
        return GroupInfo(group.id, group.name, members, "operator")

    async def all(self) -> list[GroupInfo]:
        operator = [GroupInfo(g.id, g.name, m, "operator") for g, m in self.store.all()]
        return operator + [await self.get(gid) for gid, _ in await self.vendor_groups()]

    async def define(
        self, group_id: str, name: str, references: list[str], created_by: str, now: datetime
    ) -> GroupInfo:
        """Create or replace an operator group; every member must be a vendor patient."""
        if not _OPERATOR_ID.match(group_id) or group_id.split("-")[0] in self.practice.kinds:
            raise InvalidParameterValue(f"{group_id!r} cannot be an operator group id.")
        members: list[str] = []
        malformed: list[str] = []
        for reference in references:
            patient = patient_id_of(reference)
            (members.append(patient) if patient else malformed.append(reference))
        unknown = malformed + [
            f"Patient/{m}"
            for m in await self.practice.unknown_patients(self.service.client, members)
        ]
        if unknown:
            raise UnknownMembers(
                "These members are not patients of the practice: " + ", ".join(unknown) + "."
            )
        self.store.save(
            BulkGroup(
                id=group_id, name=name, created_by=created_by, created_at=now, updated_at=now
            ),
            members,
        )
        return GroupInfo(group_id, name, list(dict.fromkeys(members)), "operator")


def group_resource(info: GroupInfo) -> dict[str, Any]:
    return {
        "resourceType": "Group",
        "id": info.id,
        "identifier": [{"system": "urn:facade:group", "value": info.id}],
        "active": True,
        "type": "person",
        "actual": True,
        "name": info.name,
        "quantity": len(info.members),
        "member": [{"entity": {"reference": f"Patient/{m}"}} for m in info.members],
    }
