"""CareCloud's practice groups for Group export: each provider's panel (`provider-<id>`) and
each location's patients (`location-<id>`), listed from /providers and /locations, their
members from /patients filtered by primary provider or location (active and inactive)."""

from __future__ import annotations

from facade.core.vendor import PracticeGroup, VendorClient
from facade.errors import ResourceNotFound

#: CareCloud's patient-list filter for each group kind.
_FILTER = {"provider": "provider_id", "location": "location_id"}
#: Up to this many members are checked one by one; more are checked against the full list.
CHECK_ONE_BY_ONE = 20


class CareCloudGroups:
    kinds: tuple[str, ...] = ("provider", "location")

    def owns(self, group_id: str) -> bool:
        kind, _, vendor_id = group_id.partition("-")
        return kind in self.kinds and vendor_id.isdigit()

    async def groups(self, client: VendorClient, cache_ttl: float) -> list[PracticeGroup]:
        providers = await client.list_all("providers", {}, reason="groups", cache_ttl=cache_ttl)
        locations = await client.list_all("locations", {}, reason="groups", cache_ttl=cache_ttl)
        found = [
            PracticeGroup(f"provider-{p['id']}", f"Patients of provider {p['id']}", "provider")
            for p in providers
            if "id" in p
        ]
        found += [
            PracticeGroup(f"location-{loc['id']}", f"Patients of location {loc['id']}", "location")
            for loc in locations
            if "id" in loc
        ]
        return found

    async def members(self, client: VendorClient, group_id: str, cache_ttl: float) -> list[str]:
        kind, _, vendor_id = group_id.partition("-")
        if kind not in _FILTER or not vendor_id.isdigit():
            raise ResourceNotFound(f"Group/{group_id} is not known.")
        records = await client.list_all(
            "patients", {_FILTER[kind]: vendor_id}, reason="group members", cache_ttl=cache_ttl
        )
        return [str(r["id"]).lower() for r in records if "id" in r]

    async def unknown_patients(self, client: VendorClient, patient_ids: list[str]) -> list[str]:
        if len(patient_ids) <= CHECK_ONE_BY_ONE:
            missing = []
            for member in patient_ids:
                record = await client.get_record("patients", member, reason="group member check")
                if record is None:
                    missing.append(member)
            return missing
        records = await client.list_all("patients", {}, reason="group member check")
        known = {str(r["id"]).lower() for r in records if "id" in r}
        return [m for m in patient_ids if m.lower() not in known]


GROUPS = CareCloudGroups()
