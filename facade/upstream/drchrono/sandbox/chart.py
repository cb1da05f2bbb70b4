"""A patient's clinical chart beyond visits: problems, allergies, medications, labs,
and immunizations (care plans and coded assessments are in `assessments`).

It writes only codes present in the curated tables and only ids of records that exist;
lab results carry no patient (they join through their lab order, as DrChrono's do).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import cache
from typing import Any

from facade.sandbox.codes import load_table
from facade.upstream.drchrono.sandbox.assessments import write_assessments
from facade.upstream.drchrono.sandbox.context import REFERENCE_DATE, Chart, Practice, timestamp
from facade.upstream.drchrono.sandbox.dataset import Record

SHOWCASE_CONDITIONS: dict[str, tuple[str, ...]] = {
    "adult": ("Z34.90", "F41.1", "J30.9", "G43.909", "K21.9", "Z59.41", "N39.0"),
    "child": ("J45.909", "L20.9", "J30.9", "H66.90"),
    "deceased": ("I10", "E11.9", "I50.9", "I48.91", "N18.30", "G31.84", "H91.90", "Z99.3", "Z60.2"),
}
CHILD_CHRONIC = ("J45.909", "L20.9", "J30.9", "F90.9")
ADULT_CHRONIC = (
    "I10",
    "E78.5",
    "E11.9",
    "R73.03",
    "E66.9",
    "K21.9",
    "F41.1",
    "F32.9",
    "J45.909",
    "J30.9",
    "E03.9",
    "G43.909",
    "M54.50",
    "E55.9",
    "G47.33",
    "K58.9",
    "M79.7",
    "F17.210",
)
OLDER_CHRONIC = (
    "M17.9",
    "M81.0",
    "I48.91",
    "I25.10",
    "I50.9",
    "N18.30",
    "J44.9",
    "D64.9",
    "H91.90",
    "G31.84",
    "Z99.3",
)
HEALTH_CONCERNS = ("Z59.41", "Z59.00", "Z56.0", "Z60.2")

#: ICD-10-CM code -> RxNorm SCDs that treat it
TREATMENTS: dict[str, tuple[str, ...]] = {
    "I10": ("314076", "197361", "310798", "979492", "314077", "308135"),
    "E78.5": ("617310", "617311", "859747", "312961"),
    "E11.9": ("861007", "861004", "310490", "665033", "1545658"),
    "E03.9": ("966221",),
    "K21.9": ("198051",),
    "F41.1": ("312941",),
    "F32.9": ("312941",),
    "J45.909": ("745679", "895994"),
    "M79.7": ("310431",),
    "I50.9": ("200032", "313988"),
    "I25.10": ("243670",),
    "D64.9": ("310325",),
    "G43.909": ("313782",),
    "M54.50": ("310965",),
}
PRESCRIBED = ("Electronic eRx Sent",) * 6 + (
    "Ordered",
    "Phoned into Pharmacy",
    "Faxed to Pharmacy",
    "Paper Rx",
    "Prescription Printed",
    "Prescribed by other Dr",
    "",
)
DRUG_ALLERGENS = ("7980", "723", "10180", "2670", "5640", "1191")
OTHER_ALLERGENS = ("762952008", "111088007", "256259004", "264287008", "102263004", "3718001")
REACTIONS = ("247472004", "271807003", "39579001", "422587007", "267036007", "65124004", "64531003")
SITES = ("Left deltoid", "Right deltoid", "Left vastus lateralis", "Right vastus lateralis")


@cache
def _icd(code: str) -> dict[str, Any]:
    return load_table("icd10cm").row(code)


@cache
def _row(table: str, code: str) -> dict[str, Any]:
    return load_table(table).row(code)


def choose_conditions(chart: Chart) -> None:
    """Pick the patient's diagnoses (ICD-10-CM rows) before visits are written."""
    rng = chart.rng
    if chart.showcase:
        chart.conditions = [_icd(code) for code in SHOWCASE_CONDITIONS[chart.showcase]]
        return
    age = chart.age_on(REFERENCE_DATE)
    if age < 18:
        codes = rng.sample(CHILD_CHRONIC, rng.randint(0, 2))
    else:
        pool = ADULT_CHRONIC + (OLDER_CHRONIC if age >= 60 else ())
        codes = rng.sample(pool, rng.randint(1, 5))
        if rng.random() < 0.12:
            codes.append(rng.choice(HEALTH_CONCERNS))
        if chart.sex == "female" and 18 <= age < 42 and rng.random() < 0.08:
            codes.append("Z34.90")
    acute = load_table("icd10cm").where(kind="acute")
    codes.append(rng.choice(acute)["code"])
    chart.conditions = [_icd(code) for code in dict.fromkeys(codes)]


