"""MedicationRequest (us-core-medicationrequest) ← DrChrono /api/medications.

Intent, status, reported and category follow `order_status` (shared/research/upstreams.md
§5.8): prescriptions sent or printed are orders by the doctor, medications the patient takes
on another doctor's or their own account are reported plans. The medication is a
medicationCodeableConcept (RxNorm, NDC when known, the name as text): DrChrono has no
medication records to reference, so there is no `_include=MedicationRequest:medication`.
"""

from __future__ import annotations

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
    no_change_time,
)
from mappings.drchrono.fields import fhir_date, reference, text
from mappings.drchrono.valuemaps import MEDICATION_ORDER_STATUS
from mappings.valuemaps import MEDICATIONREQUEST_CATEGORY, NDC, RXNORM, UCUM, US_CORE

PROFILE = US_CORE + "us-core-medicationrequest"
SOURCE_NAME = "medication"

_PLACEHOLDERS = {"no known medications", "no current medications", "none"}
#: DrChrono dosage_units that are UCUM units as written (or with a known UCUM code).
_UCUM_UNITS = {
    "mg": "mg",
    "g": "g",
    "mcg": "ug",
    "ug": "ug",
    "ml": "mL",
    "mL": "mL",
    "L": "L",
    "meq": "meq",
    "units": "[iU]",
    "unit": "[iU]",
    "%": "%",
}
_CATEGORY_DISPLAY = {
    "community": "Community",
    "outpatient": "Outpatient",
    "inpatient": "Inpatient",
    "discharge": "Discharge",
}


def _number(value: Any) -> float | int | None:
    raw = text(value)
    if raw is None:
        return None
    try:
        number = float(raw)
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def _medication(record: Record) -> dict[str, Any]:
    codings: list[dict[str, str]] = []
    rxnorm = text(record.get("rxnorm"))
    if rxnorm:
        codings.append({"system": RXNORM, "code": rxnorm})
    ndc = text(record.get("ndc"))
    if ndc and ndc != "0":
        codings.append({"system": NDC, "code": ndc})
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    name = text(record.get("name"))
    concept["text"] = name or "Unspecified medication"
    return concept


def _dosage(record: Record) -> dict[str, Any] | None:
    dosage: dict[str, Any] = {}
    sig = text(record.get("signature_note"))
    if sig:
        dosage["text"] = sig
    frequency = text(record.get("frequency"))
    if frequency:
        dosage["timing"] = {"code": {"text": frequency}}
    prn = record.get("prn")
    if isinstance(prn, bool):
        dosage["asNeededBoolean"] = prn
    route = text(record.get("route"))
    if route:
        dosage["route"] = {"text": route}
    amount = _number(record.get("dosage_quantity"))
    if amount is not None:
        quantity: dict[str, Any] = {"value": amount}
        units = text(record.get("dosage_units"))
        if units:
            quantity["unit"] = units
            ucum = _UCUM_UNITS.get(units) or _UCUM_UNITS.get(units.lower())
            if ucum:
                quantity["system"] = UCUM
                quantity["code"] = ucum
        dosage["doseAndRate"] = [{"doseQuantity": quantity}]
    return dosage or None


def transform(record: Record, ctx: MappingContext) -> list[Resource]:
    name = (text(record.get("name")) or "").lower()
    if name in _PLACEHOLDERS:
        return []
    order_status = text(record.get("order_status"))
    intent, status, reported, category, requester = MEDICATION_ORDER_STATUS.get(order_status)
    if text(record.get("status")) == "inactive" or fhir_date(record.get("date_stopped_taking")):
        status = "stopped" if order_status == "Discontinued" else "completed"
    resource: Resource = {
        "resourceType": "MedicationRequest",
        "id": fhir_id(SOURCE_NAME, record["id"]),
        "meta": {"profile": [PROFILE]},
        "status": status,
        "intent": intent,
    }
    if category:
        resource["category"] = [
            {
                "coding": [
                    {
                        "system": MEDICATIONREQUEST_CATEGORY,
                        "code": category,
                        "display": _CATEGORY_DISPLAY[category],
                    }
                ]
            }
        ]
    resource["reportedBoolean"] = reported
    resource["medicationCodeableConcept"] = _medication(record)
    resource["subject"] = {"reference": f"Patient/{record['patient']}"}
    appointment = text(record.get("appointment"))
    if appointment:
        resource["encounter"] = {"reference": f"Encounter/{fhir_id('encounter', appointment)}"}
    authored = fhir_date(record.get("date_prescribed")) or fhir_date(
        record.get("date_started_taking")
    )
    if authored:
        resource["authoredOn"] = authored
    if requester == "doctor":
        doctor = reference("Practitioner", record.get("doctor"))
        if doctor:
            resource["requester"] = doctor
    elif requester == "patient":
        resource["requester"] = {"reference": f"Patient/{record['patient']}"}
    indication = text(record.get("indication"))
    if indication:
        resource["reasonCode"] = [{"text": indication}]
    notes = text(record.get("notes"))
    if notes:
        resource["note"] = [{"text": notes}]
    dosage = _dosage(record)
    if dosage:
        resource["dosageInstruction"] = [dosage]
    dispense: dict[str, Any] = {}
    refills = record.get("number_refills")
    if isinstance(refills, int) and refills >= 0:
        dispense["numberOfRepeatsAllowed"] = refills
    quantity = _number(record.get("dispense_quantity"))
    if quantity is not None:
        dispense["quantity"] = {"value": quantity}
    if dispense and intent == "order":
        resource["dispenseRequest"] = dispense
    daw = record.get("daw")
    if isinstance(daw, bool) and intent == "order":
        resource["substitution"] = {"allowedBoolean": not daw}
    return [resource]


MAPPING = CompartmentMapping(
    resource_type="MedicationRequest",
    profiles=(PROFILE,),
    sources=(
        Source(
            name=SOURCE_NAME,
            last_updated=no_change_time(
                "DrChrono medications carry prescription and start/stop dates, no update time."
            ),
            endpoint="medications",
            transform=transform,
            description="medications (prescriptions and reported medications)",
        ),
    ),
    search_params=(
        SearchParam("us-core-medicationrequest-patient", PatientParam()),
        SearchParam("Resource-id", ById(lambda v: v, "the medication's vendor record")),
        SearchParam("us-core-medicationrequest-intent", LocalFilter()),
        SearchParam("us-core-medicationrequest-status", LocalFilter()),
        SearchParam("us-core-medicationrequest-authoredon", LocalFilter()),
        SearchParam("us-core-medicationrequest-encounter", LocalFilter()),
    ),
    author_paths=("requester",),
    notes="medicationCodeableConcept only (DrChrono has no medication records to reference),"
    " so _include=MedicationRequest:medication is not offered.",
)
