"""Patient (us-core-patient) ← DrChrono /api/patients.

Suffix, previous last name and previous address live in the practice's custom demographics
(verbose-only); they are read only when the practice defines those fields.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from facade.core.mapping import (
    ById,
    LocalFilter,
    MappingContext,
    Pushdown,
    Record,
    Resource,
    ResourceMapping,
    SearchParam,
)
from facade.fhir.dates import parse_date_range, split_prefix
from mappings.drchrono.fields import (
    CHART_ID_SYSTEM,
    PATIENT_ID_SYSTEM,
    PATIENT_RECORD_CHANGED,
    fhir_date,
    meta,
    phone,
    reference,
    text,
    us_address,
)
from mappings.drchrono.valuemaps import ADMINISTRATIVE_GENDER
from mappings.valuemaps import (
    BCP47,
    ETHNICITY,
    ETHNICITY_TEXT,
    LANGUAGE,
    RACE,
    RACE_TEXT,
    SEX,
    US_CORE,
    V2_0131,
    V2_0203,
)

PROFILE = US_CORE + "us-core-patient"

#: Custom demographic template names facade understands, and the role each plays.
CUSTOM_FIELD_ROLES = {
    "name_suffix": "name_suffix",
    "previous_last_name": "previous_last_name",
    "previous_address": "previous_address",
    "tribal_affiliation": "tribal_affiliation",
}

_PREVIOUS_ADDRESS = re.compile(
    r"^(?P<street>.+?),\s*(?P<city>[^,]+?),\s*(?P<state>[A-Z]{2})\s+(?P<zip>\d{5}(?:-\d{4})?)$"
)


def _custom_fields(record: Record, ctx: MappingContext) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in record.get("custom_demographics") or ():
        role = ctx.custom_field_roles.get(str(entry.get("field_type")))
        value = text(entry.get("value"))
        if role and value:
            found[role] = value
    return found


def _omb_extension(url: str, codings: tuple[dict[str, str], ...], label: str) -> dict[str, Any]:
    return {
        "url": url,
        "extension": [{"url": "ombCategory", "valueCoding": c} for c in codings]
        + [{"url": "text", "valueString": label}],
    }


# Built once: every patient with the same vendor value shares the same (never mutated) object.
_RACE_EXTENSIONS = {
    race: _omb_extension(US_CORE + "us-core-race", codings, RACE_TEXT[race])
    for race, codings in RACE.entries.items()
}
_ETHNICITY_EXTENSIONS = {
    ethnicity: _omb_extension(US_CORE + "us-core-ethnicity", codings, ETHNICITY_TEXT[ethnicity])
    for ethnicity, codings in ETHNICITY.entries.items()
}
_SEX_EXTENSIONS = {
    gender: {"url": US_CORE + "us-core-sex", "valueCoding": coding}
    for gender, coding in SEX.entries.items()
}
_COMMUNICATIONS = {
    language: [
        {
            "language": {
                "coding": [{"system": BCP47, "code": code, "display": display}],
                "text": display,
            },
            "preferred": True,
        }
    ]
    for language, (code, display) in LANGUAGE.entries.items()
}


def _names(record: Record, custom: dict[str, str]) -> list[dict[str, Any]]:
    given = [g for g in (text(record.get("first_name")), text(record.get("middle_name"))) if g]
    family = text(record.get("last_name"))
    official: dict[str, Any] = {"use": "official"}
    if family:
        official["family"] = family
    if given:
        official["given"] = given
    if "name_suffix" in custom:
        official["suffix"] = [custom["name_suffix"]]
    names = [official]
    if "previous_last_name" in custom:
        old: dict[str, Any] = {"use": "old", "family": custom["previous_last_name"]}
        if given:
            old["given"] = given
        names.append(old)
    nickname = text(record.get("nick_name"))
    if nickname:
        names.append({"use": "nickname", "given": [nickname]})
    if not family and not given:
        official["extension"] = [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown",
            }
        ]
    return names


def _telecom(record: Record) -> list[dict[str, Any]]:
    telecom = []
    for field, use in (("home_phone", "home"), ("cell_phone", "mobile"), ("office_phone", "work")):
        number = phone(record.get(field))
        if number:
            telecom.append({"system": "phone", "value": number, "use": use})
    email = text(record.get("email"))
    if email:
        telecom.append({"system": "email", "value": email, "use": "home"})
    return telecom


def _addresses(record: Record, custom: dict[str, str]) -> list[dict[str, Any]]:
    addresses = []
    home = us_address(
        record.get("address"),
        record.get("city"),
        record.get("state"),
        record.get("zip_code"),
        use="home",
    )
    if home:
        addresses.append(home)
    previous = custom.get("previous_address")
    if previous:
        match = _PREVIOUS_ADDRESS.match(previous)
        if match:
            old = us_address(
                match["street"], match["city"], match["state"], match["zip"], use="old"
            )
            if old:
                addresses.append(old)
        else:
            addresses.append({"use": "old", "text": previous})
    return addresses


def _contacts(record: Record) -> list[dict[str, Any]]:
    contacts = []
    emergency_name = text(record.get("emergency_contact_name"))
    emergency_phone = phone(record.get("emergency_contact_phone"))
    if emergency_name or emergency_phone:
        relation = text(record.get("emergency_contact_relation"))
        relationship: list[dict[str, Any]] = [
            {"coding": [{"system": V2_0131, "code": "C", "display": "Emergency Contact"}]}
        ]
        if relation:
            relationship.append({"text": relation})
        contact: dict[str, Any] = {"relationship": relationship}
        if emergency_name:
            contact["name"] = {"text": emergency_name}
        if emergency_phone:
            contact["telecom"] = [{"system": "phone", "value": emergency_phone}]
        contacts.append(contact)
    party_name = text(record.get("responsible_party_name"))
    if party_name:
        relation = text(record.get("responsible_party_relation"))
        party: dict[str, Any] = {
            "relationship": [
                {
                    "coding": [{"system": V2_0131, "code": "O", "display": "Other"}],
                    "text": f"Responsible party ({relation})" if relation else "Responsible party",
                }
            ],
            "name": {"text": party_name},
        }
        telecom = []
        party_phone = phone(record.get("responsible_party_phone"))
        if party_phone:
            telecom.append({"system": "phone", "value": party_phone})
        party_email = text(record.get("responsible_party_email"))
        if party_email:
            telecom.append({"system": "email", "value": party_email})
        if telecom:
            party["telecom"] = telecom
        contacts.append(party)
    return contacts


def transform(record: Record, ctx: MappingContext) -> Resource:
    patient_id = str(record["id"])
    custom = _custom_fields(record, ctx)
    resource: Resource = {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": meta(PROFILE, record.get("updated_at"), ctx),
    }
    extensions = [
        e
        for e in (
            _RACE_EXTENSIONS.get(record.get("race") or ""),
            _ETHNICITY_EXTENSIONS.get(record.get("ethnicity") or ""),
        )
        if e
    ]
    tribe = custom.get("tribal_affiliation")
    if tribe:
        # Free text: the practice records the tribe's name, not a TribalEntityUS code.
        extensions.append(
            {
                "url": US_CORE + "us-core-tribal-affiliation",
                "extension": [
                    {"url": "tribalAffiliation", "valueCodeableConcept": {"text": tribe}}
                ],
            }
        )
    sex = _SEX_EXTENSIONS.get(record.get("gender") or "")
    if sex:
        extensions.append(sex)
    if extensions:
        resource["extension"] = extensions
    identifiers: list[dict[str, Any]] = []
    chart_id = text(record.get("chart_id"))
    if chart_id:
        identifiers.append(
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": V2_0203, "code": "MR", "display": "Medical record number"}
                    ]
                },
                "system": CHART_ID_SYSTEM,
                "value": chart_id,
            }
        )
    identifiers.append({"system": PATIENT_ID_SYSTEM, "value": patient_id})
    resource["identifier"] = identifiers
    status = text(record.get("patient_status")) or "A"
    resource["active"] = status == "A"
    resource["name"] = _names(record, custom)
    telecom = _telecom(record)
    if telecom:
        resource["telecom"] = telecom
    resource["gender"] = ADMINISTRATIVE_GENDER.get(text(record.get("gender")))
    birth_date = fhir_date(record.get("date_of_birth"))
    if birth_date:
        resource["birthDate"] = birth_date
    if status == "D":
        death_date = fhir_date(record.get("date_of_death"))
        if death_date:
            resource["deceasedDateTime"] = death_date
        else:
            resource["deceasedBoolean"] = True
    addresses = _addresses(record, custom)
    if addresses:
        resource["address"] = addresses
    contacts = _contacts(record)
    if contacts:
        resource["contact"] = contacts
    communication = _COMMUNICATIONS.get(record.get("preferred_language") or "")
    if communication:
        resource["communication"] = communication
    doctor = reference("Practitioner", record.get("doctor"))
    if doctor:
        resource["generalPractitioner"] = [doctor]
    resource["managingOrganization"] = {"reference": f"Organization/{ctx.practice_group_id}"}
    return resource


# -- search ------------------------------------------------------------------------------------


def _patient_id_from_identifier(value: str) -> str | None:
    system, _, code = value.rpartition("|")
    if system == PATIENT_ID_SYSTEM and code.isdigit():
        return code
    return None


def _birthdate_pushdown(value: str, modifier: str | None) -> dict[str, str] | None:
    prefix, text_value = split_prefix(value)
    if modifier is None and prefix == "eq" and len(text_value) == 10:
        return {"date_of_birth": text_value}
    return None


_VENDOR_GENDER = {"male": "Male", "female": "Female", "other": "Other"}


def _gender_pushdown(value: str, modifier: str | None) -> dict[str, str] | None:
    code = value.rpartition("|")[2]
    if modifier is None and code in _VENDOR_GENDER:
        return {"gender": _VENDOR_GENDER[code]}
    return None


def _since_pushdown(value: str, modifier: str | None) -> dict[str, str] | None:
    prefix, text_value = split_prefix(value)
    if modifier is None and prefix in ("gt", "ge"):
        # `since` compares the vendor's local time; a day earlier covers every time zone,
        # and the local filter keeps the answer exact.
        try:
            day_before = parse_date_range(text_value).low - timedelta(days=1)
        except (ValueError, OverflowError):  # not a date, or year 1: nothing to push down
            return None
        return {"since": day_before.date().isoformat()}
    return None


def _needs_detail(ctx: MappingContext) -> bool:
    return bool(ctx.custom_field_roles)


MAPPING = ResourceMapping(
    resource_type="Patient",
    last_updated=PATIENT_RECORD_CHANGED,
    profile=PROFILE,
    endpoint="patients",
    transform=transform,
    fixed_params={"show_inactive": "true"},
    needs_detail=_needs_detail,
    search_params=(
        SearchParam(
            "us-core-patient-id",
            ById(lambda v: v if v.isdigit() else None, "GET /api/patients/{id}"),
        ),
        SearchParam(
            "us-core-patient-identifier",
            ById(
                _patient_id_from_identifier,
                f"GET /api/patients/{{id}} for {PATIENT_ID_SYSTEM}|id; other identifiers"
                " (chart id) are filtered locally",
            ),
        ),
        SearchParam(
            "us-core-patient-name",
            LocalFilter(
                "filtered locally: DrChrono's name filters cannot see middle, previous or"
                " nick names"
            ),
        ),
        SearchParam("us-core-patient-family", LocalFilter("filtered locally (previous names)")),
        SearchParam("us-core-patient-given", LocalFilter("filtered locally (middle names)")),
        SearchParam("us-core-patient-death-date", LocalFilter()),
        SearchParam(
            "us-core-patient-birthdate",
            Pushdown(_birthdate_pushdown, "date_of_birth for eq on a full date", exact=True),
        ),
        SearchParam(
            "us-core-patient-gender",
            Pushdown(_gender_pushdown, "gender for male, female, other", exact=True),
        ),
        SearchParam(
            "Resource-lastUpdated",
            Pushdown(_since_pushdown, "since for gt/ge (then filtered locally)"),
        ),
    ),
    author_paths=("generalPractitioner",),
    notes="Inactive and deceased patients are included (show_inactive=true).",
)