def write_chart(practice: Practice, chart: Chart, records: dict[str, list[Record]]) -> None:
    _problems(practice, chart, records["problems"])
    _allergies(practice, chart, records["allergies"])
    _medications(practice, chart, records["medications"])
    _labs(practice, chart, records)
    _vaccines(practice, chart, records["patient_vaccine_records"])
    write_assessments(practice, chart, records)


def _day_in_chart(chart: Chart, start: date | None = None) -> date:
    first = start or chart.first_day
    span = max((min(chart.last_day, REFERENCE_DATE) - first).days, 1)
    return first + timedelta(days=chart.rng.randint(0, span - 1))


def _visit(chart: Chart) -> Record | None:
    return chart.rng.choice(chart.visits) if chart.visits else None


def _visit_day(visit: Record | None, chart: Chart) -> date:
    return date.fromisoformat(visit["scheduled_time"][:10]) if visit else _day_in_chart(chart)


def _problems(practice: Practice, chart: Chart, problems: list[Record]) -> None:
    rng = chart.rng
    for position, row in enumerate(chart.conditions):
        visit = chart.visits[0] if chart.visits and position < 2 else _visit(chart)
        diagnosed = _visit_day(visit, chart)
        onset = diagnosed - timedelta(days=rng.randint(0, 400 if row["kind"] == "chronic" else 7))
        onset = max(onset, chart.birth_date)
        acute = row["kind"] == "acute"
        resolved = acute and (chart.showcase != "adult" or row["code"] == "N39.0")
        abatement = diagnosed + timedelta(days=rng.randint(5, 30)) if resolved else None
        concern = row["kind"] == "health-concern"
        status = "resolved" if resolved else "active"
        if chart.patient["patient_status"] == "D" and not resolved:
            status = "inactive"
        problems.append(
            {
                "id": practice.next_id("problems", rng),
                "patient": chart.patient_id,
                "doctor": chart.doctor,
                "appointment": int(visit["id"]) if visit and rng.random() < 0.7 else None,
                "name": row["display"],
                "description": "",
                "icd_code": row["code"],
                "icd_version": "10",
                "snomed_ct_code": row["snomed"],
                "status": status,
                "verification_status": rng.choice(
                    ("confirmed", "confirmed", "confirmed", "provisional", "")
                ),
                "category": "health-concern" if concern else "problem-list-item",
                "problem_type": row["problem_type"],
                "date_onset": onset.isoformat(),
                "date_diagnosis": diagnosed.isoformat(),
                "date_changed": (abatement or diagnosed).isoformat(),
                "abatement_date": abatement.isoformat() if abatement else None,
                "notes": "",
                "info_url": "",
            }
        )
    if not chart.showcase and rng.random() < 0.03:
        problems.append(
            {
                "id": practice.next_id("problems", rng),
                "patient": chart.patient_id,
                "doctor": chart.doctor,
                "appointment": None,
                "name": "Problem",
                "description": "",
                "icd_code": "",
                "icd_version": "10",
                "snomed_ct_code": "55607006",
                "status": "active",
                "verification_status": "",
                "category": "problem-list-item",
                "problem_type": "",
                "date_onset": None,
                "date_diagnosis": None,
                "date_changed": None,
                "abatement_date": None,
                "notes": "",
                "info_url": "",
            }
        )


def _allergies(practice: Practice, chart: Chart, allergies: list[Record]) -> None:
    rng = chart.rng
    chosen: list[tuple[str, str]]  # (table, code)
    if chart.showcase == "adult":
        chosen = [("rxnorm", "7980"), ("snomed", "762952008")]
    elif chart.showcase == "child":
        chosen = [("snomed", "102263004")]
    elif chart.showcase == "deceased":
        chosen = [("rxnorm", "10180")]
    else:
        count = rng.choices((0, 1, 2, 3), (35, 40, 18, 7))[0]
        chosen = [("rxnorm", code) for code in rng.sample(DRUG_ALLERGENS, min(count, 2))]
        chosen += [("snomed", code) for code in rng.sample(OTHER_ALLERGENS, count - len(chosen))]
    for table, code in chosen:
        row = _row(table, code)
        reaction = "39579001" if code == "762952008" else rng.choice(REACTIONS)
        reaction_name = _row("snomed", reaction)["display"]
        drug = table == "rxnorm"
        allergies.append(
            {
                "id": practice.next_id("allergies", rng),
                "patient": chart.patient_id,
                "doctor": chart.doctor,
                "description": f"{_allergy_category(table, code)}: {row['display'].capitalize()}",
                "reaction": reaction_name if rng.random() < 0.85 else "",
                "snomed_reaction": reaction,
                "status": "active" if rng.random() < 0.9 or chart.showcase else "inactive",
                "verification_status": "confirmed"
                if chart.showcase or rng.random() < 0.8
                else "unconfirmed",
                "snomed_code": "" if drug else code,
                "rxnorm": code if drug else "",
                "notes": "",
            }
        )


