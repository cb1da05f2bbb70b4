"""Device (us-core-implantable-device) ← DrChrono /api/implantable_devices.

The UDI's human-readable form is the carrier; its GS1 application identifiers give the
device identifier (01) and, when DrChrono's own fields are empty, the production
identifiers: manufacture (11) and expiry (17) dates, lot (10) and serial (21). The device
type is DrChrono's GMDN preferred term, coded in SNOMED CT through a small curated table.
`Device/facade` (facade itself, the Provenance transmitter) is answered by the framework.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from facade.core.compartment import CompartmentMapping, Source, fhir_id
from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    PatientParam,
    Record,
    Resource,
    SearchParam,
)
from mappings.drchrono.fields import UPDATED, fhir_date, meta, text
from mappings.valuemaps import SNOMED, US_CORE

PROFILE = US_CORE + "us-core-implantable-device"
SOURCE_NAME = "device"
FDA_UDI_ISSUER = "http://hl7.org/fhir/NamingSystem/fda-udi"
GS1_ISSUER = "http://hl7.org/fhir/NamingSystem/gs1-di"

_AI = re.compile(r"\((\d{2,4})\)([^(]*)")

#: GMDN preferred term (lower case) → SNOMED CT device concept.
DEVICE_TYPE = {
    "copper intrauterine contraceptive device": (
        "268460000",
        "Intrauterine contraceptive device (physical object)",
    ),
    "dual-chamber implantable pacemaker": (
        "706004007",
        "Implantable cardiac pacemaker (physical object)",
    ),
    "dual-chamber implantable cardioverter defibrillator": (
        "72506001",
        "Implantable defibrillator, device (physical object)",
    ),
    "uncoated knee femur prosthesis, metallic": ("314523008", "Joint implant (physical object)"),
    "posterior-chamber intraocular lens, pseudophakic": (
        "303608005",
        "Ophthalmological implant (physical object)",
    ),
}


def parse_udi(udi: str) -> dict[str, str]:
    """GS1 application identifiers of a human-readable UDI: {"01": GTIN, "17": YYMMDD, ...}."""
    return {ai: value.strip() for ai, value in _AI.findall(udi)}


def _gs1_date(value: str | None) -> str | None:
    if not value or len(value) != 6 or not value.isdigit():
        return None
    year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:6])
    try:
        return date(year, month, max(day, 1)).isoformat()
    except ValueError:
        return None


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    udi = text(record.get("udi"))
    parts = parse_udi(udi) if udi else {}
    resource: Resource = {
        "resourceType": "Device",
        "id": fhir_id(SOURCE_NAME, record["id"]),
        "meta": meta(PROFILE, record.get("updated_at"), ctx),
    }
    if udi:
        carrier: dict[str, Any] = {"carrierHRF": udi}
        if "01" in parts:
            carrier = {
                "deviceIdentifier": parts["01"],
                "issuer": GS1_ISSUER,
                "jurisdiction": FDA_UDI_ISSUER,
                **carrier,
            }
        resource["udiCarrier"] = [carrier]
    # distinctIdentifier (the HCT/P distinct identification code) has no DrChrono field.
    resource["status"] = "inactive" if text(record.get("status")) == "inactive" else "active"
    manufacturer = text(record.get("company_name"))
    if manufacturer:
        resource["manufacturer"] = manufacturer
    made = fhir_date(record.get("manufacturing_date")) or _gs1_date(parts.get("11"))
    if made:
        resource["manufactureDate"] = made
    expires = fhir_date(record.get("expiration_date")) or _gs1_date(parts.get("17"))
    if expires:
        resource["expirationDate"] = expires
    lot = text(record.get("lot_number")) or parts.get("10")
    if lot:
        resource["lotNumber"] = lot
    serial = text(record.get("serial_number")) or parts.get("21")
    if serial:
        resource["serialNumber"] = serial
    brand = text(record.get("brand_name"))
    if brand:
        resource["deviceName"] = [{"name": brand, "type": "manufacturer-name"}]
    model = text(record.get("version_or_model"))
    if model:
        resource["modelNumber"] = model
    term = text(record.get("gmdn_pt_name"))
    device_type: dict[str, Any] = {}
    known = DEVICE_TYPE.get((term or "").lower())
    if known:
        device_type["coding"] = [{"system": SNOMED, "code": known[0], "display": known[1]}]
    device_type["text"] = term or brand or "Implantable device"
    resource["type"] = device_type
    resource["patient"] = {"reference": f"Patient/{record['patient']}"}
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="Device",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=UPDATED,
            endpoint="implantable_devices",
            transform=transform,
            description="implantable devices",
        ),
    ),
    search_params=(
        SearchParam("Resource-lastUpdated", LocalFilter()),
        SearchParam("us-core-device-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the implantable device record")),
        SearchParam("us-core-device-type", LocalFilter()),
        SearchParam("us-core-device-status", LocalFilter()),
    ),
    combinations=(
        (("patient",), "SHALL"),
        (("patient", "type"), "SHOULD"),
        (("patient", "status"), "SHOULD"),
    ),
    notes="Device/facade is facade itself (the Provenance transmitter), not a patient device.",
)
