"""A patient's coded observations and plans: care plans, risk assessments (smoking,
pregnancy, occupation, SDOH, functional, disability, cognitive), physical exams and
interventions, in DrChrono's code / code_system / value_code shape.

It writes only codes present in the curated tables; it never decides FHIR categories (the
tables note which category each question supports, for the mappings to use).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import Any

from facade.sandbox.codes import load_table
from facade.upstream.drchrono.sandbox.context import REFERENCE_DATE, Chart, Practice
from facade.upstream.drchrono.sandbox.dataset import Record

OCCUPATIONS: tuple[tuple[str, str], ...] = (
    ("Cashier", "Grocery store"),
    ("Registered nurse", "Hospital"),
    ("Truck driver", "Freight trucking"),
    ("Elementary school teacher", "Elementary and secondary schools"),
    ("Software developer", "Computer systems design"),
    ("Retired machinist", "Machinery manufacturing"),
    ("Home health aide", "Home health care services"),
)


@cache
def _row(table: str, code: str) -> dict[str, Any]:
    return load_table(table).row(code)


def write_assessments(practice: Practice, chart: Chart, records: dict[str, list[Record]]) -> None:
    _care_plans(practice, chart, records["care_plans"])
    _risk_assessments(practice, chart, records["patient_risk_assessments"])
    _physical_exams(practice, chart, records["patient_physical_exams"])
    _interventions(practice, chart, records["patient_interventions"])


def _coded(
    practice: Practice,
    chart: Chart,
    endpoint: str,
    code: str,
    code_system: str,
    name: str,
    effective: str,
    value: tuple[str, str, str] = ("", "", ""),
) -> Record:
    return {
        "id": practice.next_id(endpoint, chart.rng),
        "patient": chart.patient_id,
        "doctor": chart.doctor,
        "code": code,
        "code_system": code_system,
        "name": name,
        "effective_time": effective,
        "value_code": value[0],
        "value_code_system": value[1],
        "value_code_name": value[2],
        "created_at": effective,
    }


CARE_PLAN_CODES: dict[int, tuple[str, str, str, str]] = {
    # plan_type -> (code, code_system, table, title)
    1: ("4548-4", "LOINC", "loinc_labs", "Hemoglobin A1c below 7%"),
    2: ("11816003", "SNOMEDCT", "snomed", "Diet education"),
    3: ("311401005", "SNOMEDCT", "snomed", "Treatment options reviewed with patient"),
    4: ("409063005", "SNOMEDCT", "snomed", "Home care instructions"),
    5: ("3457005", "SNOMEDCT", "snomed", "Referral to specialist"),
    6: ("733423003", "SNOMEDCT", "snomed", "Food insecurity"),
}


def _care_plans(practice: Practice, chart: Chart, care_plans: list[Record]) -> None:
    rng = chart.rng
    if not chart.visits:
        return
    plan_types = (
        [1, 2, 3, 4, 5, 6] if chart.showcase else rng.sample((1, 2, 4, 5), rng.randint(1, 3))
    )
    concern = next((row for row in chart.conditions if row["kind"] == "health-concern"), None)
    if concern and 6 not in plan_types:
        plan_types.append(6)
    for plan_type in plan_types:
        visit = rng.choice(chart.visits)
        day = date.fromisoformat(visit["scheduled_time"][:10])
        code, code_system, table, title = CARE_PLAN_CODES[plan_type]
        if plan_type == 6:
            row = concern or chart.conditions[0]
            code, title = row["snomed"], _row("snomed", row["snomed"])["display"]
        care_plans.append(
            {
                "id": practice.next_id("care_plans", rng),
                "patient": chart.patient_id,
                "appointment": int(visit["id"]),
                "title": title,
                "description": title if rng.random() < 0.8 else "",
                "instructions": rng.choice(
                    ("Discussed at visit; handout given.", "Patient verbalized understanding.", "")
                ),
                "code": code,
                "code_system": code_system,
                "plan_type": plan_type,
                "scheduled_date": (day + timedelta(days=rng.choice((30, 90, 180)))).isoformat(),
                "created_at": visit["updated_at"],
                "updated_at": visit["updated_at"],
            }
        )


@cache
def _assessment(code: str) -> dict[str, Any]:
    return load_table("loinc_assessments").row(code)


def _answer(code: str, index: int) -> tuple[str, str, str]:
    answer = _assessment(code)["answers"][index]
    return answer["code"], answer["system"], answer["display"]


def _risk_assessments(practice: Practice, chart: Chart, assessments: list[Record]) -> None:
    rng = chart.rng
    if not chart.visits:
        return
    adult = chart.age_on(REFERENCE_DATE) >= 18
    items: list[tuple[str, tuple[str, str, str]]] = []
    if adult and chart.smoking_status:
        smoking = next(
            i
            for i, a in enumerate(_assessment("72166-2")["answers"])
            if a["code"] == chart.smoking_status
        )
        items.append(("72166-2", _answer("72166-2", smoking)))
    food_risk = any(row["code"] == "Z59.41" for row in chart.conditions)
    if chart.showcase or rng.random() < 0.5:
        often = 0 if food_risk else 2
        items += [
            ("88121-9", ("", "", "")),
            ("88122-7", _answer("88122-7", often)),
            ("88123-5", _answer("88123-5", often)),
            ("88124-3", _answer("88124-3", 0 if food_risk else 1)),
        ]
    pregnant = any(row["code"] == "Z34.90" for row in chart.conditions)
    if (
        chart.sex == "female"
        and adult
        and chart.age_on(REFERENCE_DATE) < 50
        and (pregnant or rng.random() < 0.3)
    ):
        items.append(("82810-3", _answer("82810-3", 0 if pregnant else 1)))
        if chart.showcase or rng.random() < 0.5:
            items.append(("86645-9", _answer("86645-9", 0)))
    if chart.showcase in ("adult", "deceased") or (adult and rng.random() < 0.3):
        job, industry = (
            OCCUPATIONS[0]
            if chart.showcase == "adult"
            else OCCUPATIONS[5]
            if chart.showcase
            else rng.choice(OCCUPATIONS)
        )
        items += [("11341-5", ("", "", job)), ("86188-0", ("", "", industry))]
    if chart.showcase == "adult" or (adult and rng.random() < 0.2):
        items.append(("76690-7", _answer("76690-7", rng.randrange(3))))
    if chart.showcase == "adult" or (adult and rng.random() < 0.1):
        items.append(
            ("68517-2", _answer("68517-2", 0))
            if not chart.showcase
            else ("68517-2", ("", "", "Never"))
        )
    older = chart.age_on(REFERENCE_DATE) >= 60
    if chart.showcase in ("adult", "deceased") or (older and rng.random() < 0.4):
        items.append(("83232-9", _answer("83232-9", 0)))
    if chart.showcase in ("adult", "deceased") or (older and rng.random() < 0.3):
        hearing_loss = any(row["code"] == "H91.90" for row in chart.conditions)
        items.append(("69856-3", _answer("69856-3", 0 if hearing_loss else 1)))
    if chart.showcase in ("adult", "deceased") or (older and rng.random() < 0.3):
        impaired = any(row["code"] == "G31.84" for row in chart.conditions)
        text = (
            "Short-term memory loss; needs reminders for medications."
            if impaired
            else "Alert and oriented x3; independent in daily decisions."
        )
        items.append(("11332-4", ("", "", text)))
    if chart.showcase in ("adult", "deceased"):
        impaired = any(row["code"] == "G31.84" for row in chart.conditions)
        items.append(("72172-0", ("", "", "19" if impaired else "28")))
    #: Answers recorded together with an earlier item share its visit (a screening's
    #: questions, an occupation's industry).
    together = {"88122-7": "88121-9", "88123-5": "88121-9", "88124-3": "88121-9"}
    together["86188-0"] = "11341-5"
    visits: dict[str, Record] = {}
    for code, value in items:
        visit = chart.visits[-1] if chart.showcase else rng.choice(chart.visits)
        visit = visits.get(together.get(code, ""), visit)
        visits[code] = visit
        assessments.append(
            _coded(
                practice,
                chart,
                "patient_risk_assessments",
                code,
                "LOINC",
                _assessment(code)["display"],
                visit["updated_at"],
                value,
            )
        )


@cache
def _exam_rows() -> tuple[dict[str, Any], ...]:
    return load_table("physical_exams").rows


def _physical_exams(practice: Practice, chart: Chart, exams: list[Record]) -> None:
    rng = chart.rng
    visits = (
        chart.visits[-3:]
        if chart.showcase
        else rng.sample(chart.visits, min(len(chart.visits), rng.randint(1, 2)))
    )
    for position, visit in enumerate(visits):
        row = _exam_rows()[
            position % len(_exam_rows()) if chart.showcase else rng.randrange(len(_exam_rows()))
        ]
        answers = row["answers"]
        value = ("", "", "")
        if answers:
            answer = answers[0] if rng.random() < 0.85 else answers[-1]
            value = (answer["code"], answer["system"], answer["display"])
        exams.append(
            _coded(
                practice,
                chart,
                "patient_physical_exams",
                row["code"],
                row["code_system"],
                row["display"],
                visit["updated_at"],
                value,
            )
        )


INTERVENTIONS: tuple[tuple[str, str, str], ...] = (
    ("225323000", "SNOMEDCT", "snomed"),
    ("11816003", "SNOMEDCT", "snomed"),
    ("409063005", "SNOMEDCT", "snomed"),
    ("467771000124109", "SNOMEDCT", "snomed"),
    ("24165007", "SNOMEDCT", "snomed"),
    ("99406", "CPT", "cpt"),
    ("G0447", "HCPCS", "hcpcs"),
)


def _interventions(practice: Practice, chart: Chart, interventions: list[Record]) -> None:
    rng = chart.rng
    if not chart.visits:
        return
    adult = chart.age_on(REFERENCE_DATE) >= 18
    picks: list[int] = []
    if chart.showcase == "adult":
        picks = [3, 1, 6]
    elif chart.showcase == "child":
        picks = [1]
    elif chart.showcase == "deceased":
        picks = [0, 5, 2]
    elif adult:
        smoker = chart.smoking_status in (
            "449868002",
            "428041000124106",
            "428071000124103",
            "428061000124105",
            "77176002",
        )
        picks = ([0, 5] if smoker else []) + rng.sample((1, 2, 6), rng.randint(0, 2))
    elif rng.random() < 0.3:
        picks = [1]
    for index in picks:
        code, code_system, table = INTERVENTIONS[index]
        visit = rng.choice(chart.visits)
        interventions.append(
            _coded(
                practice,
                chart,
                "patient_interventions",
                code,
                code_system,
                _row(table, code)["display"],
                visit["updated_at"],
            )
        )