FOOD_ALLERGENS = ("762952008", "102263004", "3718001")


def _allergy_category(table: str, code: str) -> str:
    """DrChrono's allergy description starts with a category label."""
    if table == "rxnorm":
        return "Drug"
    return "Food" if code in FOOD_ALLERGENS else "Environmental"


def _medications(practice: Practice, chart: Chart, medications: list[Record]) -> None:
    rng = chart.rng
    plans: list[tuple[str, str]] = []  # (rxcui, icd)
    for row in chart.conditions:
        options = TREATMENTS.get(row["code"], ())
        if options:
            take = 2 if row["code"] == "J45.909" else 1
            plans += (
                [(rxcui, row["code"]) for rxcui in options[:take]]
                if chart.showcase
                else [(rng.choice(options), row["code"])]
            )
    if chart.showcase == "adult":
        plans.append(("310965", "M54.50"))  # ibuprofen, discontinued in pregnancy
    elif not chart.showcase and chart.age_on(REFERENCE_DATE) >= 18 and rng.random() < 0.3:
        plans.append(("313782", "R51.9"))
    if chart.showcase == "child":
        plans = [(rxcui, icd) for rxcui, icd in plans if rxcui in ("745679", "895994")]
    for index, (rxcui, icd) in enumerate(plans):
        row = _row("rxnorm", rxcui)
        visit = _visit(chart)
        prescribed = _visit_day(visit, chart)
        over_the_counter = rxcui in ("313782", "310965")
        order_status = "Over the Counter" if over_the_counter else rng.choice(PRESCRIBED)
        stopped: date | None = None
        status = "active"
        if chart.showcase == "adult" and rxcui == "310965":
            order_status, status = "Discontinued", "inactive"
            stopped = prescribed + timedelta(days=60)
        elif chart.patient["patient_status"] == "D":
            status, stopped = "inactive", chart.last_day
        elif rng.random() < 0.12:
            status, stopped = "inactive", prescribed + timedelta(days=rng.randint(30, 300))
        prn = "as needed" in row["frequency"]
        medications.append(
            {
                "id": practice.next_id("medications", rng),
                "patient": chart.patient_id,
                "doctor": chart.doctor,
                "appointment": int(visit["id"]) if visit else None,
                "name": row["display"],
                "rxnorm": rxcui if rng.random() < 0.97 or chart.showcase else "",
                "ndc": "0" if rng.random() < 0.05 and not chart.showcase else "",
                "status": status,
                "order_status": order_status,
                "date_prescribed": None if over_the_counter else prescribed.isoformat(),
                "date_started_taking": prescribed.isoformat(),
                "date_stopped_taking": stopped.isoformat()
                if stopped and stopped > prescribed
                else None,
                "dosage_quantity": row["dosage_quantity"],
                "dosage_units": row["dosage_units"],
                "route": row["route"],
                "frequency": row["frequency"],
                "prn": prn,
                "daw": index == 0 and chart.showcase == "deceased",
                "dispense_quantity": None
                if over_the_counter
                else float(rng.choice((30, 60, 90)))
                if row["route"] == "oral"
                else 1.0,
                "number_refills": 0 if over_the_counter else rng.randint(0, 5),
                "signature_note": row["sig"],
                "pharmacy_note": "",
                "indication": _icd(icd)["display"]
                if icd in {r["code"] for r in chart.conditions}
                else "",
                "notes": "",
            }
        )


PANELS_FOR: dict[str, str] = {
    "E11.9": "A1C",
    "R73.03": "A1C",
    "E78.5": "LIPID",
    "E03.9": "TSH",
    "N18.30": "UACR",
    "D64.9": "CBC",
}


@cache
def _panel_rows() -> dict[str, dict[str, Any]]:
    return {row["group"]: row for row in load_table("loinc_lab_panels").rows}


@cache
def _results_of(group: str) -> tuple[dict[str, Any], ...]:
    return load_table("loinc_labs").where(group=group)


