"""DrChrono's practice groups for Group export: each doctor's panel (`doctor-<id>`) and each
office's patients (`office-<id>`), listed from /api/doctors and /api/offices."""

from __future__ import annotations

from facade.core.vendor import PracticeGroup, VendorClient
from facade.errors import ResourceNotFound
from facade.upstream.drchrono.wire import WIRE

#: DrChrono's patient-list filter for each group kind.
_FILTER = {"doctor": "doctor", "office": "offices"}


class DrChronoGroups:
    kinds: tuple[str, ...] = ("doctor", "office")

    def owns(self, group_id: str) -> bool:
        kind, _, vendor_id = group_id.partition("-")
        return kind in self.kinds and vendor_id.isdigit()

    async def groups(self, client: VendorClient, cache_ttl: float) -> list[PracticeGroup]:
        doctors = await client.list_all("doctors", {}, reason="groups", cache_ttl=cache_ttl)
        offices = await client.list_all(
            "offices", WIRE.everything_params("offices"), reason="groups", cache_ttl=cache_ttl
        )
        found = [
            PracticeGroup(f"doctor-{d['id']}", f"Patients of doctor {d['id']}", "doctor")
            for d in doctors
            if "id" in d
        ]
        found += [
            PracticeGroup(f"office-{o['id']}", f"Patients seen at office {o['id']}", "office")
            for o in offices
        ]
        return found

    async def members(self, client: VendorClient, group_id: str, cache_ttl: float) -> list[str]:
        kind, _, vendor_id = group_id.partition("-")
        if kind not in _FILTER:
            raise ResourceNotFound(f"Group/{group_id} is not known.")
        records = await client.list_all(
            "patients",
            {_FILTER[kind]: vendor_id, **_ALL_PATIENTS},
            reason="group members",
            cache_ttl=cache_ttl,
        )
        return [str(r["id"]) for r in records]

    async def unknown_patients(self, client: VendorClient, patient_ids: list[str]) -> list[str]:
        if len(patient_ids) <= CHECK_ONE_BY_ONE:
            missing = []
            for member in patient_ids:
                record = await client.get_record(
                    "patients",
                    member,
                    WIRE.everything_params("patients"),
                    reason="group member check",
                )
                if record is None:
                    missing.append(member)
            return missing
        records = await client.list_all("patients", _ALL_PATIENTS, reason="group member check")
        known = {str(r["id"]) for r in records}
        return [m for m in patient_ids if m not in known]


#: Up to this many members are checked one by one; more are checked against the full list.
CHECK_ONE_BY_ONE = 20
#: Every patient, inactive ones too, in the largest pages.
_ALL_PATIENTS = {**WIRE.everything_params("patients"), **WIRE.page_params(WIRE.largest_page)}

GROUPS = DrChronoGroups()
