"""Vendor-neutral value maps to US Core codes, each with its source and its fallback.

A ValueMap turns a vendor value into FHIR codes; what happens to a value it does not know
is declared (omit it, or use a data-absent coding) instead of decided at each call site.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OMB_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
SNOMED = "http://snomed.info/sct"
BCP47 = "urn:ietf:bcp:47"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CVX = "http://hl7.org/fhir/sid/cvx"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "urn:oid:2.16.840.1.113883.6.285"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


@dataclass(frozen=True)
class ValueMap:
    """vendor value → FHIR value (a code, a Coding dict, ...); unknown values → `fallback`."""

    name: str
    source: str
    entries: Mapping[str, Any]
    #: What an unknown or empty vendor value becomes; None means "omit the element".
    fallback: Any = None

    def get(self, vendor_value: str | None) -> Any:
        if vendor_value is None:
            return self.fallback
        return self.entries.get(vendor_value, self.fallback)


def _omb(code: str, display: str) -> dict[str, str]:
    return {"system": OMB_SYSTEM, "code": code, "display": display}


_ASKED_DECLINED = {"system": NULL_FLAVOR, "code": "ASKU", "display": "Asked but no answer"}
_UNKNOWN = {"system": NULL_FLAVOR, "code": "UNK", "display": "Unknown"}

RACE = ValueMap(
    name="race",
    source="OMB race categories (CDC Race & Ethnicity code set 1.0,"
    " urn:oid:2.16.840.1.113883.6.238); 'declined' as NullFlavor ASKU, which US Core 6.1.0's"
    " OMB race value set allows",
    entries={
        "indian": (_omb("1002-5", "American Indian or Alaska Native"),),
        "asian": (_omb("2028-9", "Asian"),),
        "black": (_omb("2054-5", "Black or African American"),),
        "hawaiian": (_omb("2076-8", "Native Hawaiian or Other Pacific Islander"),),
        "white": (_omb("2106-3", "White"),),
        "other": (_UNKNOWN,),
        "declined": (_ASKED_DECLINED,),
    },
    fallback=None,
)

RACE_TEXT = {
    "indian": "American Indian or Alaska Native",
    "asian": "Asian",
    "black": "Black or African American",
    "hawaiian": "Native Hawaiian or Other Pacific Islander",
    "white": "White",
    "other": "Other",
    "declined": "Declined to specify",
}

ETHNICITY = ValueMap(
    name="ethnicity",
    source="OMB ethnicity categories (CDC Race & Ethnicity code set 1.0); 'declined' as ASKU",
    entries={
        "hispanic": (_omb("2135-2", "Hispanic or Latino"),),
        "not_hispanic": (_omb("2186-5", "Not Hispanic or Latino"),),
        "declined": (_ASKED_DECLINED,),
    },
    fallback=None,
)

ETHNICITY_TEXT = {
    "hispanic": "Hispanic or Latino",
    "not_hispanic": "Not Hispanic or Latino",
    "declined": "Declined to specify",
}


SEX = ValueMap(
    name="us-core-sex",
    source="US Core 6.1.0 us-core-sex binding (VSAC 2.16.840.1.113762.1.4.1240.3): SNOMED CT"
    " 248153007 Male, 248152002 Female, 184115007 Patient sex unknown; NullFlavor ASKU",
    entries={
        "Male": {"system": SNOMED, "code": "248153007", "display": "Male (finding)"},
        "Female": {"system": SNOMED, "code": "248152002", "display": "Female (finding)"},
        "UNK": {"system": SNOMED, "code": "184115007", "display": "Patient sex unknown (finding)"},
        "ASKU": _ASKED_DECLINED,
    },
    fallback=None,
)

LANGUAGE = ValueMap(
    name="language",
    source="ISO 639-2 (a vendor's preferred language) to BCP-47 primary language subtags",
    entries={
        "eng": ("en", "English"),
        "spa": ("es", "Spanish"),
        "zho": ("zh", "Chinese"),
        "fra": ("fr", "French"),
        "ita": ("it", "Italian"),
        "jpn": ("ja", "Japanese"),
        "por": ("pt", "Portuguese"),
        "rus": ("ru", "Russian"),
        "deu": ("de", "German"),
        "vie": ("vi", "Vietnamese"),
        "kor": ("ko", "Korean"),
        "ara": ("ar", "Arabic"),
        "hin": ("hi", "Hindi"),
        "tgl": ("tl", "Tagalog"),
        "pol": ("pl", "Polish"),
    },
    fallback=None,
)


# == Condition, MedicationRequest, Immunization, Procedure, Device, Coverage ==================
# (owned by the clinical-list mappings: condition.py, medication_request.py, immunization.py,
# procedure.py, device.py, coverage.py, payer.py)

ICD9CM = "http://terminology.hl7.org/CodeSystem/icd9cm"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_CONDITION_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
MEDICATIONREQUEST_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
NDC = "http://hl7.org/fhir/sid/ndc"
V3_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
IMMUNIZATION_ORIGIN = "http://terminology.hl7.org/CodeSystem/immunization-origin"
VFC_ELIGIBILITY = "http://terminology.hl7.org/CodeSystem/v2-0064"
MVX = "http://hl7.org/fhir/sid/mvx"
SOPT = "urn:oid:2.16.840.1.113883.3.221.5"
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


def icd10_with_dot(code: str) -> str:
    """ICD-10-CM as FHIR writes it: vendors sometimes drop the dot (E119 → E11.9)."""
    code = code.strip().upper()
    if "." in code or len(code) <= 3:
        return code
    return f"{code[:3]}.{code[3:]}"


IMMUNIZATION_ORIGIN_BY_SOURCE = ValueMap(
    name="immunization-report-origin",
    source="NIP001 record_source (historical 01..08) → immunization-origin (upstreams §5.11)",
    entries={
        "01": ("record", "Historical information - source unspecified"),
        "02": ("provider", "Historical information - from other provider"),
        "03": ("record", "Historical information - from parent's written record"),
        "04": ("recall", "Historical information - from parent's recall"),
        "05": ("record", "Historical information - from other registry"),
        "06": ("record", "Historical information - from birth certificate"),
        "07": ("school", "Historical information - from school record"),
        "08": ("record", "Historical information - from public agency"),
    },
    fallback=None,
)

VFC_ELIGIBILITY_DISPLAY = {
    "V01": "Not VFC eligible",
    "V02": "VFC eligible - Medicaid/Medicaid Managed Care",
    "V03": "VFC eligible - Uninsured",
    "V04": "VFC eligible - American Indian/Alaskan Native",
    "V05": "VFC eligible - Federally Qualified Health Center Patient (under-insured)",
    "V07": "Local-specific eligibility",
}

#: X12 claim filing indicator (a vendor's insurance plan type) → Source of Payment Typology.
PAYER_TYPE = ValueMap(
    name="payer-type",
    source="X12 claim filing indicator → PHDSC Source of Payment Typology"
    " (urn:oid:2.16.840.1.113883.3.221.5; upstreams §5.13)",
    entries={
        "MA": ("1", "MEDICARE"),
        "MB": ("1", "MEDICARE"),
        "16": ("11", "Medicare (Managed Care)"),
        "MC": ("2", "MEDICAID"),
        "CH": ("311", "TRICARE (CHAMPUS)"),
        "VA": ("32", "Department of Veterans Affairs"),
        "HM": ("511", "Commercial Managed Care - HMO"),
        "12": ("512", "Commercial Managed Care - PPO"),
        "13": ("513", "Commercial Managed Care - POS"),
        "BL": ("6", "BLUE CROSS/BLUE SHIELD"),
        "CI": ("5", "PRIVATE HEALTH INSURANCE"),
        "11": ("5", "PRIVATE HEALTH INSURANCE"),
        "14": ("5", "PRIVATE HEALTH INSURANCE"),
        "15": ("5", "PRIVATE HEALTH INSURANCE"),
        "17": ("5", "PRIVATE HEALTH INSURANCE"),
        "WC": ("95", "Worker's Compensation"),
        "AM": ("96", "Auto Insurance (includes no fault)"),
    },
    fallback=("9", "MISCELLANEOUS/OTHER"),
)

#: X12 individual relationship code → subscriber-relationship.
SUBSCRIBER_RELATIONSHIP_CODE = ValueMap(
    name="subscriber-relationship",
    source="X12 individual relationship codes (patient's relationship to the subscriber)",
    entries={"18": "self", "01": "spouse", "19": "child", "53": "common", "G8": "other"},
    fallback="other",
)


# == Observation, DiagnosticReport, ServiceRequest, Specimen (labs, vitals, assessments) ==

OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT_REASON_CODES = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


#: HL7 v2 table 0078 flags → v3 ObservationInterpretation (same codes; `<`/`>` stay off-scale).
LAB_INTERPRETATION = ValueMap(
    name="lab abnormal flag",
    source="HL7 v2 table 0078 abnormal flags → v3-ObservationInterpretation",
    entries={
        code: code
        for code in (
            "L",
            "LL",
            "H",
            "HH",
            "A",
            "AA",
            "N",
            "S",
            "R",
            "I",
            "NEG",
            "POS",
            "U",
            "D",
            "B",
            "W",
            "MS",
            "VS",
            "<",
            ">",
        )
    },
    fallback=None,
)

#: Lab units vendor results carry that are already UCUM codes (else the unit stays text).
LAB_UCUM_UNITS = frozenset(
    {
        "%",
        "10*3/uL",
        "10*6/uL",
        "U/L",
        "fL",
        "g/dL",
        "mL/min/{1.73_m2}",
        "m[IU]/L",
        "mg/dL",
        "mg/g",
        "mmol/L",
        "pg",
        "g/L",
        "mg/L",
        "ng/mL",
        "pg/mL",
        "umol/L",
        "mEq/L",
        "[IU]/L",
        "/uL",
        "s",
        "ratio",
        "{ratio}",
        "mm/h",
        "ug/dL",
        "nmol/L",
        "mmol/mol",
    }
)


SMOKING_STATUS = ValueMap(
    name="smoking status",
    source="Smoking status SNOMED CT codes → display, per US Core 6.1.0 smoking status value set",
    entries={
        "449868002": "Smokes tobacco daily",
        "428041000124106": "Occasional tobacco smoker",
        "8517006": "Ex-smoker",
        "266919005": "Never smoked tobacco",
        "77176002": "Smoker",
        "266927001": "Tobacco smoking consumption unknown",
        "428071000124103": "Heavy tobacco smoker",
        "428061000124105": "Light tobacco smoker",
    },
    fallback=None,
)


# == Encounter, DocumentReference, CarePlan, Goal, CareTeam, RelatedPerson, PractitionerRole ==
# (owned by encounter.py, document_reference.py, docref.py, care_plan.py, goal.py,
# care_team.py, related_person.py, practitioner_role.py)

V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
V3_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
NUCC = "http://nucc.org/provider-taxonomy"
US_CORE_DOCUMENT_CATEGORY = (
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
)
IHE_FORMAT_CODE = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
CAREPLAN_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
DATA_ABSENT_REASON_CODES = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def _sct(code: str, display: str) -> dict[str, str]:
    return {"system": SNOMED, "code": code, "display": display}


#: Appointment reason (its first words) → US Core encounter type (SNOMED CT descendants of
#: 308335008 |Patient encounter procedure|; the binding is extensible). Anything else is a
#: visit for a problem or symptom.
ENCOUNTER_TYPE = ValueMap(
    name="encounter-type",
    source="SNOMED CT encounter procedures (US Core Encounter Type value set)",
    entries={
        "new patient visit": _sct("185349003", "Encounter for check up (procedure)"),
        "annual physical": _sct("162673000", "General examination of patient (procedure)"),
        "well child check": _sct("410620009", "Well child visit (procedure)"),
        "follow-up": _sct("390906007", "Follow-up encounter (procedure)"),
    },
    fallback=_sct("185345009", "Encounter for symptom (procedure)"),
)


def _loinc(code: str, display: str) -> dict[str, str]:
    return {"system": LOINC, "code": code, "display": display}


#: A scanned document's metatag or description (lower case) → LOINC document type
#: (US Core clinical note types; LOINC 2.80). Unknown kinds are data-absent-reason `unknown`,
#: which the US Core DocumentReference Type value set includes.
DOCUMENT_TYPE = ValueMap(
    name="document-type",
    source="LOINC document ontology codes named by US Core 6.1.0 Clinical Notes guidance",
    entries={
        "consult note": _loinc("11488-4", "Consult note"),
        "discharge summary": _loinc("18842-5", "Discharge summary"),
        "history and physical note": _loinc("34117-2", "History and physical note"),
        "procedure note": _loinc("28570-0", "Procedure note"),
        "progress note": _loinc("11506-3", "Progress note"),
        "diagnostic imaging study": _loinc("18748-4", "Diagnostic imaging study"),
        "laboratory report": _loinc("11502-2", "Laboratory report"),
        "pathology study": _loinc("11526-1", "Pathology study"),
        "referral note": _loinc("57133-1", "Referral note"),
        "ekg study": _loinc("11524-6", "EKG study"),
    },
    fallback={"system": DATA_ABSENT_REASON_CODES, "code": "unknown", "display": "Unknown"},
)

#: A report's LOINC document type → its US Core DiagnosticReport category (LOINC parts in the
#: us-core-diagnosticreport-category value set). Types not listed are notes, not reports:
#: they are DocumentReferences only.
REPORT_CATEGORY = ValueMap(
    name="diagnostic-report-category",
    source="US Core 6.1.0 ValueSet us-core-diagnosticreport-category (LOINC parts); LOINC 2.80",
    entries={
        "18748-4": _loinc("LP29684-5", "Radiology"),
        "11524-6": _loinc("LP29708-2", "Cardiology"),
        "11526-1": _loinc("LP7839-6", "Pathology"),
    },
    fallback=None,
)
