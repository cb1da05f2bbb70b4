"""The CareCloud patient record as the source of the compartment types read from it
(Coverage, RelatedPerson) and of the payer Organizations its insurances name.

Searches and reads share the Patient read's own call (`GET /patients/{id}`, no parameters),
so the client's cache serves them all from one vendor call. Defines no MAPPING.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facade.core.compartment import BulkListing, FetchContext
from facade.core.mapping import Record
from mappings.carecloud.fields import PATIENTS, expand_guid

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

#: The patient record names its own patient in `id` (what a confined read checks).
PATIENT_FIELD = "id"
#: Practice-wide (Bulk $export): the patient list holds the whole record, insurances and
#: emergency contact included; CareCloud has no updated-since filter.
PATIENT_LISTING = BulkListing(endpoint=PATIENTS, since_param=None)


async def patient_detail(
    client: VendorClient, patient_id: str, context: FetchContext
) -> Record | None:
    """`GET /patients/{guid}`; `patient_id` may be the GUID or its base32 key (the form
    compartment ids carry)."""
    guid = expand_guid(patient_id)
    if guid is None:
        return None
    return await client.get_record(
        PATIENTS, guid, {}, reason=context.reason, cache_ttl=context.cache_ttl
    )


async def patient_records(
    client: VendorClient, patient_id: str, context: FetchContext
) -> list[Record]:
    record = await patient_detail(client, patient_id, context)
    return [record] if record is not None else []
