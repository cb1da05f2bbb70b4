"""How DrChrono sources with a custom per-patient fetch are read practice-wide, for Bulk
$export: the whole list at the largest page size, joined with the practice lists it needs.
A helper module: it defines no MAPPING.

Joins index their lookups once per lookup list (not once per record), so a listing of n
records joined with m lookup records costs O(n + m).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from facade.core.compartment import BulkListing
from facade.core.mapping import Record
from mappings.drchrono.fields import APPOINTMENT_PARAMS

Lookups = Mapping[str, list[Record]]

#: A lookup with query parameters is named `<endpoint>?<query>`. Nothing in the "no stored
#: document" sense is an empty endpoint: the source has no practice-wide records.
NOTHING = BulkListing("")
APPOINTMENTS = "appointments?" + urlencode(sorted(APPOINTMENT_PARAMS.items()))
ORDERS = "lab_orders_summary"
_indexes: dict[tuple[int, str], dict[str, Any]] = {}


def _index(records: list[Record], key: Callable[[Record], str], name: str) -> dict[str, Any]:
    """An index of a lookup list, built once for the list object and reused."""
    cache_key = (id(records), name)
    found = _indexes.get(cache_key)
    if found is None:
        if len(_indexes) > 64:
            _indexes.clear()
        found = {}
        for record in records:
            found.setdefault(key(record), []).append(record)
        _indexes[cache_key] = found
    return found


def _by_id(records: list[Record], name: str) -> dict[str, Record]:
    return {k: v[0] for k, v in _index(records, lambda r: str(r["id"]), name).items()}


def _lab_result(record: Record, lookups: Lookups) -> Record | None:
    orders = _by_id(lookups.get(ORDERS, []), "orders")
    tests = _by_id(lookups.get("lab_tests", []), "tests")
    order = orders.get(str(record.get("lab_order")))
    if order is None:
        return None
    return {"order": order, "test": tests.get(str(record.get("lab_test")), {}), "result": record}


def _lab_test(record: Record, lookups: Lookups) -> Record | None:
    orders = _by_id(lookups.get(ORDERS, []), "orders")
    results = _index(lookups.get("lab_results", []), lambda r: str(r.get("lab_test")), "by-test")
    order = orders.get(str(record.get("lab_order")))
    if order is None:
        return None
    return {"order": order, "test": record, "results": results.get(str(record["id"]), [])}


def _assessment(record: Record, lookups: Lookups) -> Record | None:
    chart = _index(
        lookups.get("patient_risk_assessments", []), lambda r: str(r.get("patient")), "by-patient"
    )
    return {"assessment": record, "chart": chart.get(str(record.get("patient")), [record])}


def _note(record: Record, lookups: Lookups) -> Record | None:
    appointments = _by_id(lookups.get(APPOINTMENTS, []), "appointments")
    return {**record, "_appointment": appointments.get(str(record.get("appointment")))}


def _care_team(record: Record, lookups: Lookups) -> Record | None:
    from mappings.drchrono.fields import text
    from mappings.valuemaps import ENCOUNTER_STATUS

    by_patient = _index(
        lookups.get(APPOINTMENTS, []), lambda r: str(r.get("patient")), "appointments-by-patient"
    )
    doctor_ids = [str(d) for d in [record.get("doctor")] if text(d)]
    for appointment in by_patient.get(str(record["id"]), []):
        seen = ENCOUNTER_STATUS.get(text(appointment.get("status"))) is not None
        doctor = text(appointment.get("doctor"))
        if seen and doctor and doctor not in doctor_ids:
            doctor_ids.append(doctor)
    doctors = _by_id(lookups.get("doctors", []), "doctors")
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
CLINICAL_NOTES = BulkListing(
    "clinical_notes",
    {"since": "1970-01-01T00:00:00"},
    lookups=(APPOINTMENTS,),
    join=_note,
    verbose=True,
)
PATIENTS_VERBOSE = BulkListing("patients", PATIENT_RECORDS, verbose=True)
CARE_TEAMS = BulkListing(
    "patients", PATIENT_RECORDS, lookups=("doctors", APPOINTMENTS), join=_care_team, verbose=True
)


def _lab_request(record: Record, lookups: Lookups) -> Record | None:
    joined = _lab_test(record, lookups)
    if joined is None:
        return None
    visits = _by_id(lookups.get(APPOINTMENTS, []), "appointments")
    return {**joined, "visit": visits.get(str(joined["order"].get("appointment")), {})}


LAB_REQUESTS = BulkListing(
    "lab_tests",
    lookups=(ORDERS, "lab_results", APPOINTMENTS),
    join=_lab_request,
    since_param=None,
)
