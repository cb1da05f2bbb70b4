"""Patient (us-core-patient) ← CareCloud /patients.

The FHIR id is the CareCloud patient GUID as CareCloud writes it. Race and ethnicity come as
CDC Race & Ethnicity codes and the language as a BCP-47 tag, so facade only names them (from
the OMB and language maps it shares with every vendor). CareCloud has no `updated_since`:
`_lastUpdated` is filtered locally.

Must-support elements CareCloud has no field for (omitted): name.use=old / name.period and
address.use=old / address.period (CareCloud keeps only current names and addresses), and the
tribal affiliation extension. CareCloud's `birth_sex` is its only sex field besides the
administrative `gender_code`: it fills the birthsex extension and us-core-sex. Of the
detailed CDC race codes only 2131-1 Other Race is known (as `detailed`, with no OMB
category); other detailed codes are omitted rather than given a made-up text.
"""

from __future__ import annotations

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
    Unsupported,
)
from facade.fhir.dates import split_prefix
from mappings.carecloud.fields import (
    PATIENT_ID_SYSTEM,
    PATIENT_RECORD_CHANGED,
    PATIENTS,
    address,
    fhir_date,
    guid_id,
    instant,
    meta,
    phone,
    reference,
    text,
)
from mappings.carecloud.related_person import emergency_contact, relationship_concepts
from mappings.valuemaps import (
    BCP47,
    ETHNICITY,
    ETHNICITY_TEXT,
    LANGUAGE,
    NULL_FLAVOR,
    OMB_SYSTEM,
    RACE,
    RACE_TEXT,
    SEX,
    US_CORE,
    V2_0131,
    V2_0203,
    ValueMap,
)

PROFILE = US_CORE + "us-core-patient"

GENDER = ValueMap(
    name="carecloud-gender",
    source="CareCloud gender_code F|M|U → FHIR AdministrativeGender",
    entries={"F": "female", "M": "male", "U": "unknown"},
    fallback="unknown",
)
#: CareCloud birth_sex → the key of the shared us-core-sex map.
_SEX_KEY = {"F": "Female", "M": "Male", "UNK": "UNK"}
#: CareCloud birth_sex values the us-core-birthsex value set holds (F, M, UNK).
_BIRTH_SEX = frozenset({"F", "M", "UNK"})
_PHONE_USE = {"M": "mobile", "H": "home", "W": "work"}
_UNKNOWN = {"system": NULL_FLAVOR, "code": "UNK", "display": "Unknown"}


def _omb_extension(url: str, coding: dict[str, str], label: str) -> dict[str, Any]:
    return {
        "url": url,
        "extension": [
            {"url": "ombCategory", "valueCoding": coding},
            {"url": "text", "valueString": label},
        ],
    }


