"""DrChrono's value maps: its own field values (gender words, order and lab statuses, unit
spellings, free-text specialties and relations) to FHIR codes. The vendor-neutral maps and
code-system URIs are in mappings/valuemaps.py."""

from __future__ import annotations

from mappings.valuemaps import (
    CPT,
    HCPCS,
    LOINC,
    SNOMED,
    US_CORE_CATEGORY,
    ValueMap,
)

ADMINISTRATIVE_GENDER = ValueMap(
    name="administrative-gender",
    source="FHIR R4 AdministrativeGender; DrChrono gender Male/Female/Other, UNK/ASKU/'' unknown",
    entries={"Male": "male", "Female": "female", "Other": "other"},
    fallback="unknown",
)

PAYER_ID_SYSTEM = "urn:drchrono:payer-id"

SCREENING_ASSESSMENT_CATEGORY = ValueMap(
    name="condition-screening-assessment-category",
    source="DrChrono problem_type → US Core 6.1.0 us-core-category (Condition.category"
    ":screening-assessment)",
    entries={
        "sdoh": {"system": US_CORE_CATEGORY, "code": "sdoh", "display": "SDOH"},
        "functional status": {
            "system": US_CORE_CATEGORY,
            "code": "functional-status",
            "display": "Functional Status",
        },
        "disability status": {
            "system": US_CORE_CATEGORY,
            "code": "disability-status",
            "display": "Disability Status",
        },
        "cognitive status": {
            "system": US_CORE_CATEGORY,
            "code": "cognitive-status",
            "display": "Cognitive Status",
        },
    },
    fallback=None,
)

#: order_status → (intent, status when not stopped, reportedBoolean, category code, requester)
#: per shared/research/upstreams.md §5.8; requester "doctor" | "patient" | None.
MEDICATION_ORDER_STATUS = ValueMap(
    name="medication-order-status",
    source="DrChrono medications.order_status (upstreams §5.8)",
    entries={
        "Ordered": ("order", "active", False, "community", "doctor"),
        "Electronic eRx Sent": ("order", "active", False, "community", "doctor"),
        "Phoned into Pharmacy": ("order", "active", False, "community", "doctor"),
        "Faxed to Pharmacy": ("order", "active", False, "community", "doctor"),
        "Paper Rx": ("order", "active", False, "community", "doctor"),
        "Prescription Printed": ("order", "active", False, "community", "doctor"),
        "Administered during visit": ("order", "completed", False, "outpatient", "doctor"),
        "Prescribed by other Dr": ("plan", "active", True, "community", None),
        "Over the Counter": ("plan", "active", True, "community", "patient"),
        "Discontinued": ("order", "stopped", False, "community", "doctor"),
    },
    fallback=("plan", "active", True, None, None),
)

#: DrChrono's code_system spellings (risk assessments, physical exams) → FHIR system URIs.
CODE_SYSTEM = ValueMap(
    name="assessment code system",
    source="DrChrono code_system / value_code_system values",
    entries={"LOINC": LOINC, "SNOMEDCT": SNOMED, "SNOMED": SNOMED, "CPT": CPT, "HCPCS": HCPCS},
    fallback=None,
)

LAB_STATUS = ValueMap(
    name="lab result / test status",
    source="DrChrono lab_results and lab_tests status (P|I|C|F|X) → FHIR observation-status"
    " and diagnostic-report-status (shared/research/upstreams.md §5.10)",
    entries={
        "P": "preliminary",
        "I": "registered",
        "C": "corrected",
        "F": "final",
        "X": "cancelled",
    },
    fallback="unknown",
)

LAB_ORDER_STATUS = ValueMap(
    name="lab order status",
    source="DrChrono lab order status (HL7 ORC-5-like: N new, Q queued, S sent, A some results,"
    " R results received, E error) → FHIR request-status",
    entries={"N": "active", "Q": "active", "S": "active", "A": "active", "R": "completed"},
    fallback="unknown",
)

