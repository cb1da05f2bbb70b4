"""Must-support elements of the chart profiles that CareCloud's encounter contract has no
field for, per profile, and why (quoting /work/notes/plan-12.md's wire contract, as the
sandbox serves it). Serving them would mean inventing data; each entry is a documented gap.
The chart types' part of CareCloud's excuses for the vendor-parametrised must-support sweep
(the administrative types' part is must_support_gaps.py; `ALL` joins them); test_chart.py
holds the golden outputs to exactly these gaps.
"""

from __future__ import annotations

from tests.mappings.carecloud.must_support_gaps import CARECLOUD_HAS_NO_SOURCE

CHART_HAS_NO_SOURCE: dict[str, dict[str, str]] = {
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

#: Every must-support gap of CareCloud, administrative and chart profiles.
ALL: dict[str, dict[str, str]] = {**CARECLOUD_HAS_NO_SOURCE, **CHART_HAS_NO_SOURCE}