def _labs(practice: Practice, chart: Chart, records: dict[str, list[Record]]) -> None:
    rng = chart.rng
    if not chart.visits:
        return
    adult = chart.age_on(REFERENCE_DATE) >= 18
    if chart.showcase:
        order_count = 3 if chart.showcase == "adult" else 1
    else:
        order_count = rng.randint(1, 3) if adult else rng.choice((0, 0, 1))
    wanted = [PANELS_FOR[row["code"]] for row in chart.conditions if row["code"] in PANELS_FOR]
    for order_index in range(order_count):
        visit = (
            chart.visits[min(order_index * 2, len(chart.visits) - 1)]
            if chart.showcase
            else rng.choice(chart.visits)
        )
        day = date.fromisoformat(visit["scheduled_time"][:10])
        if chart.showcase == "adult" and order_index == 0:
            # A urinalysis: qualitative results (coded and text), not only numbers.
            groups = [*([wanted[0]] if wanted else []), "UA"]
        elif not adult:
            groups = ["CBC"]
        else:
            groups = list(
                dict.fromkeys(
                    ([wanted[order_index % len(wanted)]] if wanted else [])
                    + [rng.choice(("CMP", "CBC"))]
                )
            )
        order_id = practice.next_id("lab_orders", rng)
        document_id = practice.next_id("lab_documents", rng)
        codes = visit["icd10_codes"]
        pending = chart.showcase == "adult" and order_index == order_count - 1
        records["lab_orders"].append(
            {
                "id": order_id,
                "patient": chart.patient_id,
                "doctor": chart.doctor,
                "sublab": 2201,
                "status": "N" if pending else "R",
                "priority": "S" if rng.random() < 0.05 else "N",
                "timestamp": visit["updated_at"],
                "icd10_codes": [
                    {"code": code, "description": _icd(code)["display"]} for code in codes
                ],
                "requisition_id": str(order_id),
                "external_requisition_id": "",
                "accession_number": f"AC{order_id}",
                "notes": "",
                "documents": [document_id],
            }
        )
        collected = f"{day.isoformat()}T{rng.randint(8, 11):02d}:{rng.randint(0, 59):02d}:00"
        received = f"{day.isoformat()}T{rng.randint(12, 16):02d}:{rng.randint(0, 59):02d}:00"
        released = timestamp(day + timedelta(days=1), rng)
        records["lab_orders_summary"].append(
            _lab_order_summary(records["lab_orders"][-1], visit, released)
        )
        for group in groups:
            panel = _panel_rows()[group]
            if pending:
                status = "P"
            elif chart.showcase == "adult" and order_index == 1:
                status = "C"
            else:
                status = rng.choices(("F", "P", "C", "X"), (90, 4, 3, 3))[0]
            test_id = practice.next_id("lab_tests", rng)
            records["lab_tests"].append(
                {
                    "id": test_id,
                    "lab_order": order_id,
                    "code": panel["code"],
                    "name": panel["display"],
                    "description": panel["display"],
                    "status": status,
                    "collection_date": collected,
                    "specimen_source": panel["specimen"],
                    "specimen_condition": "",
                    "specimen_total_volume": None,
                    "internal_notes": "",
                    "report_notes": "",
                }
            )
            if status == "X":
                continue
            for result in _results_of(group):
                records["lab_results"].append(
                    _lab_result(
                        practice,
                        rng,
                        result,
                        order_id,
                        test_id,
                        document_id,
                        status,
                        received,
                        released,
                        group,
                    )
                )


#: The performing lab of the practice's one sub-lab (2201), as /api/lab_orders_summary names it.
LAB_NAME = "Riverbend Reference Laboratory"


def _lab_order_summary(order: Record, visit: Record, released: str) -> Record:
    """The seed's /api/lab_orders_summary shape of one order (no new random draws)."""
    resulted = order["status"] == "R"
    return {
        "id": order["id"],
        "patient": order["patient"],
        "doctor": order["doctor"],
        "appointment": int(visit["id"]) if str(visit["id"]).isdigit() else visit["id"],
        "lab": LAB_NAME,
        "origin": "electronic",
        "status": order["status"],
        "priority": order["priority"],
        "accession_number": order["accession_number"],
        "notes": order["notes"],
        "created_at": order["timestamp"],
        "updated_at": released if resulted else order["timestamp"],
    }