def _by_code(
    url: str, entries: dict[str, Any], labels: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The shared OMB maps re-keyed by CDC code (what CareCloud sends); null flavors by their
    own code (ASKU, UNK)."""
    found: dict[str, dict[str, Any]] = {}
    for key, codings in entries.items():
        coding = codings[0]
        if coding["system"] in (OMB_SYSTEM, NULL_FLAVOR) and coding["code"] != "UNK":
            found[coding["code"]] = _omb_extension(url, coding, labels[key])
    found["UNK"] = _omb_extension(url, _UNKNOWN, "Unknown")
    return found


#: Detailed CDC race codes CareCloud sends that are no OMB category (CDC Race & Ethnicity
#: Code Set 1.0; US Core's detailed race value set): practices record "other" as 2131-1.
_DETAILED_RACE = {"2131-1": "Other Race"}


# Built once: every patient with the same code shares the same (never mutated) object.
_RACE_EXTENSIONS = _by_code(US_CORE + "us-core-race", dict(RACE.entries), RACE_TEXT) | {
    code: {
        "url": US_CORE + "us-core-race",
        "extension": [
            {
                "url": "detailed",
                "valueCoding": {"system": OMB_SYSTEM, "code": code, "display": label},
            },
            {"url": "text", "valueString": label},
        ],
    }
    for code, label in _DETAILED_RACE.items()
}
_ETHNICITY_EXTENSIONS = _by_code(
    US_CORE + "us-core-ethnicity", dict(ETHNICITY.entries), ETHNICITY_TEXT
)
#: BCP-47 primary tag → display, from the shared language map.
_LANGUAGE_NAMES = {tag: display for tag, display in LANGUAGE.entries.values()}


def _sex_extensions(record: Record) -> list[dict[str, Any]]:
    birth_sex = text(record.get("birth_sex"))
    if birth_sex not in _BIRTH_SEX:
        return []
    found: list[dict[str, Any]] = [{"url": US_CORE + "us-core-birthsex", "valueCode": birth_sex}]
    sex = SEX.get(_SEX_KEY.get(birth_sex or ""))
    if sex:
        found.append({"url": US_CORE + "us-core-sex", "valueCoding": sex})
    return found


def _names(record: Record) -> list[dict[str, Any]]:
    given = [g for g in (text(record.get("first_name")), text(record.get("middle_name"))) if g]
    family = text(record.get("last_name"))
    official: dict[str, Any] = {"use": "official"}
    if family:
        official["family"] = family
    if given:
        official["given"] = given
    suffix = text(record.get("suffix"))
    if suffix:
        official["suffix"] = [suffix]
    if not family and not given:
        official["extension"] = [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown",
            }
        ]
    names = [official]
    preferred = text(record.get("preferred_name"))
    if preferred and preferred != (given[0] if given else None):
        usual: dict[str, Any] = {"use": "usual", "given": [preferred]}
        if family:
            usual["family"] = family
        names.append(usual)
    return names


def _telecom(record: Record) -> list[dict[str, Any]]:
    telecom: list[dict[str, Any]] = []
    for entry in record.get("phones") or ():
        number = phone(entry.get("phone_number"))
        if not number:
            continue
        point: dict[str, Any] = {"system": "phone", "value": number}
        use = _PHONE_USE.get(text(entry.get("phone_type_code")) or "")
        if use:
            point["use"] = use
        if entry.get("is_primary"):
            point["rank"] = 1
        telecom.append(point)
    email = text(record.get("email"))
    if email:
        telecom.append({"system": "email", "value": email, "use": "home"})
    return telecom


def _addresses(record: Record) -> list[dict[str, Any]]:
    entries = list(record.get("addresses") or ())
    # The primary address first; CareCloud marks one, and it is the home address.
    entries.sort(key=lambda a: not a.get("is_primary"))
    found = []
    for entry in entries:
        mapped = address(entry, use="home" if entry.get("is_primary") else None)
        if mapped:
            found.append(mapped)
    return found


def _communication(record: Record) -> list[dict[str, Any]]:
    tag = text(record.get("language_code"))
    if tag is None:
        return []
    coding: dict[str, str] = {"system": BCP47, "code": tag}
    language: dict[str, Any] = {"coding": [coding]}
    display = _LANGUAGE_NAMES.get(tag.split("-")[0].lower())
    if display and "-" not in tag:
        coding["display"] = display
    if display:
        language["text"] = display
    return [{"language": language, "preferred": True}]


def _contacts(record: Record) -> list[dict[str, Any]]:
    contact = emergency_contact(record)
    if contact is None:
        return []
    entry: dict[str, Any] = {
        "relationship": [
            {"coding": [{"system": V2_0131, "code": "C", "display": "Emergency Contact"}]},
            *relationship_concepts(contact),
        ]
    }
    name = text(contact.get("name"))
    if name:
        entry["name"] = {"text": name}
    number = phone(contact.get("phone_number"))
    if number:
        entry["telecom"] = [{"system": "phone", "value": number}]
    return [entry]


def transform(record: Record, ctx: MappingContext) -> Resource:
    patient_id = str(record["id"])
    resource: Resource = {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": meta(PROFILE, record.get("updated_at") or record.get("created_at"), ctx),
    }
    extensions = [
        e
        for e in (
            _RACE_EXTENSIONS.get(text(record.get("race_code")) or ""),
            _ETHNICITY_EXTENSIONS.get(text(record.get("ethnicity_code")) or ""),
        )
        if e
    ]
    extensions.extend(_sex_extensions(record))
    if extensions:
        resource["extension"] = extensions
    identifiers: list[dict[str, Any]] = []
    chart = text(record.get("chart_number"))
    if chart:
        identifiers.append(
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": V2_0203, "code": "MR", "display": "Medical record number"}
                    ]
                },
                "system": chart_number_system(ctx),
                "value": chart,
            }
        )
    identifiers.append({"system": PATIENT_ID_SYSTEM, "value": patient_id})
    resource["identifier"] = identifiers
    resource["active"] = (text(record.get("status")) or "A") == "A"
    resource["name"] = _names(record)
    telecom = _telecom(record)
    if telecom:
        resource["telecom"] = telecom
    resource["gender"] = GENDER.get(text(record.get("gender_code")))
    birth_date = fhir_date(record.get("date_of_birth"))
    if birth_date:
        resource["birthDate"] = birth_date
    deceased = instant(record.get("deceased_at"), ctx.timezone)
    if deceased:
        resource["deceasedDateTime"] = deceased
    addresses = _addresses(record)
    if addresses:
        resource["address"] = addresses
    contacts = _contacts(record)
    if contacts:
        resource["contact"] = contacts
    communication = _communication(record)
    if communication:
        resource["communication"] = communication
    provider = reference("Practitioner", record.get("primary_provider_id"))
    if provider:
        resource["generalPractitioner"] = [provider]
    resource["managingOrganization"] = {"reference": f"Organization/{ctx.practice_group_id}"}
    return resource


def chart_number_system(ctx: MappingContext) -> str:
    """Chart numbers are unique within one CareCloud business entity (practice)."""
    return f"urn:carecloud:business-entity:{ctx.practice_group_id}:chart-number"


# -- search ------------------------------------------------------------------------------------


def _patient_id_from_identifier(value: str) -> str | None:
    system, _, code = value.rpartition("|")
    return guid_id(code) if system == PATIENT_ID_SYSTEM else None


def _birthdate_pushdown(value: str, modifier: str | None) -> dict[str, str] | None:
    prefix, text_value = split_prefix(value)
    if modifier is None and prefix == "eq" and len(text_value) == 10:
        return {"date_of_birth": text_value}
    return None


def _family_pushdown(value: str, modifier: str | None) -> dict[str, str] | None:
    # CareCloud's last_name is a case-insensitive prefix match: a superset of `:exact`, and of
    # the default starts-with for names without diacritics (CareCloud does not fold accents).
    if modifier in (None, "exact") and value.strip() and value.isascii():
        return {"last_name": value.strip()}
    return None


MAPPING = ResourceMapping(
    resource_type="Patient",
    last_updated=PATIENT_RECORD_CHANGED,
    profile=PROFILE,
    endpoint=PATIENTS,
    transform=transform,
    vendor_id=guid_id,
    search_params=(
        SearchParam("us-core-patient-id", ById(guid_id, "GET /patients/{id}")),
        SearchParam(
            "us-core-patient-identifier",
            ById(
                _patient_id_from_identifier,
                f"GET /patients/{{id}} for {PATIENT_ID_SYSTEM}|<guid>; chart numbers are"
                " filtered locally (CareCloud has no chart-number filter)",
            ),
        ),
        SearchParam(
            "us-core-patient-name",
            LocalFilter(
                "filtered locally: `name` matches any part of any name, CareCloud filters"
                " first and last name separately"
            ),
        ),
        SearchParam(
            "us-core-patient-family",
            Pushdown(_family_pushdown, "last_name (case-insensitive prefix), re-checked locally"),
        ),
        SearchParam(
            "us-core-patient-given",
            LocalFilter("filtered locally: given names include middle and preferred names"),
        ),
        SearchParam(
            "us-core-patient-birthdate",
            Pushdown(_birthdate_pushdown, "date_of_birth for eq on a full date", exact=True),
        ),
        SearchParam(
            "us-core-patient-gender",
            LocalFilter("filtered locally: CareCloud has no gender filter"),
        ),
        SearchParam("us-core-patient-death-date", LocalFilter()),
        SearchParam(
            "us-core-patient-gender-identity",
            Unsupported("CareCloud records no gender identity"),
        ),
        SearchParam(
            "Resource-lastUpdated",
            LocalFilter("filtered locally: CareCloud has no updated-since filter"),
        ),
    ),
    combinations=(
        (("birthdate", "name"), "SHALL"),
        (("gender", "name"), "SHALL"),
        (("birthdate", "family"), "SHOULD"),
        (("family", "gender"), "SHOULD"),
        (("death-date", "family"), "SHOULD"),
    ),
    author_paths=("generalPractitioner",),
    notes="Active and inactive patients are both listed (no status filter is sent).",
)
