"""A patient's visits: appointments (past, cancelled, today, future) and the encounters the
kept ones became, filled with the chart rows recorded at each (see chart.py).

The showcase patients get a fixed, rich story; everyone else a random one. Dates hang off
REFERENCE_DATE (today in a sandbox whose clock is set to it). It never reads the clock.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from facade.sandbox.codes import load_table
from facade.upstream.carecloud.sandbox.chart import ChartWriter
from facade.upstream.carecloud.sandbox.context import (
    REFERENCE_DATE,
    Practice,
    Record,
    age_in_months,
    iso,
    local_time,
    new_guid,
)
from facade.upstream.carecloud.sandbox.people import Person

DURATIONS = (15, 20, 30, 40)
CANCEL_REASONS = ("Patient request", "Provider unavailable", "Weather", "Scheduling conflict")


@cache
def _icd(code: str) -> dict[str, Any]:
    return load_table("icd10cm").row(code)


@cache
def _icd_kind(kind: str) -> tuple[dict[str, Any], ...]:
    return tuple(r for r in load_table("icd10cm").where(kind=kind) if not r["problem_type"])


def _cpt(code: str) -> dict[str, Any]:
    return load_table("cpt").row(code)


def _preventive_code(months: int) -> str | None:
    years = months // 12
    if months < 12:
        return "99391"
    if years < 5:
        return "99392"
    if years < 12:
        return "99393"
    if years < 18:
        return None
    if years < 40:
        return "99395"
    return "99396" if years < 65 else "99397"


class VisitWriter:
    """Creates one person's appointments and encounters in `appointments` / `encounters`."""

    def __init__(
        self,
        practice: Practice,
        person: Person,
        appointments: list[Record],
        encounters: list[Record],
    ) -> None:
        self.practice = practice
        self.person = person
        self.rng: random.Random = person.rng
        self.appointments = appointments
        self.encounters = encounters
        self.mine: list[Record] = []

    # -- skeletons ------------------------------------------------------------------------

    def _slot(self, day: date) -> tuple[datetime, datetime]:
        start = local_time(day, self.rng.randint(8, 16), self.rng.choice((0, 15, 30, 45)))
        return start, start + timedelta(minutes=self.rng.choice(DURATIONS))

    def appointment(
        self,
        day: date,
        status: str,
        reason: str,
        *,
        created_days_before: int | None = None,
    ) -> Record:
        start, end = self._slot(day)
        lead = created_days_before if created_days_before is not None else self.rng.randint(3, 40)
        created = local_time(day - timedelta(days=lead), self.rng.randint(8, 16), 5)
        updated = end + timedelta(minutes=10) if day <= REFERENCE_DATE else created
        record = {
            "id": new_guid(self.rng),
            "patient_id": self.person.record["id"],
            "provider_id": self.person.provider["id"],
            "location_id": self.person.location["id"],
            "visit_reason_name": reason,
            "start_time": iso(start),
            "end_time": iso(end),
            "status": status,
            "cancellation_reason": self.rng.choice(CANCEL_REASONS)
            if status == "cancelled"
            else None,
            "comments": "",
            "created_at": iso(created),
            "updated_at": iso(max(created, updated)),
        }
        self.appointments.append(record)
        return record

    def encounter(
        self,
        day: date,
        reason: str,
        *,
        preventive: bool = False,
        first: bool = False,
        open_: bool = False,
        telehealth: bool = False,
    ) -> Record:
        status = "checked_in" if open_ else "completed"
        appointment = self.appointment(day, status, reason)
        months = age_in_months(self.person.born, day)
        code = _preventive_code(months) if preventive else None
        if code is None:
            code = (
                self.rng.choice(("99203", "99204"))
                if first
                else self.rng.choice(("99212", "99213", "99213", "99214", "99215"))
            )
        end = datetime.fromisoformat(appointment["end_time"])
        signed_at = None if open_ else iso(end + timedelta(minutes=self.rng.randint(15, 240)))
        encounter_id = new_guid(self.rng)
        status = "open" if open_ else ("amended" if self.rng.random() < 0.05 else "signed")
        encounter = encounter_record(
            encounter_id,
            appointment,
            status=status,
            code=code,
            telehealth=telehealth,
            signed_at=signed_at,
        )
        self.encounters.append(encounter)
        self.mine.append(encounter)
        return encounter

    def finish_notes(self) -> None:
        """Signed encounters get their note, written from what the visit recorded."""
        for encounter in self.mine:
            if encounter["status"] == "open":
                continue
            encounter["note"] = {
                "id": self.practice.rows.next(self.rng),
                "signed_by": encounter["provider_id"],
                "signed_at": encounter["signed_at"],
                "text": note_text(encounter),
            }

    def extra_appointments(self, *, future: bool) -> None:
        """Kept-away visits (cancelled, no-show) and, for the living, upcoming ones."""
        rng = self.rng
        if rng.random() < 0.35:
            day = self.person.last_day - timedelta(days=rng.randint(20, 700))
            if day > self.person.born:
                self.appointment(day, rng.choice(("cancelled", "no_show")), "Follow-up")
        if future and rng.random() < 0.55:
            day = REFERENCE_DATE + timedelta(days=rng.randint(0, 45))
            self.appointment(day, rng.choice(("scheduled", "confirmed")), "Follow-up")


