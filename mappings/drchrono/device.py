"""Device (us-core-implantable-device) ← DrChrono /api/implantable_devices.

The UDI's human-readable form (`udi`) is the carrier. A GS1 UDI's application identifiers
give the device identifier (01) and, when DrChrono's own fields are empty, the production
identifiers: manufacture (11) and expiry (17) dates, lot (10) and serial (21). An ISBT 128
UDI (tissue such as a bone allograft, see isbt128.py) gives the same, and its Donation
Identification Number is the HCT/P's distinct identification code (distinctIdentifier).
The device type is DrChrono's GMDN preferred term, coded in SNOMED CT through a small
curated table.
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
from mappings.drchrono import isbt128
from mappings.drchrono.fields import UPDATED, fhir_date, meta, text
from mappings.valuemaps import SNOMED, US_CORE

PROFILE = US_CORE + "us-core-implantable-device"
SOURCE_NAME = "device"
FDA_UDI_ISSUER = "http://hl7.org/fhir/NamingSystem/fda-udi"
GS1_ISSUER = "http://hl7.org/fhir/NamingSystem/gs1-di"
#: ICCBBA's issuer of ISBT 128 device identifiers for products other than blood (tissue).
ICCBBA_ISSUER = "http://hl7.org/fhir/NamingSystem/iccbba-other-di"

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


def _udi_parts(udi: str | None) -> dict[str, str]:
    """The UDI's device identifier ("di", with its "issuer"), distinct identification code
    ("din") and production identifiers ("made", "expires", "lot", "serial"), GS1 or ISBT 128."""
    if not udi:
        return {}
    isbt = isbt128.parse(udi)
    if isbt is not None:
        found = {
            "di": isbt.device_identifier,
            "issuer": ICCBBA_ISSUER,
            "din": isbt.donation_identification_number,
            "made": isbt.production_date,
            "expires": isbt.expiration_date,
            "lot": isbt.lot_number,
            "serial": isbt.serial_number,
        }
        return {k: v for k, v in found.items() if v}
    gs1 = parse_udi(udi)
    found = {
        "di": gs1.get("01"),
        "issuer": GS1_ISSUER,
        "made": _gs1_date(gs1.get("11")),
        "expires": _gs1_date(gs1.get("17")),
        "lot": gs1.get("10"),
        "serial": gs1.get("21"),
    }
    return {k: v for k, v in found.items() if v}


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    udi = text(record.get("udi"))
    parts = _udi_parts(udi)
    resource: Resource = {
        "resourceType": "Device",
        "id": fhir_id(SOURCE_NAME, record["id"]),
        "meta": meta(PROFILE, record.get("updated_at"), ctx),
    }
    if udi:
        carrier: dict[str, Any] = {"carrierHRF": udi}
        if "di" in parts:
            carrier = {
                "deviceIdentifier": parts["di"],
                "issuer": parts["issuer"],
                "jurisdiction": FDA_UDI_ISSUER,
                **carrier,
            }
        resource["udiCarrier"] = [carrier]
    if "din" in parts:
        resource["distinctIdentifier"] = parts["din"]
    resource["status"] = "inactive" if text(record.get("status")) == "inactive" else "active"
    manufacturer = text(record.get("company_name"))
    if manufacturer:
        resource["manufacturer"] = manufacturer
    made = fhir_date(record.get("manufacturing_date")) or parts.get("made")
    if made:
        resource["manufactureDate"] = made
    expires = fhir_date(record.get("expiration_date")) or parts.get("expires")
    if expires:
        resource["expirationDate"] = expires
    lot = text(record.get("lot_number")) or parts.get("lot")
    if lot:
        resource["lotNumber"] = lot
    serial = text(record.get("serial_number")) or parts.get("serial")
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
    notes="Device/facade is facade itself (the Provenance transmitter), not a patient device.",
)