def _lab_result(
    practice: Practice,
    rng: random.Random,
    row: dict[str, Any],
    order_id: int,
    test_id: int,
    document_id: int,
    status: str,
    received: str,
    released: str,
    group: str,
) -> Record:
    def result(**value: Any) -> Record:
        return {
            "id": practice.next_id("lab_results", rng),
            "lab_order": order_id,
            "lab_test": test_id,
            "document": document_id,
            "status": status,
            "test_performed": released,
            "specimen_received": received,
            "results_released": released,
            "observation_code": row["code"],
            "observation_description": row["short"],
            "group_code": group,
            **value,
        }

    if row.get("text_value"):
        # A qualitative result: DrChrono's value is text, with no unit and no numeric range.
        return result(
            value=row["text_value"],
            value_is_numeric=False,
            unit="",
            normal_range="",
            abnormal_status="",
            is_abnormal=False,
            comments="",
        )
    low, high, decimals = float(row["low"]), float(row["high"]), int(row["decimals"])
    spread = (high - low) or high
    value = rng.uniform(low - spread * 0.15, high + spread * 0.25)
    value = max(value, 0.0)
    text = f"{value:.{decimals}f}"
    shown = float(text)
    flag = "H" if shown > high else "L" if shown < low else ("N" if rng.random() < 0.5 else "")
    return result(
        value=text,
        value_is_numeric=True,
        unit=row["unit"],
        normal_range=f"{row['low']:g} {row['high']:g}",
        abnormal_status=flag,
        is_abnormal=flag in ("H", "L"),
        comments="Corrected result" if status == "C" else "",
    )


@cache
def _vaccines_table() -> tuple[dict[str, Any], ...]:
    return load_table("cvx").rows


def _vaccines(practice: Practice, chart: Chart, vaccines: list[Record]) -> None:
    rng = chart.rng
    if not chart.visits:
        return
    plan: list[tuple[Record, str, str]] = []  # (visit, cvx, completion)
    if chart.showcase == "adult":
        plan = [
            (chart.visits[1], "150", "CP"),
            (chart.visits[3], "115", "CP"),
            (chart.visits[4], "309", "RE"),
            (chart.visits[5], "150", "NA"),
            (chart.visits[6], "150", "PA"),
        ]
    else:
        for visit in chart.visits:
            day = date.fromisoformat(visit["scheduled_time"][:10])
            months = chart.age_months_on(day)
            suitable = [
                row
                for row in _vaccines_table()
                if row["min_age_months"] <= months
                and (row["max_age_months"] is None or months <= row["max_age_months"])
            ]
            if months >= 65 * 12:
                suitable = [
                    row for row in suitable if row["code"] in ("197", "216", "187", "33", "312")
                ]
            elif months >= 18 * 12:
                suitable = [
                    row
                    for row in suitable
                    if row["code"] in ("150", "115", "113", "309", "312", "187")
                ]
            taken = rng.sample(
                suitable, min(len(suitable), 2 if chart.showcase == "child" or months < 24 else 1)
            )
            for row in taken:
                completion = rng.choices(("CP", "RE", "NA", "PA"), (92, 4, 3, 1))[0]
                plan.append((visit, row["code"], "CP" if chart.showcase else completion))
    for visit, cvx, completion in plan:
        row = _row("cvx", cvx)
        given = completion in ("CP", "PA")
        start = (
            visit["status_transitions"][-1]["datetime"]
            if visit["status_transitions"]
            else visit["scheduled_time"]
        )
        day = date.fromisoformat(start[:10])
        historical = not chart.showcase and rng.random() < 0.1
        vaccines.append(
            {
                "id": practice.next_id("patient_vaccine_records", rng),
                "patient": chart.patient_id,
                "name": row["display"],
                "cvx_code": cvx,
                "cpt_code": row["cpt"],
                "vaccine_inventory": 77_000 + int(cvx),
                "lot_number": f"{rng.choice('ABCDEFGH')}{rng.randint(1000, 9999)}" if given else "",
                "manufacturer": row["manufacturer"],
                "administered_at": chart.office["id"],
                "administered_by": practice.doctor_user[chart.doctor] if given else None,
                "ordering_doctor": chart.doctor,
                "entered_by": practice.staff_user_id,
                "administered_start": start,
                "amount": (row["amount"] if completion == "CP" else "0.25") if given else "",
                "units": row["units"] if given else "",
                "route": row["route"] if given else "",
                "site": (row["site"] if row["route"] != "PO" else "") if given else "",
                "completion_status": completion,
                "funding_eligibility": "V02"
                if chart.age_on(day) < 19 and rng.random() < 0.4
                else "V01",
                "record_source": rng.choice(("01", "02", "03")) if historical else "00",
                "observed_immunity": None,
                "next_dose_date": (day + timedelta(days=365)).isoformat()
                if cvx in ("150", "197") and given
                else None,
                "consent_form": None,
                "vis": None,
                "doses": [],
                "comments": "Patient declined"
                if completion == "RE"
                else "Out of stock"
                if completion == "NA"
                else "",
                "created_at": start,
                "updated_at": start,
            }
        )