#: DrChrono vitals unit → (UCUM code, human unit), shared/research/upstreams.md §5.9.
VITAL_UNITS = ValueMap(
    name="vitals unit",
    source="DrChrono *_units values → UCUM (US Core 6.1.0 vital-sign profiles)",
    entries={
        "inches": ("[in_i]", "in"),
        "cm": ("cm", "cm"),
        "lbs": ("[lb_av]", "lb"),
        "kg": ("kg", "kg"),
        "oz": ("[oz_av]", "oz"),
        "g": ("g", "g"),
        "f": ("[degF]", "degF"),
        "c": ("Cel", "Cel"),
    },
    fallback=None,
)

#: DrChrono appointment status → Encounter.status, for visits that happened or are under way
#: (shared/research/upstreams.md §5.6). Statuses not listed get no Encounter.
ENCOUNTER_STATUS = ValueMap(
    name="encounter-status",
    source="upstreams.md §5.6: Arrived/Checked In/In Room → arrived, In Session → in-progress,"
    " Complete → finished; booked, cancelled, rescheduled and no-show visits are Appointments",
    entries={
        "Arrived": "arrived",
        "Checked In": "arrived",
        "In Room": "arrived",
        "In Session": "in-progress",
        "Complete": "finished",
    },
    fallback=None,
)

#: DrChrono doctor specialty (free text, lower case) → NUCC Health Care Provider Taxonomy.
NUCC_SPECIALTY = ValueMap(
    name="nucc-specialty",
    source="NUCC Health Care Provider Taxonomy code set (http://nucc.org/provider-taxonomy)",
    entries={
        "family medicine": {"code": "207Q00000X", "display": "Family Medicine Physician"},
        "internal medicine": {"code": "207R00000X", "display": "Internal Medicine Physician"},
        "pediatrics": {"code": "208000000X", "display": "Pediatrics Physician"},
        "family nurse practitioner": {"code": "363LF0000X", "display": "Family Nurse Practitioner"},
        "nurse practitioner": {"code": "363L00000X", "display": "Nurse Practitioner"},
        "cardiology": {"code": "207RC0000X", "display": "Cardiovascular Disease Physician"},
        "obstetrics & gynecology": {
            "code": "207V00000X",
            "display": "Obstetrics & Gynecology Physician",
        },
        "general practice": {"code": "208D00000X", "display": "General Practice Physician"},
        "physician assistant": {"code": "363A00000X", "display": "Physician Assistant"},
    },
    fallback=None,
)

#: A contact's relation (DrChrono free text, lower case) → v3 RoleCode personal relationship.
PERSONAL_RELATIONSHIP = ValueMap(
    name="personal-relationship",
    source="HL7 v3 RoleCode (_PersonalRelationshipRoleType)",
    entries={
        "mother": ("MTH", "mother"),
        "father": ("FTH", "father"),
        "parent": ("PRN", "parent"),
        "daughter": ("DAU", "natural daughter"),
        "son": ("SON", "natural son"),
        "child": ("CHILD", "child"),
        "spouse": ("SPS", "spouse"),
        "wife": ("WIFE", "wife"),
        "husband": ("HUSB", "husband"),
        "sister": ("SIS", "sister"),
        "brother": ("BRO", "brother"),
        "sibling": ("SIB", "sibling"),
        "grandmother": ("GRMTH", "grandmother"),
        "grandfather": ("GRFTH", "grandfather"),
        "grandparent": ("GRPRN", "grandparent"),
        "friend": ("FRND", "unrelated friend"),
        "partner": ("DOMPART", "domestic partner"),
        "domestic partner": ("DOMPART", "domestic partner"),
        "neighbor": ("NBOR", "neighbor"),
        "guardian": ("GUARD", "guardian"),
    },
    fallback=None,
)

SPECIMEN_TYPE = ValueMap(
    name="specimen source",
    source="DrChrono lab_tests specimen_source (free text) → SNOMED CT specimen concepts",
    entries={
        "serum": ("119364003", "Serum specimen"),
        "plasma": ("119361006", "Plasma specimen"),
        "whole blood": ("258580003", "Whole blood specimen"),
        "blood": ("119297000", "Blood specimen"),
        "urine": ("122575003", "Urine specimen"),
    },
    fallback=None,
)
