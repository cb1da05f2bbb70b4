"""How DrChrono sources with a custom per-patient fetch are read practice-wide, for Bulk
$export: the whole list at the largest page size, joined with the practice lists it needs.
A helper module: it defines no MAPPING.

Joins look records up by a field (`LookupTables`); the export keeps the lookup lists on disk,
indexed on the fields asked for, so a join costs an index probe and no practice list is
held in memory.
"""

from __future__ import annotations

from urllib.parse import urlencode

from facade.core.compartment import BulkListing, LookupTables
from facade.core.mapping import Record
from mappings.drchrono.fields import APPOINTMENT_PARAMS

#: A lookup with query parameters is named `<endpoint>?<query>`. Nothing in the "no stored
#: document" sense is an empty endpoint: the source has no practice-wide records.
NOTHING = BulkListing("")
APPOINTMENTS = "appointments?" + urlencode(sorted(APPOINTMENT_PARAMS.items()))
ORDERS = "lab_orders_summary"


def _lab_result(record: Record, lookups: LookupTables) -> Record | None:
    order = lookups.one(ORDERS, record.get("lab_order"))
    if order is None:
        return None
    test = lookups.one("lab_tests", record.get("lab_test")) or {}
    return {"order": order, "test": test, "result": record}


def _lab_test(record: Record, lookups: LookupTables) -> Record | None:
    order = lookups.one(ORDERS, record.get("lab_order"))
    if order is None:
        return None
    results = lookups.find("lab_results", "lab_test", record["id"])
    return {"order": order, "test": record, "results": results}


def _assessment(record: Record, lookups: LookupTables) -> Record | None:
    chart = lookups.find("patient_risk_assessments", "patient", record.get("patient"))
    return {"assessment": record, "chart": chart or [record]}


def _note(record: Record, lookups: LookupTables) -> Record | None:
    return {**record, "_appointment": lookups.one(APPOINTMENTS, record.get("appointment"))}


def _care_team(record: Record, lookups: LookupTables) -> Record | None:
    from mappings.drchrono.fields import text
    from mappings.drchrono.valuemaps import ENCOUNTER_STATUS

    doctor_ids = [str(d) for d in [record.get("doctor")] if text(d)]
    for appointment in lookups.find(APPOINTMENTS, "patient", record["id"]):
        seen = ENCOUNTER_STATUS.get(text(appointment.get("status"))) is not None
        doctor = text(appointment.get("doctor"))
        if seen and doctor and doctor not in doctor_ids:
            doctor_ids.append(doctor)
    doctors = {d: found for d in doctor_ids if (found := lookups.one("doctors", d)) is not None}
    return {**record, "_doctor_ids": doctor_ids, "_doctors": doctors}


PATIENT_RECORDS = {"show_inactive": "true"}

LAB_RESULTS = BulkListing(
    "lab_results", lookups=(ORDERS, "lab_tests"), join=_lab_result, since_param=None
)
LAB_TESTS = BulkListing(
    "lab_tests", lookups=(ORDERS, "lab_results"), join=_lab_test, since_param=None
)
RISK_ASSESSMENTS = BulkListing(
    "patient_risk_assessments",
    lookups=("patient_risk_assessments",),
    join=_assessment,
    since_param=None,
)
#: The endpoint filters by doctor and patient only: it has no `since`.
PHYSICAL_EXAMS = BulkListing("patient_physical_exams", since_param=None)
#: The endpoint's page size is at most 20 ("returns 5 objects per page, and the maximum page
#: size is 20"), so the listing asks for 20, not the verbose 50.
CLINICAL_NOTES = BulkListing(
    "clinical_notes",
    {"since": "1970-01-01T00:00:00", "page_size": "20"},
    lookups=(APPOINTMENTS,),
    join=_note,
    detail=True,
)
PATIENTS_VERBOSE = BulkListing("patients", PATIENT_RECORDS, detail=True)
CARE_TEAMS = BulkListing(
    "patients", PATIENT_RECORDS, lookups=("doctors", APPOINTMENTS), join=_care_team, detail=True
)


def _lab_request(record: Record, lookups: LookupTables) -> Record | None:
    joined = _lab_test(record, lookups)
    if joined is None:
        return None
    visit = lookups.one(APPOINTMENTS, joined["order"].get("appointment")) or {}
    return {**joined, "visit": visit}


LAB_REQUESTS = BulkListing(
    "lab_tests",
    lookups=(ORDERS, "lab_results", APPOINTMENTS),
    join=_lab_request,
    since_param=None,
)
