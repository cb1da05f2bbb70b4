"""The six CCD sections (allergies, medications, problems, results, vital signs, immunizations).

Each builder appends one section with its narrative table and C-CDA R2.1 entry templates to a
structuredBody; `ccda.py` assembles the document. Pure: never reads the clock or the dataset.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import date
from typing import Any

from facade.upstream.drchrono.sandbox.dataset import Record

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

LOINC = "2.16.840.1.113883.6.1"
SNOMED = "2.16.840.1.113883.6.96"
ICD10CM = "2.16.840.1.113883.6.90"
RXNORM = "2.16.840.1.113883.6.88"
CVX = "2.16.840.1.113883.12.292"
ACT_CODE = "2.16.840.1.113883.5.6"
GENDER = "2.16.840.1.113883.5.1"
RACE_ETHNICITY = "2.16.840.1.113883.6.238"


#: Appointment vitals keys → (LOINC, display, unit key or fixed UCUM unit).
_VITALS = (
    ("height", "8302-2", "Body height", "height_units"),
    ("weight", "29463-7", "Body weight", "weight_units"),
    ("bmi", "39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"),
    ("temperature", "8310-5", "Body temperature", "temperature_units"),
    ("blood_pressure_1", "8480-6", "Systolic blood pressure", "mm[Hg]"),
    ("blood_pressure_2", "8462-4", "Diastolic blood pressure", "mm[Hg]"),
    ("pulse", "8867-4", "Heart rate", "/min"),
    ("respiratory_rate", "9279-1", "Respiratory rate", "/min"),
    ("oxygen_saturation", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    (
        "head_circumference",
        "9843-4",
        "Head Occipital-frontal circumference",
        "head_circumference_units",
    ),
)
_UCUM_UNITS = {
    "inches": "[in_i]",
    "cm": "cm",
    "lbs": "[lb_av]",
    "kg": "kg",
    "f": "[degF]",
    "c": "Cel",
}


# Names stay unqualified in the tree; the root declares urn:hl7-org:v3 as the default namespace.
def el(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    child = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrib.items()})
    if text is not None:
        child.text = text
    return child


def template(parent: ET.Element, root: str, extension: str | None = None) -> None:
    attrib = {"root": root} | ({"extension": extension} if extension else {})
    ET.SubElement(parent, "templateId", attrib)


def ts(value: Any) -> str | None:
    """A DrChrono date/timestamp as an HL7 TS (YYYYMMDD[HHMMSS])."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    digits = value[:19].replace("-", "").replace(":", "").replace("T", "").replace(" ", "")
    return digits if digits.isdigit() else None


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if isinstance(value, str) else None
    except ValueError:
        return None


def in_window(dated: Any, start: date | None, end: date | None) -> bool:
    """Undated entries (e.g. allergies) are current state and stay in a filtered document."""
    day = _day(dated)
    if day is None or start is None or end is None:
        return True
    return start <= day <= end


def effective_time(parent: ET.Element, low: Any, high: Any = None) -> None:
    time = el(parent, "effectiveTime")
    low_ts, high_ts = ts(low), ts(high)
    if low_ts:
        el(time, "low", value=low_ts)
    else:
        el(time, "low", nullFlavor="UNK")
    if high_ts:
        el(time, "high", value=high_ts)


def code_or_unknown(
    parent: ET.Element, tag: str, code: Any, system: str, display: Any = ""
) -> ET.Element:
    if code:
        return el(parent, tag, code=str(code), codeSystem=system, displayName=str(display or ""))
    element = el(parent, tag, nullFlavor="UNK")
    if display:
        el(element, "originalText", str(display))
    return element


def _section(
    body: ET.Element, template_id: str, extension: str, loinc: str, title: str
) -> ET.Element:
    section = el(el(body, "component"), "section")
    template(section, template_id, extension)
    el(section, "code", code=loinc, codeSystem=LOINC, displayName=title)
    el(section, "title", title)
    return section


