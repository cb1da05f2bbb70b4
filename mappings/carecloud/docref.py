"""The US Core `$docref` operation (OperationDefinition/docref) over CareCloud, and the
C-CDA DocumentReference it returns: CareCloud generates the patient's CCD on request
(`GET /patients/<guid>/ccda`, application/xml); facade inlines the XML.

CareCloud's CCD always covers the whole record: it takes no date range. So `start`/`end`
cannot narrow it; $docref answers the whole-record CCD (a superset of any period, which
US Core allows: the server decides what the current document is), without a context.period.

No MAPPING here: document_reference.py declares the operation and the `ccd` source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facade.core.compartment import FetchContext
from facade.core.docref import docref_parameters, service_today
from facade.core.mapping import MappingContext, Record, Resource
from facade.fhir.paging import searchset
from facade.fhir.query import SearchQuery
from mappings.carecloud.fields import chart_id, expand_guid, is_guid
from mappings.ccda import CCD_TYPE, ccd_document_reference
from mappings.valuemaps import LOINC

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

CCD_SOURCE = "ccd"


def ccd_id(patient_id: str) -> str:
    """`ccd-<patient key>`: the patient's GUID as its key (compartment ids split at '-')."""
    return chart_id(CCD_SOURCE, patient_id)


def ccd_transform(record: Record, ctx: MappingContext) -> list[Resource]:
    """A fetched CCD ({patient, xml}) as a DocumentReference with the XML inline."""
    patient_id = str(record["patient"])
    return [
        ccd_document_reference(ccd_id(patient_id), patient_id, record["xml"], ctx.practice_group_id)
    ]


def ccda_path(patient_id: str) -> str:
    return f"/patients/{patient_id}/ccda"


async def read_ccd(client: VendorClient, key: str, fc: FetchContext) -> list[Record]:
    """The readable CCD `ccd-<patient key>`: the patient's whole record, generated now."""
    patient_id = expand_guid(key)
    if patient_id is None:
        return []
    xml = await client.get_document(ccda_path(patient_id), reason=fc.reason, cache_ttl=fc.cache_ttl)
    return [{"patient": patient_id, "xml": xml}] if xml is not None else []


async def no_stored_ccd(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    """Searches list stored documents only; the C-CDA is generated on demand by $docref."""
    return []


def patient_guid(value: str) -> str | None:
    """The CareCloud patient GUID in `<guid>`, `Patient/<guid>` or `<base>/Patient/<guid>`
    (the core's `patient_id_of` reads integer ids only)."""
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] != "Patient":
        return None
    return parts[-1].lower() if is_guid(parts[-1]) else None


async def docref(service: Any, query: SearchQuery) -> dict[str, Any]:
    """`DocumentReference/$docref`: the patient's CCD, generated now by CareCloud."""
    asked = docref_parameters(query, patient_guid)
    asked.period(service_today(service))  # refused when it holds no date; the CCD has them all
    resources: list[Resource] = []
    if asked.wants_type(LOINC, CCD_TYPE["code"]):
        ctx = await service.context()
        patient_id = asked.patient_id
        xml = await service.client.get_document(
            ccda_path(patient_id),
            reason="$docref C-CDA",
            cache_ttl=service.limits.page_cache_seconds,
        )
        if xml is not None:
            resources = ccd_transform({"patient": patient_id, "xml": xml}, ctx)
    self_url = f"{service.base_url}/DocumentReference/$docref?{query.encode()}"
    return searchset(service.base_url, "DocumentReference", resources, self_url, None)
