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

ADMINISTRATIVE_GENDER = ValueMap(
    name="administrative-gender",
    source="FHIR R4 AdministrativeGender; DrChrono gender Male/Female/Other, UNK/ASKU/'' unknown",
    entries={"Male": "male", "Female": "female", "Other": "other"},
    fallback="unknown",
)

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
    source="ISO 639-2 (DrChrono preferred_language) to BCP-47 primary language subtags",
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
