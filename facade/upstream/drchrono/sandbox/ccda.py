"""Builds the C-CDA R2.1 Continuity of Care Document that `/api/patients/<id>/ccda` returns.

A real, well-formed ClinicalDocument (US Realm Header + CCD templateIds) with problems,
medications, allergies, results, vital signs and immunizations from the patient's records.
It is a pure function of the dataset: it must never read the clock or mutate records.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, datetime

from facade.upstream.drchrono.sandbox.ccda_sections import (
    GENDER,
    LOINC,
    RACE_ETHNICITY,
    V3,
    XSI,
    allergies_section,
    effective_time,
    el,
    immunizations_section,
    in_window,
    medications_section,
    problems_section,
    result_date,
    results_section,
    template,
    ts,
    vital_signs_section,
)
from facade.upstream.drchrono.sandbox.dataset import Record, SandboxDataset

_GENDER_CODES = {"Male": "M", "Female": "F"}
#: DrChrono race/ethnicity values → CDC Race & Ethnicity codes (OMB categories).
_RACE_CODES = {
    "indian": ("1002-5", "American Indian or Alaska Native"),
    "asian": ("2028-9", "Asian"),
    "black": ("2054-5", "Black or African American"),
    "hawaiian": ("2076-8", "Native Hawaiian or Other Pacific Islander"),
    "white": ("2106-3", "White"),
}
_ETHNICITY_CODES = {
    "hispanic": ("2135-2", "Hispanic or Latino"),
    "not_hispanic": ("2186-5", "Not Hispanic or Latino"),
}
#: DrChrono's ISO 639-2 preferred_language → the BCP 47 tag CDA's languageCode wants.
_LANGUAGE_TAGS = {
    "eng": "en",
    "spa": "es",
    "zho": "zh",
    "fra": "fr",
    "ita": "it",
    "jpn": "ja",
    "por": "pt",
    "rus": "ru",
}


def _header(doc: ET.Element, dataset: SandboxDataset, patient: Record, now: datetime) -> None:
    el(doc, "realmCode", code="US")
    el(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    template(doc, "2.16.840.1.113883.10.20.22.1.1", "2015-08-01")
    template(doc, "2.16.840.1.113883.10.20.22.1.2", "2015-08-01")
    el(
        doc,
        "id",
        root="2.16.840.1.113883.3.8888",
        extension=f"ccd-{patient['id']}-{now:%Y%m%d%H%M%S}",
    )
    el(doc, "code", code="34133-9", codeSystem=LOINC, displayName="Summarization of Episode Note")
    el(doc, "title", "Continuity of Care Document")
    el(doc, "effectiveTime", value=now.strftime("%Y%m%d%H%M%S+0000"))
    el(doc, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25")
    el(doc, "languageCode", code="en-US")

    role = el(el(doc, "recordTarget"), "patientRole")
    el(role, "id", root="2.16.840.1.113883.3.8888.1", extension=str(patient["id"]))
    addr = el(role, "addr", use="HP")
    for tag, key in (
        ("streetAddressLine", "address"),
        ("city", "city"),
        ("state", "state"),
        ("postalCode", "zip_code"),
    ):
        if patient.get(key):
            el(addr, tag, str(patient[key]))
    el(addr, "country", "US")
    for use, key in (("HP", "home_phone"), ("MC", "cell_phone")):
        if patient.get(key):
            el(role, "telecom", use=use, value=f"tel:{patient[key]}")
    if patient.get("email"):
        el(role, "telecom", value=f"mailto:{patient['email']}")
    person = el(role, "patient")
    name = el(person, "name", use="L")
    el(name, "given", str(patient.get("first_name") or ""))
    if patient.get("middle_name"):
        el(name, "given", str(patient["middle_name"]))
    el(name, "family", str(patient.get("last_name") or ""))
    gender = _GENDER_CODES.get(str(patient.get("gender") or ""))
    if gender:
        el(person, "administrativeGenderCode", code=gender, codeSystem=GENDER)
    else:
        el(person, "administrativeGenderCode", nullFlavor="UNK")
    birth = ts(patient.get("date_of_birth"))
    el(person, "birthTime", **({"value": birth[:8]} if birth else {"nullFlavor": "UNK"}))
    for tag, table, key in (
        ("raceCode", _RACE_CODES, "race"),
        ("ethnicGroupCode", _ETHNICITY_CODES, "ethnicity"),
    ):
        coded = table.get(str(patient.get(key) or ""))
        if coded:
            el(person, tag, code=coded[0], codeSystem=RACE_ETHNICITY, displayName=coded[1])
        else:
            el(person, tag, nullFlavor="UNK")
    language = _LANGUAGE_TAGS.get(str(patient.get("preferred_language") or ""))
    if language:
        el(el(person, "languageCommunication"), "languageCode", code=language)

    doctor = next(
        (d for d in dataset.endpoint("doctors") if d.get("id") == patient.get("doctor")), None
    )
    author = el(doc, "author")
    el(author, "time", value=now.strftime("%Y%m%d%H%M%S+0000"))
    assigned = el(author, "assignedAuthor")
    npi = str((doctor or {}).get("npi_number") or "")
    el(
        assigned,
        "id",
        **({"root": "2.16.840.1.113883.4.6", "extension": npi} if npi else {"nullFlavor": "UNK"}),
    )
    person_name = el(el(assigned, "assignedPerson"), "name")
    el(person_name, "given", str((doctor or {}).get("first_name") or ""))
    el(person_name, "family", str((doctor or {}).get("last_name") or ""))

    organization = el(
        el(el(doc, "custodian"), "assignedCustodian"), "representedCustodianOrganization"
    )
    el(
        organization,
        "id",
        root="2.16.840.1.113883.3.8888.2",
        extension=str(dataset.practice_group_id),
    )
    el(organization, "name", dataset.practice_group_name)
    el(organization, "telecom", nullFlavor="UNK")
    el(organization, "addr", nullFlavor="UNK")

    event = el(el(doc, "documentationOf"), "serviceEvent", classCode="PCPR")
    effective_time(
        event, patient.get("date_of_first_appointment"), now.strftime("%Y-%m-%dT%H:%M:%S")
    )


def build_ccd(
    dataset: SandboxDataset,
    patient: Record,
    *,
    start: date | None,
    end: date | None,
    now: datetime,
) -> bytes:
    """The patient's CCD as UTF-8 XML; with `start`/`end` only entries dated in that window."""
    pid = str(patient["id"])

    def mine(endpoint: str) -> list[Record]:
        return [r for r in dataset.endpoint(endpoint) if str(r.get("patient")) == pid]

    doc = ET.Element("ClinicalDocument", {"xmlns": V3, "xmlns:xsi": XSI})
    _header(doc, dataset, patient, now)
    body = el(el(doc, "component"), "structuredBody")
    allergies_section(
        body, [r for r in mine("allergies") if in_window(r.get("created_at"), start, end)]
    )
    medications_section(
        body,
        [
            r
            for r in mine("medications")
            if in_window(r.get("date_prescribed") or r.get("date_started_taking"), start, end)
        ],
    )
    problems_section(
        body,
        [
            r
            for r in mine("problems")
            if in_window(r.get("date_diagnosis") or r.get("date_onset"), start, end)
        ],
    )
    orders = {str(o.get("id")): o for o in mine("lab_orders")}
    results = [
        (result, orders[str(result.get("lab_order"))])
        for result in dataset.endpoint("lab_results")
        if str(result.get("lab_order")) in orders
    ]
    results_section(body, [(r, o) for r, o in results if in_window(result_date(r, o), start, end)])
    vital_signs_section(
        body,
        [
            a
            for a in mine("appointments")
            if a.get("vitals") and in_window(a.get("scheduled_time"), start, end)
        ],
    )
    immunizations_section(
        body,
        [
            r
            for r in mine("patient_vaccine_records")
            if in_window(r.get("administered_start"), start, end)
        ],
    )
    xml: bytes = ET.tostring(doc, encoding="utf-8", xml_declaration=True)
    return xml
