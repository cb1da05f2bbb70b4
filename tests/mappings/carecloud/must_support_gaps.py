"""Must-support elements CareCloud's API has no source for, per profile, and why (quoting the
wire contract in notes/plan-12.md, which the sandbox serves). The CareCloud counterpart of
tests/validation/test_must_support.py's VENDOR_HAS_NO_SOURCE, for when that test runs per
vendor: each entry is a documented gap, not a pass. Measured over a 40-patient sandbox
(every other must-support element of these profiles appears)."""

from __future__ import annotations

CARECLOUD_HAS_NO_SOURCE: dict[str, dict[str, str]] = {
    "us-core-patient": {
        "Patient.extension:tribalAffiliation": "the patient record (GET /patients/{id}) has"
        " race_code, ethnicity_code, language_code, birth_sex and gender_code, and no tribe",
    },
    "us-core-coverage": {
        "type": "an insurance is {id, priority, payer_id, payer_name, member_id, group_number,"
        " plan_name, effective_date, termination_date, relationship_to_insured_code,"
        " subscriber}: no plan type or claim filing indicator to choose a Source of Payment"
        " Typology code from",
    },
    "us-core-encounter": {
        "hospitalization": "CareCloud encounters are ambulatory visits (type office_visit or"
        " telehealth); no field records an admission",
        "hospitalization.dischargeDisposition": "no encounter field records where the patient"
        " went after the visit",
    },
    "us-core-practitionerrole": {
        "endpoint": "a provider is {id, npi, first_name, last_name, name, credentials, email,"
        " phone_number, specialty, location_ids}: no Direct address or other endpoint",
    },
    "us-core-relatedperson": {
        "address": "emergency_contact is {name, relationship_code, phone_number}: no address",
    },
}