def _text_table(section: ET.Element, header: Iterable[str], rows: list[list[str]]) -> None:
    text = el(section, "text")
    if not rows:
        el(text, "paragraph", "No information.")
        return
    table = el(text, "table")
    head = el(el(table, "thead"), "tr")
    for label in header:
        el(head, "th", label)
    body = el(table, "tbody")
    for row in rows:
        tr = el(body, "tr")
        for cell in row:
            el(tr, "td", cell)


def _entry(section: ET.Element, tag: str, class_code: str, mood: str = "EVN") -> ET.Element:
    return el(el(section, "entry", typeCode="DRIV"), tag, classCode=class_code, moodCode=mood)


def problems_section(body: ET.Element, rows: list[Record]) -> None:
    section = _section(
        body, "2.16.840.1.113883.10.20.22.2.5.1", "2015-08-01", "11450-4", "Problem List"
    )
    _text_table(
        section,
        ("Problem", "ICD-10-CM", "SNOMED CT", "Status", "Onset"),
        [
            [
                str(r.get(k) or "")
                for k in ("name", "icd_code", "snomed_ct_code", "status", "date_onset")
            ]
            for r in rows
        ],
    )
    for row in rows:
        act = _entry(section, "act", "ACT")
        template(act, "2.16.840.1.113883.10.20.22.4.3", "2015-08-01")
        el(act, "id", root="2.16.840.1.113883.3.8888.10", extension=str(row.get("id")))
        el(act, "code", code="CONC", codeSystem=ACT_CODE)
        active = row.get("status") == "active"
        el(act, "statusCode", code="active" if active else "completed")
        effective_time(act, row.get("date_diagnosis") or row.get("date_onset"))
        obs = el(
            el(act, "entryRelationship", typeCode="SUBJ"),
            "observation",
            classCode="OBS",
            moodCode="EVN",
        )
        template(obs, "2.16.840.1.113883.10.20.22.4.4", "2015-08-01")
        el(obs, "id", root="2.16.840.1.113883.3.8888.11", extension=str(row.get("id")))
        el(obs, "code", code="55607006", codeSystem=SNOMED, displayName="Problem")
        el(obs, "statusCode", code="completed")
        effective_time(obs, row.get("date_onset"), row.get("abatement_date"))
        value = code_or_unknown(obs, "value", row.get("snomed_ct_code"), SNOMED, row.get("name"))
        value.set("xsi:type", "CD")
        if row.get("icd_code"):
            el(
                value,
                "translation",
                code=str(row["icd_code"]),
                codeSystem=ICD10CM,
                displayName=str(row.get("name") or ""),
            )


def medications_section(body: ET.Element, rows: list[Record]) -> None:
    section = _section(
        body, "2.16.840.1.113883.10.20.22.2.1.1", "2014-06-09", "10160-0", "Medications"
    )
    _text_table(
        section,
        ("Medication", "RxNorm", "Status", "Instructions", "Started"),
        [
            [
                str(r.get(k) or "")
                for k in ("name", "rxnorm", "status", "signature_note", "date_started_taking")
            ]
            for r in rows
        ],
    )
    for row in rows:
        med = _entry(section, "substanceAdministration", "SBADM", "INT")
        template(med, "2.16.840.1.113883.10.20.22.4.16", "2014-06-09")
        el(med, "id", root="2.16.840.1.113883.3.8888.20", extension=str(row.get("id")))
        el(med, "statusCode", code="active" if row.get("status") == "active" else "completed")
        time = el(med, "effectiveTime")
        time.set("xsi:type", "IVL_TS")
        start = ts(row.get("date_started_taking") or row.get("date_prescribed"))
        el(time, "low", **({"value": start} if start else {"nullFlavor": "UNK"}))
        stop = ts(row.get("date_stopped_taking"))
        if stop:
            el(time, "high", value=stop)
        product = el(el(med, "consumable"), "manufacturedProduct", classCode="MANU")
        template(product, "2.16.840.1.113883.10.20.22.4.23", "2014-06-09")
        material = el(product, "manufacturedMaterial")
        code_or_unknown(material, "code", row.get("rxnorm"), RXNORM, row.get("name"))


