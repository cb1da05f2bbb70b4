"""Must-support elements CareCloud's API has no source for, per US Core profile, and why
(quoting CareCloud's wire contract, which the sandbox in facade/upstream/carecloud/sandbox/
serves). Serving them would mean inventing data; each entry is a documented gap, not a pass.
The registry carries them (`must_support_gaps`): the must-support sweep holds a 40-patient
sandbox to exactly these, and the chart golden files miss exactly the chart profiles' ones.
"""

from __future__ import annotations

HAS_NO_SOURCE: dict[str, dict[str, str]] = {
    # Administrative profiles (the patient record, its insurances, the practice's providers).
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
    # Chart profiles (an encounter's items).
    "us-core-allergyintolerance": {
        "verificationStatus": "allergies[] hold id, allergen, allergen_code, code_system,"
        " reaction, reaction_code, severity, status (active|inactive), onset_date and"
        " recorded_at: no verification state",
    },
    "us-core-condition-problems-health-concerns": {
        "verificationStatus": "problems[] hold id, code, code_system, description, status"
        " (active|resolved|inactive), onset_date, resolved_date and recorded_at: no"
        " verification state",
        "Condition.extension:assertedDate": "problems[] have no asserted date; recorded_at"
        " is when the row was entered (recordedDate). onsetDateTime meets the profile's"
        " onset-or-asserted choice",
    },
    "us-core-condition-encounter-diagnosis": {
        "abatementDateTime": "diagnoses[] hold rank, code, code_system and description only;"
        " a resolution date is on the problem-list row (problems[].resolved_date)",
    },
    "us-core-diagnosticreport-lab": {
        "performer": "lab_results[] name no performing lab or responsible person; the"
        " encounter's provider ordered, not performed, the test",
    },
    "us-core-medicationrequest": {
        "dispenseRequest": "medications[] hold id, ndc, name, sig, dose_quantity, dose_unit,"
        " status, start_date, end_date, prescriber_id and recorded_at: no dispense quantity"
        " or refills",
        "dispenseRequest.numberOfRepeatsAllowed": "no refills field in medications[]",
        "dispenseRequest.quantity": "no dispense quantity field in medications[]",
        "reasonCode | reasonReference": "medications[] name no indication, and nothing links a"
        " medication to one of the encounter's diagnoses",
    },
    "us-core-observation-lab": {
        "specimen": "lab_results[] carry collected_at only: no specimen id, type or source,"
        " so there is no Specimen to reference",
    },
    "us-core-procedure": {
        "basedOn": "procedures[] hold id, code, code_system, description and performed_at:"
        " no order",
    },
}
