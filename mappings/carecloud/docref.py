"""The US Core `$docref` operation (OperationDefinition/docref) over CareCloud, and the
C-CDA DocumentReference it returns: CareCloud generates the patient's CCD on request
(`GET /patients/<guid>/ccda`, application/xml); facade inlines the XML.

CareCloud's CCD always covers the whole record: it takes no date range. So `start`/`end`
cannot narrow it; $docref answers the whole-record CCD (a superset of any period, which
US Core allows: the server decides what the current document is), without a context.period.

No MAPPING here: document_reference.py declares the operation and the `ccd` source.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from facade.core.compartment import FetchContext
from facade.core.mapping import MappingContext, Record, Resource
from facade.errors import InvalidParameterValue, InvalidRequest, UnknownParameter
from facade.fhir.paging import searchset
from facade.fhir.query import SearchQuery
from mappings.carecloud.fields import chart_id, expand_guid, is_guid
from mappings.valuemaps import IHE_FORMAT_CODE, LOINC, US_CORE, US_CORE_DOCUMENT_CATEGORY

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
CLINICAL_NOTE = {
    "coding": [
        {"system": US_CORE_DOCUMENT_CATEGORY, "code": "clinical-note", "display": "Clinical Note"}
    ]
}
_CDA = "{urn:hl7-org:v3}"
_PARAMETERS = frozenset({"patient", "start", "end", "type", "on-demand"})
#: An open start means the whole record; the period it covers starts no earlier than this.
EARLIEST = date(1900, 1, 1)


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


def ccd_id(patient_id: str) -> str:
    """`ccd-<patient key>`: the patient's GUID as its key (compartment ids split at '-')."""
    return chart_id(CCD_SOURCE, patient_id)


def ccd_transform(record: Record, ctx: MappingContext) -> list[Resource]:
    """A fetched CCD ({patient, xml}) as a DocumentReference with the XML inline."""
    patient_id = str(record["patient"])
    xml: bytes = record["xml"]
    identifier, effective, title = _header(xml)
    resource: Resource = {
        "resourceType": "DocumentReference",
        "id": ccd_id(patient_id),
        "meta": {"profile": [PROFILE]},
    }
    if identifier:
        resource["identifier"] = [identifier]
    resource["status"] = "current"
    resource["type"] = {"coding": [CCD_TYPE], "text": "Continuity of Care Document"}
    resource["category"] = [CLINICAL_NOTE]
    resource["subject"] = {"reference": f"Patient/{patient_id}"}
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
    return [resource]


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


async def docref(service: Any, query: SearchQuery) -> dict[str, Any]:
    """`DocumentReference/$docref`: the patient's CCD, generated now by CareCloud."""
    for clause in query.clauses:
        if clause.name not in _PARAMETERS:
            raise UnknownParameter(
                f"$docref has no parameter {clause.name!r}"
                f" (parameters: {', '.join(sorted(_PARAMETERS))})."
            )
    raw_patient = _one(query, "patient")
    if raw_patient is None:
        raise InvalidRequest("$docref needs the patient parameter.")
    patient_id = patient_guid(raw_patient)
    if patient_id is None:
        raise InvalidParameterValue("$docref patient must be a Patient id or reference.")
    start, end = _date("start", _one(query, "start")), _date("end", _one(query, "end"))
    if start and end and start > end:
        raise InvalidParameterValue("$docref start must not be after end.")
    if start or end:
        clock = getattr(service, "_clock", None)
        today = (clock.now() if clock is not None else datetime.now(UTC)).date()
        if (start or EARLIEST) > (end or today):
            raise InvalidParameterValue(
                "$docref covers no dates: start (default 1900-01-01) is after end (default today)."
            )
    on_demand = _one(query, "on-demand")
    if on_demand not in (None, "true", "false"):
        raise InvalidParameterValue("$docref on-demand must be true or false.")
    resources: list[Resource] = []
    if _wants_ccd(query):
        ctx = await service.context()
        xml = await service.client.get_document(
            ccda_path(patient_id),
            reason="$docref C-CDA",
            cache_ttl=service.limits.page_cache_seconds,
        )
        if xml is not None:
            resources = ccd_transform({"patient": patient_id, "xml": xml}, ctx)
    self_url = f"{service.base_url}/DocumentReference/$docref?{query.encode()}"
    return searchset(service.base_url, "DocumentReference", resources, self_url, None)