def allergies_section(body: ET.Element, rows: list[Record]) -> None:
    section = _section(
        body,
        "2.16.840.1.113883.10.20.22.2.6.1",
        "2015-08-01",
        "48765-2",
        "Allergies and Adverse Reactions",
    )
    _text_table(
        section,
        ("Allergen", "Reaction", "Status"),
        [[str(r.get(k) or "") for k in ("description", "reaction", "status")] for r in rows],
    )
    for row in rows:
        act = _entry(section, "act", "ACT")
        template(act, "2.16.840.1.113883.10.20.22.4.30", "2015-08-01")
        el(act, "id", root="2.16.840.1.113883.3.8888.30", extension=str(row.get("id")))
        el(act, "code", code="CONC", codeSystem=ACT_CODE)
        el(act, "statusCode", code="active" if row.get("status") == "active" else "completed")
        effective_time(act, row.get("created_at"))
        obs = el(
            el(act, "entryRelationship", typeCode="SUBJ"),
            "observation",
            classCode="OBS",
            moodCode="EVN",
        )
        template(obs, "2.16.840.1.113883.10.20.22.4.7", "2014-06-09")
        el(obs, "id", root="2.16.840.1.113883.3.8888.31", extension=str(row.get("id")))
        el(obs, "code", code="ASSERTION", codeSystem=ACT_CODE)
        el(obs, "statusCode", code="completed")
        effective_time(obs, row.get("created_at"))
        value = el(
            obs, "value", code="419199007", codeSystem=SNOMED, displayName="Allergy to substance"
        )
        value.set("xsi:type", "CD")
        entity = el(
            el(el(obs, "participant", typeCode="CSM"), "participantRole", classCode="MANU"),
            "playingEntity",
            classCode="MMAT",
        )
        if row.get("rxnorm"):
            code_or_unknown(entity, "code", row["rxnorm"], RXNORM, row.get("description"))
        else:
            code_or_unknown(entity, "code", row.get("snomed_code"), SNOMED, row.get("description"))


def results_section(body: ET.Element, rows: list[tuple[Record, Record]]) -> None:
    section = _section(body, "2.16.840.1.113883.10.20.22.2.3.1", "2015-08-01", "30954-2", "Results")
    _text_table(
        section,
        ("Test", "LOINC", "Value", "Unit", "Reference range", "Flag"),
        [
            [
                str(r.get(k) or "")
                for k in (
                    "observation_description",
                    "observation_code",
                    "value",
                    "unit",
                    "normal_range",
                    "abnormal_status",
                )
            ]
            for r, _ in rows
        ],
    )
    for result, order in rows:
        organizer = _entry(section, "organizer", "CLUSTER")
        template(organizer, "2.16.840.1.113883.10.20.22.4.1", "2015-08-01")
        el(organizer, "id", root="2.16.840.1.113883.3.8888.40", extension=str(order.get("id")))
        code_or_unknown(
            organizer, "code", result.get("group_code"), LOINC, result.get("test_performed")
        )
        el(organizer, "statusCode", code="completed")
        obs = el(el(organizer, "component"), "observation", classCode="OBS", moodCode="EVN")
        template(obs, "2.16.840.1.113883.10.20.22.4.2", "2015-08-01")
        el(obs, "id", root="2.16.840.1.113883.3.8888.41", extension=str(result.get("id")))
        code_or_unknown(
            obs,
            "code",
            result.get("observation_code"),
            LOINC,
            result.get("observation_description"),
        )
        el(obs, "statusCode", code="completed")
        when = ts(result_date(result, order))
        el(obs, "effectiveTime", **({"value": when} if when else {"nullFlavor": "UNK"}))
        raw = str(result.get("value") or "")
        if result.get("value_is_numeric") and _is_number(raw):
            value = el(obs, "value", value=raw, unit=str(result.get("unit") or "1"))
            value.set("xsi:type", "PQ")
        else:
            value = el(obs, "value", raw)
            value.set("xsi:type", "ST")
        if result.get("abnormal_status"):
            el(
                obs,
                "interpretationCode",
                code=str(result["abnormal_status"]),
                codeSystem="2.16.840.1.113883.5.83",
            )


