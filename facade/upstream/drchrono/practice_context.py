"""The practice facts DrChrono mappings need: practice group, time zone, custom fields.

Read once from /api/users/current (a 302 to the user), /api/doctors and
/api/custom_demographics, through the same client and call budget as everything else.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from facade.core.mapping import MappingContext
from facade.core.vendor import VendorClient
from mappings.drchrono.patient import CUSTOM_FIELD_ROLES

log = logging.getLogger("facade.upstream.drchrono")


async def load_practice_context(
    client: VendorClient, current_user: dict[str, object], lookup_ttl: float
) -> MappingContext:
    doctors = await client.list_all(
        "doctors", {}, reason="practice context: doctors", cache_ttl=lookup_ttl
    )
    doctor_id = str(current_user.get("doctor", ""))
    me = next((d for d in doctors if str(d["id"]) == doctor_id), doctors[0] if doctors else {})
    zone_name = str(me.get("timezone") or "UTC")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown practice time zone; using UTC")
        zone = ZoneInfo("UTC")
    definitions = await client.list_all(
        "custom_demographics", {}, reason="practice context: custom fields", cache_ttl=lookup_ttl
    )
    roles = {
        str(d["id"]): CUSTOM_FIELD_ROLES[str(d.get("template_name"))]
        for d in definitions
        if str(d.get("template_name")) in CUSTOM_FIELD_ROLES and not d.get("archived")
    }
    group = current_user.get("practice_group") or me.get("practice_group") or "practice"
    return MappingContext(
        practice_group_id=str(group),
        practice_name=str(me.get("practice_group_name") or "Practice"),
        timezone=zone,
        custom_field_roles=roles,
    )
