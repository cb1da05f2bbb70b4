"""The CareCloud encounter record as the source of every compartment type read from it
(Encounter, and the chart types nested in it: diagnoses, problems, vitals, ...).

Searches list `GET /encounters?patient_id=<guid>` (unpaged, the whole chart) with exactly
`ENCOUNTER_PARAMS`, so every source built on it shares one cached vendor call per patient.
Reads take the encounter GUID out of a compartment id (its base32 key there, see
fields.compact_guid) and call `GET /encounters/{guid}`. Defines no MAPPING.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facade.core.compartment import BulkListing, FetchContext
from facade.core.mapping import Record
from mappings.carecloud.fields import ENCOUNTERS, expand_guid

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

#: The vendor query parameter that selects one patient's encounters (required by CareCloud).
PATIENT_PARAM = "patient_id"
#: Sent with every encounter list besides the patient (none: the date filter is not used, so
#: that all sources share one call).
ENCOUNTER_PARAMS: dict[str, str] = {}
#: Bulk $export: CareCloud refuses an encounter list without `patient_id`, so an export reads
#: encounters patient by patient, one call per patient shared by Encounter and every chart
#: type; there is no updated-since filter, so `_since` is checked by facade on the answer.
ENCOUNTER_LISTING = BulkListing(endpoint=ENCOUNTERS, since_param=None, per_patient=True)


async def read_encounter(
    client: VendorClient, vendor_id: str, context: FetchContext
) -> list[Record]:
    """The encounter a compartment id names (`vendor_id` is the GUID or its key)."""
    guid = expand_guid(vendor_id)
    if guid is None:
        return []
    record = await client.get_record(
        ENCOUNTERS, guid, {}, reason=context.reason, cache_ttl=context.cache_ttl
    )
    return [record] if record is not None else []
