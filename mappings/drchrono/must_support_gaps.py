"""Must-support elements DrChrono's API has no source for, per US Core profile, and why
(quoting the v4 contract, shared/seeds/drchrono-v4-api-reference.txt, or the field survey in
shared/research/upstreams.md). Serving them would mean inventing data; each entry is a
documented gap, not a pass. The registry carries them (`must_support_gaps`), and the
must-support sweep fails on an entry whose element the sandbox does yield (a stale excuse).
"""

from __future__ import annotations

HAS_NO_SOURCE: dict[str, dict[str, str]] = {
    "us-core-coverage": {
        "period": "the insurance objects of /api/patients (primary_insurance, secondary_"
        "insurance, tertiary_insurance) hold payer, plan, group, member and subscriber fields"
        " only; upstreams.md: 'No coverage start/end dates exist anywhere'. /api/eligibility_"
        "checks has only the clearinghouse's free-form coverage_details ('A variable size"
        " object'), and its query_date is when a check ran, not when coverage began",
    },
    "us-core-procedure": {
        "basedOn": "/api/procedures has appointment, code, created_at, date, description,"
        " doctor, id, patient, procedure_type, status, updated_at and no order;"
        " /api/patient_interventions has no order either, and /api/lab_orders and"
        " /api/lab_tests (the ServiceRequests) name no procedure",
    },
    "us-core-encounter": {
        "hospitalization": "/api/appointments are ambulatory visits (status one of '',"
        " 'Arrived', 'Checked In', 'In Room', 'Cancelled', 'Complete', ...); no key records an"
        " admission or inpatient stay",
        "hospitalization.dischargeDisposition": "no key of /api/appointments records where"
        " the patient went after the visit",
    },
    "us-core-practitionerrole": {
        "endpoint": "DrChrono holds no Direct address or other electronic endpoint per doctor",
    },
    "us-core-diagnosticreport-note": {
        "encounter": "DrChrono documents (the reports' source) carry a date, doctor and patient"
        " but no appointment",
    },
    "us-core-condition-encounter-diagnosis": {
        "abatementDateTime": "an encounter diagnosis is a code billed on the appointment"
        " ('icd10_codes string read-only'), with no date of its own; the resolution date is"
        " on the problem-list row (/api/problems status resolved, date_changed), which the"
        " problem-list Condition carries",
    },
}