def encounter_record(
    encounter_id: str,
    appointment: Record,
    *,
    status: str,
    code: str,
    telehealth: bool = False,
    signed_at: str | None = None,
) -> Record:
    """The encounter a kept appointment became, its chart still empty."""
    reason = appointment["visit_reason_name"]
    return {
        "id": encounter_id,
        "appointment_id": appointment["id"],
        "patient_id": appointment["patient_id"],
        "provider_id": appointment["provider_id"],
        "location_id": appointment["location_id"],
        "date_of_service": datetime.fromisoformat(appointment["start_time"]).date().isoformat(),
        "start_time": appointment["start_time"],
        "end_time": appointment["end_time"],
        "status": status,
        "type": "telehealth" if telehealth else "office_visit",
        "visit_code": {"code": code, "code_system": "CPT", "description": _cpt(code)["display"]},
        "chief_complaint": reason,
        "reason_for_visit": reason,
        "diagnoses": [],
        "procedures": [],
        "vitals": [],
        "problems": [],
        "medications": [],
        "allergies": [],
        "immunizations": [],
        "lab_results": [],
        "smoking_status": None,
        "note": None,
        "created_at": appointment["start_time"],
        "updated_at": signed_at or appointment["start_time"],
        "signed_at": signed_at,
    }


def note_text(encounter: Record) -> str:
    problems = "; ".join(d["description"] for d in encounter["diagnoses"]) or "No acute issues"
    vitals = ", ".join(f"{v['name']} {v['value']} {v['unit']}" for v in encounter["vitals"][:4])
    meds = "; ".join(m["name"] for m in encounter["medications"]) or "No changes"
    return (
        f"Subjective: {encounter['chief_complaint']}.\n"
        f"Objective: {vitals}.\n"
        f"Assessment: {problems}.\n"
        f"Plan: Medications: {meds}. Return as scheduled."
    )


# -- stories ------------------------------------------------------------------------------


def write_visits(
    practice: Practice, person: Person, appointments: list[Record], encounters: list[Record]
) -> None:
    visits = VisitWriter(practice, person, appointments, encounters)
    if person.kind == "adult":
        _adult_story(visits)
    elif person.kind == "child":
        _child_story(visits)
    elif person.kind == "deceased":
        _deceased_story(visits)
    else:
        _random_story(visits)
    visits.finish_notes()


