"""Builds the C-CDA R2.1 Continuity of Care Document that `GET /patients/{id}/ccda` returns.

A well-formed ClinicalDocument (US Realm Header + CCD templateIds) with the allergies,
medications (RxNorm through the curated NDC crosswalk, NDC as translation), problems,
results, vital signs, immunizations and smoking status found in the patient's encounters.
A pure function of the dataset and `now`: it never mutates records.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache

from facade.sandbox.codes import load_table
from facade.upstream.carecloud.sandbox.context import Record
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SDTC = "urn:hl7-org:sdtc"
LOINC = "2.16.840.1.113883.6.1"
SNOMED = "2.16.840.1.113883.6.96"
ICD10CM = "2.16.840.1.113883.6.90"
RXNORM = "2.16.840.1.113883.6.88"
NDC = "2.16.840.1.113883.6.69"
CVX = "2.16.840.1.113883.12.292"
UNII = "2.16.840.1.113883.4.9"
RACE_ETHNICITY = "2.16.840.1.113883.6.238"
ROOT = "2.16.840.1.113883.3.8888.2"

ET.register_namespace("", V3)
ET.register_namespace("xsi", XSI)
ET.register_namespace("sdtc", SDTC)

_SYSTEMS = {"ICD10CM": ICD10CM, "SNOMED": SNOMED, "RXNORM": RXNORM, "UNII": UNII}


@cache
def _rxnorm_of_ndc() -> dict[str, str]:
    return {row["code"]: row["rxnorm"] for row in load_table("ndc_rxnorm").rows}


def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, f"{{{V3}}}{tag}", {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        child.text = text
    return child


def template(parent: ET.Element, root: str, extension: str | None = None) -> None:
    if extension:
        el(parent, "templateId", root=root, extension=extension)
    else:
        el(parent, "templateId", root=root)


def ts(value: str | None) -> str:
    """CDA TS from an ISO date or timestamp (with its offset)."""
    if not value:
        return ""
    if len(value) == 10:
        return value.replace("-", "")
    moment = datetime.fromisoformat(value)
    offset = moment.strftime("%z")
    return moment.strftime("%Y%m%d%H%M%S") + offset


def _time(parent: ET.Element, start: str | None, end: str | None = None) -> None:
    period = el(parent, "effectiveTime")
    low = el(period, "low")
    if start:
        low.set("value", ts(start))
    else:
        low.set("nullFlavor", "UNK")
    if end:
        el(period, "high", value=ts(end))


def _section(body: ET.Element, root: str, code: str, title: str) -> ET.Element:
    section = el(el(body, "component"), "section")
    template(section, root, "2015-08-01")
    el(section, "code", code=code, codeSystem=LOINC, displayName=title)
    el(section, "title", title)
    return section


def _table(section: ET.Element, headers: Iterable[str], rows: list[list[str]]) -> None:
    text = el(section, "text")
    table = el(text, "table", border="1", width="100%")
    head = el(el(table, "thead"), "tr")
    for header in headers:
        el(head, "th", header)
    body = el(table, "tbody")
    for row in rows or [["None recorded"]]:
        line = el(body, "tr")
        for cell in row:
            el(line, "td", cell)


def _entry(section: ET.Element, kind: str, mood: str = "EVN", tag: str = "act") -> ET.Element:
    node = el(el(section, "entry", typeCode="DRIV"), tag, classCode=kind, moodCode=mood)
    return node


def _all(encounters: list[Record], key: str) -> list[Record]:
    return [row for encounter in encounters for row in encounter[key]]


def build_ccd(dataset: CareCloudDataset, patient: Record, *, now: datetime) -> bytes:
    encounters = dataset.encounters_of(patient["id"])
    doc = ET.Element(f"{{{V3}}}ClinicalDocument")
    _header(doc, dataset, patient, now)
    body = el(el(doc, "component"), "structuredBody")
    _allergies(body, _all(encounters, "allergies"))
    _medications(body, _all(encounters, "medications"))
    _problems(body, _all(encounters, "problems"))
    _results(body, _all(encounters, "lab_results"))
    _vitals(body, encounters)
    _immunizations(body, _all(encounters, "immunizations"))
    _social_history(body, [e["smoking_status"] for e in encounters if e["smoking_status"]])
    body_xml: bytes = ET.tostring(doc, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body_xml


def _header(doc: ET.Element, dataset: CareCloudDataset, patient: Record, now: datetime) -> None:
    stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")
    el(doc, "realmCode", code="US")
    el(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    template(doc, "2.16.840.1.113883.10.20.22.1.1", "2015-08-01")
    template(doc, "2.16.840.1.113883.10.20.22.1.2", "2015-08-01")
    el(doc, "id", root=ROOT, extension=f"ccd-{patient['id']}-{stamp[:14]}")
    el(doc, "code", code="34133-9", codeSystem=LOINC, displayName="Summarization of Episode Note")
    el(doc, "title", "Continuity of Care Document")
    el(doc, "effectiveTime", value=stamp)
    el(doc, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25")
    el(doc, "languageCode", code="en-US")

    role = el(el(doc, "recordTarget"), "patientRole")
    el(role, "id", root=ROOT + ".1", extension=patient["id"])
    for address in patient["addresses"][:1]:
        addr = el(role, "addr", use="HP")
        el(addr, "streetAddressLine", address["line1"])
        if address["line2"]:
            el(addr, "streetAddressLine", address["line2"])
        el(addr, "city", address["city"])
        el(addr, "state", address["state"])
        el(addr, "postalCode", address["zip_code"])
        el(addr, "country", "US")
    for number in patient["phones"]:
        use = {"M": "MC", "H": "HP", "W": "WP"}[number["phone_type_code"]]
        el(role, "telecom", use=use, value=f"tel:+1-{number['phone_number']}")
    person = el(role, "patient")
    name = el(person, "name", use="L")
    el(name, "given", patient["first_name"])
    if patient["middle_name"]:
        el(name, "given", patient["middle_name"])
    el(name, "family", patient["last_name"])
    el(
        person,
        "administrativeGenderCode",
        code=patient["gender_code"],
        codeSystem="2.16.840.1.113883.5.1",
    )
    el(person, "birthTime", value=ts(patient["date_of_birth"]))
    if patient["deceased_at"]:
        person.append(ET.Element(f"{{{SDTC}}}deceasedInd", {"value": "true"}))
    _coded_or_null(person, "raceCode", patient["race_code"], "omb_race")
    _coded_or_null(person, "ethnicGroupCode", patient["ethnicity_code"], "omb_ethnicity")
    communication = el(person, "languageCommunication")
    el(communication, "languageCode", code=patient["language_code"] or "en")

    entity = dataset.business_entity
    author = el(doc, "author")
    el(author, "time", value=stamp)
    assigned = el(author, "assignedAuthor")
    el(assigned, "id", root="2.16.840.1.113883.4.6", extension=entity["npi"])
    device = el(assigned, "assignedAuthoringDevice")
    el(device, "manufacturerModelName", "CareCloud")
    el(device, "softwareName", "CareCloud sandbox")
    custodian = el(
        el(el(doc, "custodian"), "assignedCustodian"), "representedCustodianOrganization"
    )
    el(custodian, "id", root="2.16.840.1.113883.4.6", extension=entity["npi"])
    el(custodian, "name", entity["name"])
    el(custodian, "telecom", use="WP", value=f"tel:+1-{entity['phone_number']}")
    addr = el(custodian, "addr", use="WP")
    el(addr, "streetAddressLine", entity["address"]["line1"])
    el(addr, "city", entity["address"]["city"])
    el(addr, "state", entity["address"]["state"])
    el(addr, "postalCode", entity["address"]["zip_code"])
    el(addr, "country", "US")


def _coded_or_null(parent: ET.Element, tag: str, code: str | None, table: str) -> None:
    rows = load_table(table).where(omb=code) if code else ()
    if not rows or rows[0]["system"] != "urn:oid:" + RACE_ETHNICITY:
        el(parent, tag, nullFlavor="ASKU" if code == "ASKU" else "UNK")
        return
    el(parent, tag, code=code or "", codeSystem=RACE_ETHNICITY, displayName=rows[0]["display"])


def _allergies(body: ET.Element, rows: list[Record]) -> None:
    section = _section(
        body, "2.16.840.1.113883.10.20.22.2.6.1", "48765-2", "Allergies and Adverse Reactions"
    )
    _table(
        section,
        ("Allergen", "Reaction", "Severity", "Status"),
        [[r["allergen"], r["reaction"] or "", r["severity"] or "", r["status"]] for r in rows],
    )
    for row in rows:
        act = _entry(section, "ACT")
        template(act, "2.16.840.1.113883.10.20.22.4.30", "2015-08-01")
        el(act, "id", root=ROOT, extension=f"allergy-{row['id']}")
        el(act, "code", code="CONC", codeSystem="2.16.840.1.113883.5.6")
        el(act, "statusCode", code="active" if row["status"] == "active" else "completed")
        _time(act, row["recorded_at"])
        obs = el(
            el(act, "entryRelationship", typeCode="SUBJ"),
            "observation",
            classCode="OBS",
            moodCode="EVN",
        )
        template(obs, "2.16.840.1.113883.10.20.22.4.7", "2014-06-09")
        el(obs, "id", root=ROOT, extension=str(row["id"]))
        el(obs, "code", code="ASSERTION", codeSystem="2.16.840.1.113883.5.4")
        el(obs, "statusCode", code="completed")
        _time(obs, row["onset_date"])
        if row["reaction_code"] is None:
            # "No known allergy": the assertion itself is the value, with no substance.
            value = el(
                obs,
                "value",
                code=row["allergen_code"],
                codeSystem=SNOMED,
                displayName=row["allergen"],
            )
            value.set(f"{{{XSI}}}type", "CD")
            continue
        value = el(
            obs, "value", code="419199007", codeSystem=SNOMED, displayName="Allergy to substance"
        )
        value.set(f"{{{XSI}}}type", "CD")
        role = el(el(obs, "participant", typeCode="CSM"), "participantRole", classCode="MANU")
        el(
            el(role, "playingEntity", classCode="MMAT"),
            "code",
            code=row["allergen_code"],
            codeSystem=_SYSTEMS[row["code_system"]],
            displayName=row["allergen"],
        )
        if row["reaction_code"]:
            reaction = el(
                el(obs, "entryRelationship", typeCode="MFST", inversionInd="true"),
                "observation",
                classCode="OBS",
                moodCode="EVN",
            )
            template(reaction, "2.16.840.1.113883.10.20.22.4.9", "2014-06-09")
            el(reaction, "id", root=ROOT, extension=f"reaction-{row['id']}")
            el(reaction, "code", code="ASSERTION", codeSystem="2.16.840.1.113883.5.4")
            el(reaction, "statusCode", code="completed")
            coded = el(
                reaction,
                "value",
                code=row["reaction_code"],
                codeSystem=SNOMED,
                displayName=row["reaction"],
            )
            coded.set(f"{{{XSI}}}type", "CD")


def _medications(body: ET.Element, rows: list[Record]) -> None:
    section = _section(body, "2.16.840.1.113883.10.20.22.2.1.1", "10160-0", "Medications")
    _table(
        section,
        ("Medication", "Instructions", "Start", "Status"),
        [[r["name"], r["sig"], r["start_date"], r["status"]] for r in rows],
    )
    for row in rows:
        med = _entry(section, "SBADM", tag="substanceAdministration")
        template(med, "2.16.840.1.113883.10.20.22.4.16", "2014-06-09")
        el(med, "id", root=ROOT, extension=str(row["id"]))
        el(med, "text", row["sig"])
        el(med, "statusCode", code="active" if row["status"] == "active" else "completed")
        period = el(med, "effectiveTime")
        period.set(f"{{{XSI}}}type", "IVL_TS")
        el(period, "low", value=ts(row["start_date"]))
        if row["end_date"]:
            el(period, "high", value=ts(row["end_date"]))
        el(med, "doseQuantity", value=str(row["dose_quantity"]), unit=row["dose_unit"])
        product = el(el(med, "consumable"), "manufacturedProduct", classCode="MANU")
        template(product, "2.16.840.1.113883.10.20.22.4.23", "2014-06-09")
        material = el(product, "manufacturedMaterial")
        rxcui = _rxnorm_of_ndc().get(row["ndc"])
        code = el(material, "code", code=rxcui or "", codeSystem=RXNORM, displayName=row["name"])
        if rxcui is None:
            code.attrib.pop("code")
            code.set("nullFlavor", "OTH")
        el(
            code,
            "translation",
            code=row["ndc"].replace("-", ""),
            codeSystem=NDC,
            displayName=row["name"],
        )


def _problems(body: ET.Element, rows: list[Record]) -> None:
    section = _section(body, "2.16.840.1.113883.10.20.22.2.5.1", "11450-4", "Problem List")
    _table(
        section,
        ("Problem", "Code", "Onset", "Status"),
        [[r["description"], r["code"], r["onset_date"] or "", r["status"]] for r in rows],
    )
    for row in rows:
        act = _entry(section, "ACT")
        template(act, "2.16.840.1.113883.10.20.22.4.3", "2015-08-01")
        el(act, "id", root=ROOT, extension=f"concern-{row['id']}")
        el(act, "code", code="CONC", codeSystem="2.16.840.1.113883.5.6")
        el(act, "statusCode", code="active" if row["status"] == "active" else "completed")
        _time(act, row["recorded_at"])
        obs = el(
            el(act, "entryRelationship", typeCode="SUBJ"),
            "observation",
            classCode="OBS",
            moodCode="EVN",
        )
        template(obs, "2.16.840.1.113883.10.20.22.4.4", "2015-08-01")
        el(obs, "id", root=ROOT, extension=str(row["id"]))
        el(obs, "code", code="55607006", codeSystem=SNOMED, displayName="Problem")
        el(obs, "statusCode", code="completed")
        _time(obs, row["onset_date"], row["resolved_date"])
        value = el(
            obs,
            "value",
            code=row["code"],
            codeSystem=_SYSTEMS[row["code_system"]],
            displayName=row["description"],
        )
        value.set(f"{{{XSI}}}type", "CD")


def _results(body: ET.Element, rows: list[Record]) -> None:
    section = _section(body, "2.16.840.1.113883.10.20.22.2.3.1", "30954-2", "Results")
    _table(
        section,
        ("Test", "Value", "Unit", "Range", "Flag", "Collected"),
        [
            [
                r["name"],
                r["value"],
                r["unit"],
                r["reference_range"],
                r["abnormal_flag"],
                r["collected_at"],
            ]
            for r in rows
        ],
    )
    panels: dict[tuple[str, str], list[Record]] = {}
    for row in rows:
        panels.setdefault((row["panel_loinc"], row["collected_at"]), []).append(row)
    for (panel_code, collected), members in panels.items():
        organizer = _entry(section, "CLUSTER", tag="organizer")
        template(organizer, "2.16.840.1.113883.10.20.22.4.1", "2015-08-01")
        el(organizer, "id", root=ROOT, extension=f"panel-{members[0]['id']}")
        el(
            organizer,
            "code",
            code=panel_code,
            codeSystem=LOINC,
            displayName=members[0]["panel_name"],
        )
        el(organizer, "statusCode", code="completed")
        _time(organizer, collected)
        for row in members:
            obs = el(el(organizer, "component"), "observation", classCode="OBS", moodCode="EVN")
            template(obs, "2.16.840.1.113883.10.20.22.4.2", "2015-08-01")
            el(obs, "id", root=ROOT, extension=str(row["id"]))
            el(obs, "code", code=row["loinc_code"], codeSystem=LOINC, displayName=row["name"])
            el(obs, "statusCode", code="completed")
            el(obs, "effectiveTime", value=ts(row["collected_at"]))
            if row["value_type"] == "numeric":
                value = el(obs, "value", value=row["value"], unit=row["unit"] or "1")
                value.set(f"{{{XSI}}}type", "PQ")
            else:
                value = el(obs, "value", row["value"])
                value.set(f"{{{XSI}}}type", "ST")
            el(
                obs,
                "interpretationCode",
                code=row["abnormal_flag"],
                codeSystem="2.16.840.1.113883.5.83",
            )


def _vitals(body: ET.Element, encounters: list[Record]) -> None:
    section = _section(body, "2.16.840.1.113883.10.20.22.2.4.1", "8716-3", "Vital Signs")
    rows = _all(encounters, "vitals")
    _table(
        section,
        ("Vital sign", "Value", "Unit", "Observed"),
        [[r["name"], r["value"], r["unit"], r["observed_at"]] for r in rows],
    )
    for encounter in encounters:
        if not encounter["vitals"]:
            continue
        organizer = _entry(section, "CLUSTER", tag="organizer")
        template(organizer, "2.16.840.1.113883.10.20.22.4.26", "2015-08-01")
        el(organizer, "id", root=ROOT, extension=f"vitals-{encounter['id']}")
        el(organizer, "code", code="46680005", codeSystem=SNOMED, displayName="Vital signs")
        el(organizer, "statusCode", code="completed")
        _time(organizer, encounter["vitals"][0]["observed_at"])
        for row in encounter["vitals"]:
            obs = el(el(organizer, "component"), "observation", classCode="OBS", moodCode="EVN")
            template(obs, "2.16.840.1.113883.10.20.22.4.27", "2014-06-09")
            el(obs, "id", root=ROOT, extension=str(row["id"]))
            el(obs, "code", code=row["loinc_code"], codeSystem=LOINC, displayName=row["name"])
            el(obs, "statusCode", code="completed")
            el(obs, "effectiveTime", value=ts(row["observed_at"]))
            value = el(obs, "value", value=row["value"], unit=row["unit"])
            value.set(f"{{{XSI}}}type", "PQ")


def _immunizations(body: ET.Element, rows: list[Record]) -> None:
    section = _section(body, "2.16.840.1.113883.10.20.22.2.2.1", "11369-6", "Immunizations")
    _table(
        section,
        ("Vaccine", "Date", "Status", "Lot"),
        [[r["name"], r["administered_on"], r["status"], r["lot_number"] or ""] for r in rows],
    )
    for row in rows:
        refused = row["status"] != "completed"
        shot = _entry(section, "SBADM", tag="substanceAdministration")
        shot.set("negationInd", "true" if refused else "false")
        template(shot, "2.16.840.1.113883.10.20.22.4.52", "2015-08-01")
        el(shot, "id", root=ROOT, extension=str(row["id"]))
        el(shot, "statusCode", code="completed")
        el(shot, "effectiveTime", value=ts(row["administered_on"]))
        product = el(el(shot, "consumable"), "manufacturedProduct", classCode="MANU")
        template(product, "2.16.840.1.113883.10.20.22.4.54", "2014-06-09")
        material = el(product, "manufacturedMaterial")
        el(material, "code", code=row["cvx_code"], codeSystem=CVX, displayName=row["name"])
        if row["lot_number"]:
            el(material, "lotNumberText", row["lot_number"])
        if row["manufacturer"]:
            el(el(product, "manufacturerOrganization"), "name", row["manufacturer"])


def _social_history(body: ET.Element, rows: list[Record]) -> None:
    section = _section(body, "2.16.840.1.113883.10.20.22.2.17", "29762-2", "Social History")
    _table(
        section,
        ("Smoking status", "Recorded"),
        [[r["description"], r["recorded_at"]] for r in rows],
    )
    for row in rows:
        obs = _entry(section, "OBS", tag="observation")
        template(obs, "2.16.840.1.113883.10.20.22.4.78", "2014-06-09")
        el(obs, "id", root=ROOT, extension=f"smoking-{row['recorded_at']}")
        el(obs, "code", code="72166-2", codeSystem=LOINC, displayName="Tobacco smoking status")
        el(obs, "statusCode", code="completed")
        el(obs, "effectiveTime", value=ts(row["recorded_at"]))
        value = el(
            obs, "value", code=row["code"], codeSystem=SNOMED, displayName=row["description"]
        )
        value.set(f"{{{XSI}}}type", "CD")
