"""A C-CDA Continuity of Care Document as a US Core DocumentReference with the XML inline:
what `$docref` answers, whichever vendor generated the document.

Only the ClinicalDocument header is read (id, effectiveTime, title); the XML is passed on
byte for byte, never changed or parsed further.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from facade.core.mapping import Resource
from mappings.valuemaps import IHE_FORMAT_CODE, LOINC, US_CORE, US_CORE_DOCUMENT_CATEGORY

PROFILE = US_CORE + "us-core-documentreference"
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


def ccd_document_reference(
    resource_id: str,
    patient_id: str,
    xml: bytes,
    practice_group_id: str,
    period: tuple[str, str] | None = None,
) -> Resource:
    """The CCD `xml` of Patient/`patient_id` as a DocumentReference; `period` (start, end)
    when the vendor generated it for those dates only."""
    identifier, effective, title = _header(xml)
    resource: Resource = {
        "resourceType": "DocumentReference",
        "id": resource_id,
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
    resource["custodian"] = {"reference": f"Organization/{practice_group_id}"}
    attachment: dict[str, Any] = {
        "contentType": "application/xml",
        "data": base64.b64encode(xml).decode("ascii"),
        "title": title or "Continuity of Care Document",
    }
    if effective:
        attachment["creation"] = effective
    resource["content"] = [{"attachment": attachment, "format": CCDA_FORMAT}]
    if period is not None:
        resource["context"] = {"period": {"start": period[0], "end": period[1]}}
    return resource


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
