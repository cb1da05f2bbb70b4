"""The US Core `$docref` operation (OperationDefinition/docref) and the C-CDA
DocumentReference it returns: DrChrono generates the patient's CCD on request
(`GET /api/patients/<id>/ccda`, optionally limited by `date_range`); facade inlines the XML.

No MAPPING here: document_reference.py declares the operation and the `ccd` source.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from facade.core.compartment import FetchContext, fhir_id
from facade.core.mapping import MappingContext, Record, Resource
from facade.core.planner import patient_id_of
from facade.errors import InvalidParameterValue, InvalidRequest, UnknownParameter
from facade.fhir.paging import searchset
from facade.fhir.query import SearchQuery
from mappings.valuemaps import (
    IHE_FORMAT_CODE,
    LOINC,
    US_CORE,
    US_CORE_DOCUMENT_CATEGORY,
)

if TYPE_CHECKING:
    from facade.core.vendor import VendorClient

PROFILE = US_CORE + "us-core-documentreference"
CCD_SOURCE = "ccd"
CCD_TYPE = {"system": LOINC, "code": "34133-9", "display": "Summary of episode note"}
CCDA_FORMAT = {
    "system": IHE_FORMAT_CODE,
    "code": "urn:hl7-org:sdwg:ccda-structuredBody:2.1",
    "display": "C-CDA R2.1 Structured Body",
}
#: DrChrono refuses a date_range longer than this that reaches today.
VENDOR_MAX_RANGE_DAYS = 190
_CDA = "{urn:hl7-org:v3}"
_PARAMETERS = frozenset({"patient", "start", "end", "type", "on-demand"})


def _cda_time(raw: str | None) -> str | None:
    """A CDA TS (YYYYMMDDHHMMSS±ZZZZ) as a FHIR instant, or None."""
    if not raw or len(raw) < 14:
        return None
    try:
        moment = datetime.strptime(raw[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    offset = raw[14:]
    if len(offset) == 5 and offset[0] in "+-" and offset[1:].isdigit():
        return moment.isoformat() + f"{offset[:3]}:{offset[3:]}"
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _header(xml: bytes) -> tuple[dict[str, str] | None, str | None, str | None]:
    """(identifier, effective instant, title) from the ClinicalDocument header."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None, None, None
    identifier = None
    doc_id = root.find(f"{_CDA}id")
    if doc_id is not None and doc_id.get("root"):
        root_oid = doc_id.get("root", "")
        extension = doc_id.get("extension")
        identifier = (
            {"system": f"urn:oid:{root_oid}", "value": extension}
            if extension
            else {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{root_oid}"}
        )
    effective = root.find(f"{_CDA}effectiveTime")
    title = root.findtext(f"{_CDA}title")
    return identifier, _cda_time(effective.get("value") if effective is not None else None), title


def ccd_id(patient_id: str, start: str | None, end: str | None) -> str:
    if start and end:
        return fhir_id(CCD_SOURCE, patient_id, start.replace("-", ""), end.replace("-", ""))
    return fhir_id(CCD_SOURCE, patient_id)


def ccd_transform(record: Record, ctx: MappingContext) -> list[Resource]:
    """A fetched CCD ({patient, xml, start, end}) as a DocumentReference with inline XML."""
    patient_id = str(record["patient"])
    xml: bytes = record["xml"]
    identifier, effective, title = _header(xml)
    resource: Resource = {
        "resourceType": "DocumentReference",
        "id": ccd_id(patient_id, record.get("start"), record.get("end")),
        "meta": {"profile": [PROFILE]},
    }
    if identifier:
        resource["identifier"] = [identifier]
    resource.update(
        {
            "status": "current",
            "type": {"coding": [CCD_TYPE], "text": "Continuity of Care Document"},
            "category": [
                {
                    "coding": [
                        {
                            "system": US_CORE_DOCUMENT_CATEGORY,
                            "code": "clinical-note",
                            "display": "Clinical Note",
                        }
                    ]
                }
            ],
            "subject": {"reference": f"Patient/{patient_id}"},
        }
    )
    if effective:
        resource["date"] = effective
    resource["custodian"] = {"reference": f"Organization/{ctx.practice_group_id}"}
    attachment: dict[str, Any] = {
        "contentType": "application/xml",
        "data": base64.b64encode(xml).decode("ascii"),
        "title": title or "Continuity of Care Document",
    }
    if effective:
        attachment["creation"] = effective
    resource["content"] = [{"attachment": attachment, "format": CCDA_FORMAT}]
    if record.get("start") and record.get("end"):
        resource["context"] = {"period": {"start": record["start"], "end": record["end"]}}
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


def _one(query: SearchQuery, name: str) -> str | None:
    values = [v for c in query.clauses if c.name == name for v in c.values]
    if len(values) > 1:
        raise InvalidParameterValue(f"$docref takes one {name!r} value.")
    return values[0] if values else None


def _date(name: str, raw: str | None) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise InvalidParameterValue(f"$docref {name!r} must be a date or dateTime.") from None


def _wants_ccd(query: SearchQuery) -> bool:
    values = [v for c in query.clauses if c.name == "type" for v in c.values]
    if not values:
        return True
    for value in values:
        system, bar, code = value.rpartition("|")
        if code == CCD_TYPE["code"] and (not bar or system in ("", LOINC)):
            return True
    return False


def _vendor_range(start: date | None, end: date | None, today: date) -> str | None:
    """A date_range DrChrono accepts for [start, end], or None for the whole record."""
    if start is None and end is None:
        return None
    low = start or date(1900, 1, 1)
    high = end or today
    if low > high:  # the vendor refuses an inverted range (start 9999-12-31, end 0001-01-01)
        raise InvalidParameterValue(
            "$docref covers no dates: start (default 1900-01-01) is after end (default today)."
        )
    if high - low > timedelta(days=VENDOR_MAX_RANGE_DAYS) and high >= today:
        return None  # refused by the vendor; the whole record is a superset
    return f"{low.isoformat()}/{high.isoformat()}"


async def docref(service: Any, query: SearchQuery) -> dict[str, Any]:
    """`DocumentReference/$docref`: the patient's CCD, generated now by DrChrono."""
    for clause in query.clauses:
        if clause.name not in _PARAMETERS:
            raise UnknownParameter(
                f"$docref has no parameter {clause.name!r}"
                f" (parameters: {', '.join(sorted(_PARAMETERS))})."
            )
    raw_patient = _one(query, "patient")
    if raw_patient is None:
        raise InvalidRequest("$docref needs the patient parameter.")
    patient_id = patient_id_of(raw_patient)
    if patient_id is None:
        raise InvalidParameterValue("$docref patient must be a Patient id or reference.")
    start, end = _date("start", _one(query, "start")), _date("end", _one(query, "end"))
    if start and end and start > end:
        raise InvalidParameterValue("$docref start must not be after end.")
    on_demand = _one(query, "on-demand")
    if on_demand not in (None, "true", "false"):
        raise InvalidParameterValue("$docref on-demand must be true or false.")
    resources: list[Resource] = []
    if _wants_ccd(query):
        ctx = await service.context()
        clock = getattr(service, "_clock", None)
        today = (clock.now() if clock is not None else datetime.now(UTC)).date()
        date_range = _vendor_range(start, end, today)
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