def _adult_story(visits: VisitWriter) -> None:
    """Hypertension, type 2 diabetes, hyperlipidemia; a statin switch; a refused vaccine."""
    person = visits.person
    chart = ChartWriter(visits.practice, person, visits.mine)
    hypertension, diabetes, lipids = _icd("I10"), _icd("E11.9"), _icd("E78.5")
    obesity, uri = _icd("E66.9"), _icd("J06.9")
    days = [REFERENCE_DATE - timedelta(days=d) for d in (1040, 760, 545, 365, 180, 90, 0)]
    first = visits.encounter(days[0], "New patient visit", first=True)
    for condition, years in ((hypertension, 6), (diabetes, 3), (lipids, 4), (obesity, 8)):
        chart.problem(first, condition, onset=days[0] - timedelta(days=int(365 * years)))
    chart.diagnose(first, [hypertension, diabetes, lipids, obesity])
    penicillin = load_table("rxnorm").row("7980")
    chart.allergy(first, penicillin, "RXNORM", "moderate")
    chart.allergy(first, load_table("snomed").row("762952008"), "SNOMED", "severe")
    metformin = next(d for d in chart.drugs_for("E11.9") if d["code"] == "861007")
    losartan = chart.drugs_for("I10")[-1]
    simvastatin = next(d for d in chart.drugs_for("E78.5") if d["code"] == "312961")
    atorvastatin = next(d for d in chart.drugs_for("E78.5") if d["code"] == "617310")
    chart.medication(first, metformin)
    chart.medication(first, losartan)
    chart.medication(first, simvastatin, ended=days[2], status="discontinued")
    chart.smoking_status(first, "8517006")
    chart.vitals(first, hypertensive=True)
    chart.labs(first, "A1C", high=True)
    chart.labs(first, "LIPID", high=True)
    chart.immunization(first, chart.cvx("115"))
    chart.procedure(first, "93000", "CPT")
    for index, day in enumerate(days[1:], start=1):
        reason = "Annual physical" if index == 3 else "Diabetes follow-up"
        encounter = visits.encounter(
            day,
            reason,
            preventive=index == 3,
            open_=index == len(days) - 1,
            telehealth=index == 4,
        )
        chart.diagnose(encounter, [hypertension, diabetes, lipids])
        if index != 4:
            chart.vitals(encounter, hypertensive=index < 3)
        if index == 1:
            chart.problem(
                encounter, uri, onset=day - timedelta(days=3), resolved=day + timedelta(days=9)
            )
            chart.diagnose(encounter, [uri])
        if index == 2:
            chart.medication(encounter, atorvastatin)
            chart.labs(encounter, "CMP")
        if index in (3, 6):
            chart.labs(encounter, "A1C", high=index == 3)
            chart.labs(encounter, "LIPID")
            chart.labs(encounter, "UACR")
            chart.labs(encounter, "CBC")
        if index == 3:
            chart.labs(encounter, "UA")
            chart.smoking_status(encounter, "8517006")
        if index == 3:
            chart.immunization(encounter, chart.cvx("187"), refused=True)
            chart.procedure(encounter, "311401005", "SNOMED")
        if day.month in (9, 10, 11, 12, 1, 2, 3):
            chart.immunization(encounter, chart.cvx("150"))
    visits.appointment(REFERENCE_DATE + timedelta(days=30), "confirmed", "Diabetes follow-up")
    visits.appointment(days[3] - timedelta(days=20), "cancelled", "Annual physical")


def _child_story(visits: VisitWriter) -> None:
    """Well-child visits from two months on, with the vaccine schedule and one otitis."""
    person = visits.person
    chart = ChartWriter(visits.practice, person, visits.mine)
    given: set[str] = set()
    otitis = _icd("H66.90")
    for position, months in enumerate((2, 4, 6, 12, 15, 18, 24, 29)):
        day = person.born + timedelta(days=round(months * 30.44))
        encounter = visits.encounter(day, "Well child check", preventive=True, first=position == 0)
        chart.vitals(encounter, hypertensive=False)
        if position == 0:
            chart.no_known_allergies(encounter)
        for cvx in chart.vaccines_due(months, given)[:3]:
            chart.immunization(encounter, cvx)
            given.add(cvx["code"])
        if months >= 6 and day.month in (9, 10, 11, 12, 1, 2, 3):
            chart.immunization(encounter, chart.cvx("150"))
        if months == 15:
            sick = visits.encounter(day + timedelta(days=40), "Ear pain and fever")
            chart.vitals(sick, hypertensive=False)
            chart.problem(
                sick, otitis, onset=day + timedelta(days=38), resolved=day + timedelta(days=50)
            )
            chart.diagnose(sick, [otitis])
    visits.appointment(REFERENCE_DATE + timedelta(days=3), "scheduled", "Well child check")


