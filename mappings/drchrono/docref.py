"""The US Core `$docref` operation (OperationDefinition/docref) and the C-CDA
DocumentReference it returns: DrChrono generates the patient's CCD on request
(`GET /api/patients/<id>/ccda`, optionally limited by `date_range`); facade inlines the XML.

No MAPPING here: document_reference.py declares the operation and the `ccd` source.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from facade.core.compartment import FetchContext, fhir_id
from facade.core.docref import docref_parameters, service_today
from facade.core.mapping import MappingContext, Record, Resource
from facade.core.planner import patient_id_of
from facade.fhir.paging import searchset
from facade.fhir.query import SearchQuery
from mappings.ccda import CCD_TYPE, ccd_document_reference
from mappings.valuemaps import LOINC

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

CCD_SOURCE = "ccd"
#: DrChrono refuses a date_range longer than this that reaches today.
VENDOR_MAX_RANGE_DAYS = 190


def ccd_id(patient_id: str, start: str | None, end: str | None) -> str:
    if start and end:
        return fhir_id(CCD_SOURCE, patient_id, start.replace("-", ""), end.replace("-", ""))
    return fhir_id(CCD_SOURCE, patient_id)


def ccd_transform(record: Record, ctx: MappingContext) -> list[Resource]:
    """A fetched CCD ({patient, xml, start, end}) as a DocumentReference with inline XML."""
    patient_id = str(record["patient"])
    start, end = record.get("start"), record.get("end")
    resource = ccd_document_reference(
        ccd_id(patient_id, start, end),
        patient_id,
        record["xml"],
        ctx.practice_group_id,
        (start, end) if start and end else None,
    )
    return [resource]


async def fetch_ccd(
    client: VendorClient, patient_id: str, date_range: str | None, reason: str, cache_ttl: float
) -> bytes | None:
    """The CCD's XML, or None when DrChrono has no such patient."""
    params = {"date_range": date_range} if date_range else {}
    path = f"/api/patients/{patient_id}/ccda"
    get_document = getattr(client, "get_document", None)
    if get_document is not None:
        body: bytes | None = await get_document(path, params, reason=reason, cache_ttl=cache_ttl)
        return body
    return await _fetch_raw(client, path, params)


async def _fetch_raw(client: Any, path: str, params: dict[str, str]) -> bytes | None:
    # Interim (see /tmp/facade-requests/encounters.md #1): the client has no non-JSON GET
    # yet, so this uses its HTTP session and token directly, without its retries or cache.
    from facade.errors import UpstreamError

    response = await client._http.get(
        f"{client.base_url}{path}",
        params=params,
        headers={"Authorization": f"Bearer {await client._access_token()}"},
    )
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise UpstreamError(f"The EHR refused facade's request (HTTP {response.status_code}).")
    content: bytes = response.content
    return content


async def read_ccd(client: VendorClient, patient_id: str, fc: FetchContext) -> list[Record]:
    """The readable CCD `ccd-<patient id>`: the patient's whole record."""
    if not patient_id.isdigit():
        return []
    xml = await fetch_ccd(client, patient_id, None, fc.reason, fc.cache_ttl)
    return [{"patient": patient_id, "xml": xml}] if xml is not None else []


def _vendor_range(period: tuple[date, date] | None, today: date) -> str | None:
    """A date_range DrChrono accepts for the period asked for, or None for the whole record."""
    if period is None:
        return None
    low, high = period
    if high - low > timedelta(days=VENDOR_MAX_RANGE_DAYS) and high >= today:
        return None  # refused by the vendor; the whole record is a superset
    return f"{low.isoformat()}/{high.isoformat()}"


async def docref(service: Any, query: SearchQuery) -> dict[str, Any]:
    """`DocumentReference/$docref`: the patient's CCD, generated now by DrChrono."""
    asked = docref_parameters(query, patient_id_of)
    patient_id = asked.patient_id
    resources: list[Resource] = []
    if asked.wants_type(LOINC, CCD_TYPE["code"]):
        ctx = await service.context()
        today = service_today(service)
        # The vendor refuses an inverted range (start 9999-12-31, end 0001-01-01): the client
        # hears of it first.
        date_range = _vendor_range(asked.period(today), today)
        xml = await fetch_ccd(
            service.client,
            patient_id,
            date_range,
            "$docref C-CDA",
            service.limits.page_cache_seconds,
        )
        if xml is not None:
            low, _, high = (date_range or "").partition("/")
            record = {"patient": patient_id, "xml": xml, "start": low or None, "end": high or None}
            resources = ccd_transform(record, ctx)
    self_url = f"{service.base_url}/DocumentReference/$docref?{query.encode()}"
    return searchset(service.base_url, "DocumentReference", resources, self_url, None)