def vital_signs_section(body: ET.Element, appointments: list[Record]) -> None:
    section = _section(
        body, "2.16.840.1.113883.10.20.22.2.4.1", "2015-08-01", "8716-3", "Vital Signs"
    )
    rows = []
    for appointment in appointments:
        vitals = appointment.get("vitals") or {}
        for key, _, display, unit_key in _VITALS:
            if vitals.get(key) not in (None, ""):
                unit = (
                    _UCUM_UNITS.get(str(vitals.get(unit_key) or ""), unit_key)
                    if unit_key.endswith("_units")
                    else unit_key
                )
                rows.append(
                    [str(appointment.get("scheduled_time") or ""), display, str(vitals[key]), unit]
                )
    _text_table(section, ("Date", "Vital sign", "Value", "Unit"), rows)
    for appointment in appointments:
        vitals = appointment.get("vitals") or {}
        present = [
            v
            for v in _VITALS
            if vitals.get(v[0]) not in (None, "") and _is_number(str(vitals[v[0]]))
        ]
        if not present:
            continue
        organizer = _entry(section, "organizer", "CLUSTER")
        template(organizer, "2.16.840.1.113883.10.20.22.4.26", "2015-08-01")
        el(
            organizer,
            "id",
            root="2.16.840.1.113883.3.8888.50",
            extension=str(appointment.get("id")),
        )
        el(organizer, "code", code="46680005", codeSystem=SNOMED, displayName="Vital signs")
        el(organizer, "statusCode", code="completed")
        when = ts(appointment.get("scheduled_time"))
        el(organizer, "effectiveTime", **({"value": when} if when else {"nullFlavor": "UNK"}))
        for key, loinc, display, unit_key in present:
            obs = el(el(organizer, "component"), "observation", classCode="OBS", moodCode="EVN")
            template(obs, "2.16.840.1.113883.10.20.22.4.27", "2014-06-09")
            el(
                obs,
                "id",
                root="2.16.840.1.113883.3.8888.51",
                extension=f"{appointment.get('id')}-{key}",
            )
            el(obs, "code", code=loinc, codeSystem=LOINC, displayName=display)
            el(obs, "statusCode", code="completed")
            el(obs, "effectiveTime", **({"value": when} if when else {"nullFlavor": "UNK"}))
            unit = (
                _UCUM_UNITS.get(str(vitals.get(unit_key) or ""), "1")
                if unit_key.endswith("_units")
                else unit_key
            )
            value = el(obs, "value", value=str(vitals[key]), unit=unit)
            value.set("xsi:type", "PQ")


def immunizations_section(body: ET.Element, rows: list[Record]) -> None:
    section = _section(
        body, "2.16.840.1.113883.10.20.22.2.2.1", "2015-08-01", "11369-6", "Immunizations"
    )
    _text_table(
        section,
        ("Vaccine", "CVX", "Date", "Lot"),
        [
            [str(r.get(k) or "") for k in ("name", "cvx_code", "administered_start", "lot_number")]
            for r in rows
        ],
    )
    for row in rows:
        given = row.get("completion_status") in (None, "", "CP", "PA")
        sub = _entry(section, "substanceAdministration", "SBADM")
        sub.set("negationInd", "false" if given else "true")
        template(sub, "2.16.840.1.113883.10.20.22.4.52", "2015-08-01")
        el(sub, "id", root="2.16.840.1.113883.3.8888.60", extension=str(row.get("id")))
        el(sub, "statusCode", code="completed")
        when = ts(row.get("administered_start"))
        el(sub, "effectiveTime", **({"value": when} if when else {"nullFlavor": "UNK"}))
        product = el(el(sub, "consumable"), "manufacturedProduct", classCode="MANU")
        template(product, "2.16.840.1.113883.10.20.22.4.54", "2014-06-09")
        material = el(product, "manufacturedMaterial")
        code_or_unknown(material, "code", row.get("cvx_code"), CVX, row.get("name"))
        if row.get("lot_number"):
            el(material, "lotNumberText", str(row["lot_number"]))


def result_date(result: Record, order: Record) -> Any:
    return (
        result.get("specimen_received") or result.get("results_released") or order.get("timestamp")
    )


def _is_number(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True