def _deceased_story(visits: VisitWriter) -> None:
    """Heart failure and atrial fibrillation over his last years; no visits after death.
    His kidney disease shows as protein in the urine, two follow-ups have only one half of
    the blood pressure charted (systolic, then diastolic), and by his last visit he is on
    home oxygen."""
    person = visits.person
    chart = ChartWriter(visits.practice, person, visits.mine)
    heart, afib, ckd = _icd("I50.9"), _icd("I48.91"), _icd("N18.30")
    days = [person.last_day - timedelta(days=d) for d in (900, 600, 300, 60)]
    first = visits.encounter(days[0], "Shortness of breath", first=True)
    for condition in (heart, afib, ckd):
        chart.problem(first, condition, onset=days[0] - timedelta(days=400))
    chart.diagnose(first, [heart, afib, ckd])
    chart.allergy(first, load_table("rxnorm").row("2670"), "RXNORM", "mild")
    chart.smoking_status(first, "8517006")
    chart.vitals(first, hypertensive=True)
    chart.labs(first, "CMP")
    chart.labs(first, "UA", high=True)
    for position, day in enumerate(days[1:], start=1):
        encounter = visits.encounter(day, "Heart failure follow-up")
        chart.diagnose(encounter, [heart, afib, ckd])
        chart.vitals(
            encounter,
            hypertensive=True,
            pressure_half={1: "systolic", 2: "diastolic"}.get(position, ""),
            oxygen_lpm=2 if position == len(days) - 1 else 0,
        )
        if day.month in (9, 10, 11, 12, 1, 2, 3):
            chart.immunization(encounter, chart.cvx("197"))
    chart.labs(visits.mine[-1], "CBC")


def _random_story(visits: VisitWriter) -> None:
    person, rng = visits.person, visits.rng
    chart = ChartWriter(visits.practice, person, visits.mine)
    span = min(3 * 365, (person.last_day - person.born).days - 30)
    if span < 30:
        return
    count = rng.randint(1, 5)
    days = sorted({person.last_day - timedelta(days=rng.randint(1, span)) for _ in range(count)})
    chronic: list[dict[str, Any]] = []
    if not person.is_child:
        chronic = rng.sample(_icd_kind("chronic"), rng.choice((0, 1, 1, 2, 3)))
    open_last = person.record["status"] == "A" and rng.random() < 0.12
    if open_last:
        days = sorted({*days, REFERENCE_DATE - timedelta(days=rng.randint(0, 6))})
    smoker = chart.choose_smoking_code()
    given: set[str] = set()
    for index, day in enumerate(days):
        months = age_in_months(person.born, day)
        sick = rng.random() < 0.4
        acute = rng.choice(_icd_kind("acute")) if sick else None
        reason = "Sick visit" if sick else ("Well visit" if person.is_child else "Follow-up")
        encounter = visits.encounter(
            day,
            reason,
            preventive=not sick and rng.random() < 0.5,
            first=index == 0,
            open_=open_last and index == len(days) - 1,
            telehealth=not person.is_child and sick and rng.random() < 0.2,
        )
        if encounter["type"] != "telehealth":
            chart.vitals(encounter, hypertensive=any(c["code"] == "I10" for c in chronic))
        if index == 0:
            for condition in chronic:
                chart.problem(
                    encounter, condition, onset=day - timedelta(days=rng.randint(60, 2000))
                )
                for drug in chart.drugs_for(condition["code"])[:1]:
                    chart.medication(encounter, drug)
            if rng.random() < 0.35:
                allergen, system = rng.choice(chart.allergen_choices())
                chart.allergy(
                    encounter, allergen, system, rng.choice(("mild", "moderate", "severe"))
                )
            elif rng.random() < 0.4:
                chart.no_known_allergies(encounter)
            if months >= 13 * 12:
                chart.smoking_status(encounter, smoker)
        chart.diagnose(encounter, chronic)
        if acute is not None:
            chart.problem(
                encounter, acute, onset=day - timedelta(days=2), resolved=day + timedelta(days=10)
            )
            chart.diagnose(encounter, [acute])
            if acute["code"] == "J02.9":
                chart.procedure(encounter, "87880", "CPT")
        if chronic and rng.random() < 0.5:
            groups = (
                ["CMP", "LIPID"]
                if not any(c["code"] == "E11.9" for c in chronic)
                else ["A1C", "CMP"]
            )
            if rng.random() < 0.25:
                groups.append("UA")
            for group in groups:
                chart.labs(encounter, group)
        if person.is_child:
            for cvx in chart.vaccines_due(months, given)[:2]:
                chart.immunization(encounter, cvx)
                given.add(cvx["code"])
        if months >= 6 and day.month in (10, 11) and rng.random() < 0.6:
            chart.immunization(encounter, chart.cvx("197" if months >= 65 * 12 else "150"))
        if smoker in ("449868002", "428061000124105") and rng.random() < 0.5 and months >= 18 * 12:
            chart.procedure(encounter, "99406", "CPT")
    visits.extra_appointments(future=person.record["deceased_at"] is None)
