"""A patient's visits: appointments with vitals, their clinical notes, billed procedures,
implanted devices and scanned documents.

Every id it writes points at a record that exists (doctor, office, exam room, appointment,
procedure). It never writes a code that is missing from the curated tables.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import cache
from typing import Any

from facade.sandbox.codes import load_table
from facade.upstream.drchrono.sandbox.context import (
    LAST_CHANGE_DATE,
    REFERENCE_DATE,
    Chart,
    Practice,
    timestamp,
)
from facade.upstream.drchrono.sandbox.dataset import Record

PAST_STATUSES = ("Complete",) * 17 + ("Cancelled", "Cancelled", "No Show", "Rescheduled")
SMOKING_BY_WEIGHT = (
    ("266919005", 55),
    ("8517006", 18),
    ("449868002", 9),
    ("428041000124106", 5),
    ("428071000124103", 2),
    ("428061000124105", 3),
    ("77176002", 2),
    ("266927001", 2),
    ("", 4),
)
#: Ages (years) at which the showcase child is seen: infant, toddler, 2-3 and older.
SHOWCASE_CHILD_AGES = (0.4, 1.1, 2.3, 2.8, 3.6, 4.1)

#: (procedure table, code, brand, company, GMDN preferred term, model)
DEVICES: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "hcpcs",
        "J7300",
        "CuLoop 380",
        "Northwind Women's Health",
        "Copper intrauterine contraceptive device",
        "CL-380",
    ),
    (
        "cpt",
        "11981",
        "Etonova Implant",
        "Northwind Women's Health",
        "Contraceptive implant",
        "ETN-68",
    ),
    (
        "cpt",
        "33208",
        "Cadence DR",
        "Lakeshore Cardiac Systems",
        "Dual-chamber implantable pacemaker",
        "CDR-2",
    ),
    (
        "cpt",
        "33249",
        "Sentinel ICD",
        "Lakeshore Cardiac Systems",
        "Dual-chamber implantable cardioverter defibrillator",
        "SIC-7",
    ),
    (
        "cpt",
        "27447",
        "Arcus Total Knee",
        "Prairie Orthopedics",
        "Uncoated knee femur prosthesis, metallic",
        "AK-4",
    ),
    (
        "cpt",
        "66984",
        "ClearView IOL",
        "Bluewater Optics",
        "Posterior-chamber intraocular lens, pseudophakic",
        "CV-21",
    ),
    ("cpt", "69436", "Aerotube", "Bluewater Otology", "Tympanostomy tube", "AT-1.14"),
    (
        "cpt",
        "20900",
        "OsteoStrut Cortical Allograft",
        "Prairie Tissue Services",
        "Bone matrix implant, human-derived",
        "OS-10",
    ),
)
#: DEVICES rows that are human tissue (HCT/Ps): labelled with an ISBT 128 UDI, not GS1.
TISSUE_DEVICES = frozenset({"20900"})
#: ICCBBA's facility identification numbers reserved for examples (never a real facility).
EXAMPLE_PROCESSOR_FIN = "A9999"
EXAMPLE_COLLECTION_FIN = "A9997"


@cache
def _vital_ucum() -> dict[str, str]:
    return {row["code"]: row["ucum"] for row in load_table("ucum_vital_units").rows}


def gs1_check_digit(digits: str) -> int:
    """GS1 mod-10 check digit for a GTIN body (weights 3,1,3,... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def _interpolate(points: tuple[tuple[float, float], ...], x: float) -> float:
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    last_x, last_y = points[-1]
    slope = (points[-1][1] - points[-2][1]) / (points[-1][0] - points[-2][0])
    return last_y + slope * (x - last_x)


CHILD_HEIGHT_CM = (
    (0.0, 50.0),
    (1.0, 75.0),
    (2.0, 87.0),
    (3.0, 95.0),
    (4.0, 102.0),
    (10.0, 138.0),
    (17.0, 170.0),
)
CHILD_WEIGHT_KG = (
    (0.0, 3.4),
    (1.0, 9.6),
    (2.0, 12.2),
    (3.0, 14.3),
    (4.0, 16.3),
    (10.0, 32.0),
    (17.0, 62.0),
)
HEAD_CM = ((0.0, 35.0), (1.0, 46.0), (2.0, 48.3), (3.0, 49.6))


def empty_vitals(metric: bool) -> dict[str, Any]:
    return {
        "height": None,
        "height_units": "cm" if metric else "inches",
        "weight": None,
        "weight_units": "kg" if metric else "lbs",
        "bmi": "",
        "temperature": None,
        "temperature_units": "c" if metric else "f",
        "blood_pressure_1": None,
        "blood_pressure_2": None,
        "pulse": None,
        "respiratory_rate": None,
        "oxygen_saturation": None,
        "pain": "",
        "head_circumference": None,
        "head_circumference_units": "cm" if metric else "inches",
        "smoking_status": "",
        "bmi_percentile": None,
        "weight_for_length_percentile": None,
        "head_occipital_frontal_circumference_percentile": None,
        "oxygen_concentration": None,
        "inhaled_oxygen_flow_rate": None,
    }


def measure_vitals(chart: Chart, day: date, metric: bool, everything: bool) -> dict[str, Any]:
    """Plausible vitals for the patient's age on `day`; children get growth percentiles."""
    rng = chart.rng
    age = chart.age_on(day)
    vitals = empty_vitals(metric)
    hypertensive = any(row["code"] == "I10" for row in chart.conditions)
    if age < 18:
        height_cm = _interpolate(CHILD_HEIGHT_CM, age) * rng.uniform(0.97, 1.03)
        weight_kg = _interpolate(CHILD_WEIGHT_KG, age) * rng.uniform(0.9, 1.12)
        metric = True if age < 3 else metric
        vitals.update(
            height_units="cm" if metric else "inches", weight_units="kg" if metric else "lbs"
        )
        vitals["pulse"] = rng.randint(80, 130) if age < 6 else rng.randint(70, 110)
        vitals["respiratory_rate"] = rng.randint(22, 34) if age < 3 else rng.randint(16, 24)
        if age >= 3:
            vitals["blood_pressure_1"] = rng.randint(90, 112)
            vitals["blood_pressure_2"] = rng.randint(52, 72)
        if age < 3:
            vitals["head_circumference"] = round(
                _interpolate(HEAD_CM, age) * rng.uniform(0.98, 1.02), 1
            )
            vitals["head_circumference_units"] = "cm"
            vitals["head_occipital_frontal_circumference_percentile"] = float(rng.randint(15, 90))
            vitals["weight_for_length_percentile"] = float(rng.randint(15, 90))
        if age >= 2:
            vitals["bmi_percentile"] = float(rng.randint(10, 95))
    else:
        tall = 69.0 if chart.sex == "male" else 64.0
        height_cm = (tall + rng.uniform(-4, 4)) * 2.54
        weight_kg = (height_cm / 100) ** 2 * rng.uniform(20, 36)
        vitals["pulse"] = rng.randint(56, 96)
        vitals["respiratory_rate"] = rng.randint(12, 20)
        systolic = rng.randint(128, 158) if hypertensive else rng.randint(102, 132)
        vitals["blood_pressure_1"] = systolic
        vitals["blood_pressure_2"] = rng.randint(62, min(systolic - 30, 98))
        vitals["smoking_status"] = chart.smoking_status
    bmi = weight_kg / (height_cm / 100) ** 2
    if metric:
        vitals["height"] = round(height_cm, 1)
        vitals["weight"] = round(weight_kg, 1)
        vitals["temperature"] = round(rng.uniform(36.4, 37.3), 1)
    else:
        vitals["height"] = round(height_cm / 2.54, 1)
        vitals["weight"] = round(weight_kg / 0.45359237, 1)
        vitals["temperature"] = round(rng.uniform(97.5, 99.1), 1)
    vitals["bmi"] = f"{bmi:.1f}" if age >= 2 else ""
    vitals["oxygen_saturation"] = float(rng.randint(95, 100))
    vitals["pain"] = str(rng.choice((0, 0, 0, 0, 1, 2, 3, 5, 7)))
    if everything:
        vitals["oxygen_concentration"] = 28.0
        vitals["inhaled_oxygen_flow_rate"] = 2.0
        vitals["oxygen_saturation"] = 94.0
    if chart.showcase == "deceased" and age >= 18:
        # The deceased showcase's blood pressures were charted one half at a time (US Core's
        # blood pressure component.dataAbsentReason): diastolic only after an even systolic.
        missing = "blood_pressure_1" if vitals["blood_pressure_1"] % 2 == 0 else "blood_pressure_2"
        vitals[missing] = None
    return vitals


def _visit_days(chart: Chart) -> list[date]:
    rng = chart.rng
    last = min(chart.last_day, REFERENCE_DATE - timedelta(days=1))
    if chart.showcase == "child":
        return [
            chart.birth_date + timedelta(days=round(age * 365.25)) for age in SHOWCASE_CHILD_AGES
        ]
    count = {"adult": 8, "deceased": 6}.get(chart.showcase) or rng.randint(2, 6)
    span = max((last - chart.first_day).days, count)
    return sorted({chart.first_day + timedelta(days=rng.randint(0, span)) for _ in range(count)})


def _visit_reason(chart: Chart, index: int, day: date) -> tuple[str, list[str]]:
    rng = chart.rng
    if index == 0:
        return "New patient visit", [row["code"] for row in chart.conditions[:2]]
    chronic = [row for row in chart.conditions if row["kind"] in ("chronic", "pregnancy")]
    acute = load_table_rows_by_kind("acute")
    roll = rng.random()
    if roll < 0.2 or not chart.conditions:
        return ("Well child check" if chart.age_on(day) < 18 else "Annual physical"), []
    if roll < 0.55:
        row = rng.choice(acute if chart.age_on(day) >= 1 else acute[:3])
        return row["display"].split(",")[0], [row["code"]]
    pick = rng.choice(chronic or chart.conditions)
    return f"Follow-up {pick['display'].split(',')[0].lower()}", [pick["code"]]


@cache
def load_table_rows_by_kind(kind: str) -> tuple[dict[str, Any], ...]:
    return load_table("icd10cm").where(kind=kind)


def write_visits(practice: Practice, chart: Chart, records: dict[str, list[Record]]) -> None:
    """Appointments (with vitals), clinical notes, procedures, devices and documents."""
    rng = chart.rng
    patient_id = chart.patient_id
    metric = rng.random() < 0.15
    smoking_codes, weights = zip(*SMOKING_BY_WEIGHT, strict=True)
    chart.smoking_status = (
        "449868002" if chart.showcase == "deceased" else rng.choices(smoking_codes, weights)[0]
    )
    if chart.showcase == "adult":
        chart.smoking_status = "8517006"
    days = _visit_days(chart)
    appointments = records["appointments"]
    for index, day in enumerate(days):
        status = "Complete" if index == 0 or chart.showcase else rng.choice(PAST_STATUSES)
        reason, icd10 = _visit_reason(chart, index, day)
        everything = chart.showcase == "adult" and index == len(days) - 1
        appointment = _appointment(practice, chart, day, status, reason, icd10, metric, everything)
        appointments.append(appointment)
        if status == "Complete":
            chart.visits.append(appointment)
            records["clinical_notes"].append(
                _clinical_note(practice, chart, appointment, locked=not everything)
            )
            _bill_visit(practice, chart, appointment, records["procedures"])
    extra: list[tuple[date, str]] = []
    if chart.showcase == "adult":
        extra = [
            (days[2] + timedelta(days=9), "Cancelled"),
            (days[4] + timedelta(days=5), "No Show"),
            (REFERENCE_DATE + timedelta(days=12), "Confirmed"),
            (REFERENCE_DATE + timedelta(days=40), ""),
        ]
    elif chart.patient["patient_status"] == "A" and rng.random() < 0.3:
        extra = [
            (REFERENCE_DATE + timedelta(days=rng.randint(2, 60)), rng.choice(("", "Confirmed")))
        ]
    for day, status in extra:
        appointments.append(
            _appointment(practice, chart, day, status, "Follow-up visit", [], metric, False)
        )
    if chart.patient["patient_status"] == "A" and not chart.showcase and rng.random() < 0.04:
        deleted = _appointment(
            practice,
            chart,
            days[-1] + timedelta(days=1),
            "Cancelled",
            "Duplicate booking",
            [],
            metric,
            False,
        )
        deleted["deleted_flag"] = True
        appointments.append(deleted)
    booked = [a for a in appointments[-(len(days) + len(extra)) :] if a["patient"] == patient_id]
    if booked:
        chart.patient["date_of_first_appointment"] = min(a["scheduled_time"][:10] for a in booked)
        chart.patient["date_of_last_appointment"] = max(a["scheduled_time"][:10] for a in booked)
    if chart.visits:
        chart.patient["updated_at"] = chart.visits[-1]["updated_at"]
    _implant_devices(practice, chart, records)
    _scan_documents(practice, chart, records["documents"])


def _appointment(
    practice: Practice,
    chart: Chart,
    day: date,
    status: str,
    reason: str,
    icd10: list[str],
    metric: bool,
    everything: bool,
) -> Record:
    rng = chart.rng
    appointment_id = str(practice.next_id("appointments", rng))
    hour = rng.randint(8, 16)
    minute = rng.choice((0, 15, 30, 45))
    scheduled = f"{day.isoformat()}T{hour:02d}:{minute:02d}:00"
    duration = rng.choice((15, 30, 30, 45, 60)) if reason != "New patient visit" else 60
    # A future visit was booked by the practice's last change day, a day before it at the
    # latest, so that a cancellation (the day after booking) is stamped by then too.
    booked_on = min(day - timedelta(days=rng.randint(1, 30)), LAST_CHANGE_DATE - timedelta(days=1))
    created_at = timestamp(booked_on, rng)
    transitions: list[dict[str, Any]] = []
    updated_at = created_at
    if status == "Complete":
        steps = ("", "Arrived", "In Room", "In Session", "Complete")
        minute_mark = max(minute - 8, 0)
        for from_status, to_status in zip(steps, steps[1:], strict=False):
            moment = (
                f"{day.isoformat()}T{hour:02d}:{min(minute_mark, 59):02d}:{rng.randint(0, 59):02d}"
            )
            transitions.append(
                {
                    "appointment": appointment_id,
                    "from_status": from_status,
                    "to_status": to_status,
                    "datetime": moment,
                }
            )
            minute_mark += rng.randint(3, 9)
        updated_at = timestamp(day, rng, first_hour=hour + 1, last_hour=min(hour + 2, 23))
    elif status in ("Cancelled", "No Show", "Rescheduled"):
        moment = timestamp(day if status == "No Show" else booked_on + timedelta(days=1), rng)
        transitions.append(
            {
                "appointment": appointment_id,
                "from_status": "",
                "to_status": status,
                "datetime": moment,
            }
        )
        updated_at = moment
    elif status == "Confirmed":
        transitions.append(
            {
                "appointment": appointment_id,
                "from_status": "",
                "to_status": "Confirmed",
                "datetime": created_at,
            }
        )
    vitals = (
        measure_vitals(chart, day, metric, everything)
        if status == "Complete"
        else empty_vitals(metric)
    )
    office = chart.office
    primary = chart.patient["primary_insurance"]
    secondary = chart.patient["secondary_insurance"]
    note_locked = status == "Complete" and not everything
    return {
        "id": appointment_id,
        "patient": chart.patient_id,
        "doctor": chart.doctor,
        "office": office["id"],
        "exam_room": rng.randint(1, len(office["exam_rooms"])),
        "scheduled_time": scheduled,
        "duration": duration,
        "status": status,
        "custom_status": "",
        "reason": reason,
        "notes": "",
        "profile": None,
        "color": "",
        "appt_is_break": False,
        "is_walk_in": status == "Complete" and rng.random() < 0.05,
        "allow_overlapping": False,
        "recurring_appointment": False,
        "base_recurring_appointment": None,
        "is_virtual_base": False,
        "cloned_from": None,
        "deleted_flag": False,
        "icd9_codes": [],
        "icd10_codes": icd10 if status == "Complete" else [],
        "billing_status": "Bill Insurance"
        if status == "Complete" and primary["insurance_company"]
        else "",
        "billing_provider": chart.doctor,
        "supervising_provider": None,
        "billing_notes": [],
        "primary_insurer_name": primary["insurance_company"],
        "primary_insurer_payer_id": primary["insurance_payer_id"],
        "primary_insurance_id_number": primary["insurance_id_number"],
        "secondary_insurer_name": secondary["insurance_company"],
        "secondary_insurer_payer_id": secondary["insurance_payer_id"],
        "secondary_insurance_id_number": secondary["insurance_id_number"],
        "first_billed_date": None,
        "last_billed_date": None,
        "created_by": "front_desk_1",
        "created_at": created_at,
        "updated_at": updated_at,
        "custom_fields": [],
        # verbose-only
        "extended_updated_at": updated_at,
        "vitals": vitals,
        "custom_vitals": [],
        "status_transitions": transitions,
        "clinical_note": {
            "locked": note_locked,
            "pdf": f"/files/clinical_notes/{appointment_id}.pdf" if status == "Complete" else "",
            "updated_at": updated_at if status == "Complete" else None,
        },
        "reminders": [],
    }


def _clinical_note(practice: Practice, chart: Chart, appointment: Record, locked: bool) -> Record:
    rng = chart.rng
    codes = appointment["icd10_codes"]
    icd = load_table("icd10cm")
    assessment = (
        "; ".join(icd.row(code)["display"] for code in codes) or "Healthy, no acute findings"
    )
    texts = {
        "Chief Complaint": appointment["reason"],
        "History of Present Illness": f"Patient presents for {appointment['reason'].lower()}.",
        "Review of Systems": rng.choice(
            ("Negative except as noted in HPI.", "No fever, chills or weight loss.")
        ),
        "Physical Exam": rng.choice(
            (
                "Well appearing, no distress. Heart regular rate and rhythm. Lungs clear.",
                "Alert and oriented. No focal deficits.",
            )
        ),
        "Assessment": assessment,
        "Plan": rng.choice(
            (
                "Continue current medications.",
                "Labs ordered; will call with results.",
                "Lifestyle counseling given.",
            )
        ),
        "Follow-up": rng.choice(
            ("Return in 3 months.", "Return in 6 months.", "Return as needed.", "")
        ),
    }
    sections = []
    for template_id, (name, fields) in practice.note_templates.items():
        values = [
            {
                "clinical_note_field": field_id,
                "id": practice.next_id("clinical_note_values", rng),
                "value": texts[field_name],
            }
            for field_id, field_name in fields
        ]
        sections.append({"clinical_note_template": template_id, "name": name, "values": values})
    return {
        "id": int(appointment["id"]),
        "appointment": int(appointment["id"]),
        "patient": chart.patient_id,
        "archived": bool(appointment["deleted_flag"]),
        "clinical_note_sections": sections,
        "signee": {
            "locked_by": practice.doctor_user[chart.doctor] if locked else None,
            "supervisor_locked_by": None,
        },
    }


def _procedure(
    practice: Practice,
    chart: Chart,
    appointment: Record,
    procedure_type: str,
    code: str,
    description: str,
    rng: random.Random | None = None,
) -> Record:
    rng = rng or chart.rng
    return {
        "id": practice.next_id("procedures", rng),
        "appointment": int(appointment["id"]),
        "patient": chart.patient_id,
        "doctor": appointment["doctor"],
        "code": code,
        "description": description,
        "procedure_type": procedure_type,
        "date": appointment["scheduled_time"][:10],
        "status": "complete",
        "created_at": appointment["updated_at"],
        "updated_at": appointment["updated_at"],
    }


@cache
def _billing_rows(table: str, use: str) -> tuple[dict[str, Any], ...]:
    return load_table(table).where(use=use)


PREVENTIVE_BY_AGE = (
    (1, "99391"),
    (5, "99392"),
    (12, "99393"),
    (40, "99395"),
    (65, "99396"),
    (200, "99397"),
)
SNOMED_PROCEDURES = ("73761001", "225323000", "11816003", "409063005")


def _bill_visit(
    practice: Practice, chart: Chart, appointment: Record, procedures: list[Record]
) -> None:
    rng = chart.rng
    day = date.fromisoformat(appointment["scheduled_time"][:10])
    cpt = load_table("cpt")
    if appointment["reason"] in ("Annual physical", "Well child check"):
        age = chart.age_on(day)
        code = next(code for limit, code in PREVENTIVE_BY_AGE if age < limit)
    elif appointment["reason"] == "New patient visit":
        code = rng.choice(("99203", "99204"))
    else:
        code = rng.choice(("99212", "99213", "99213", "99214", "99215"))
    procedures.append(_procedure(practice, chart, appointment, "C", code, cpt.row(code)["display"]))
    roll = rng.random()
    everything = chart.showcase == "adult" and len(chart.visits) <= 3
    if roll < 0.15 or everything:
        row = rng.choice(_billing_rows("cpt", "procedure"))
        procedures.append(
            _procedure(practice, chart, appointment, "C", row["code"], row["display"])
        )
    if (0.15 <= roll < 0.25 and chart.age_on(day) >= 18) or everything:
        row = rng.choice(_billing_rows("hcpcs", "procedure"))
        procedures.append(
            _procedure(practice, chart, appointment, "H", row["code"], row["display"])
        )
    if (0.25 <= roll < 0.3 and chart.age_on(day) >= 18) or everything:
        code = rng.choice(SNOMED_PROCEDURES)
        procedures.append(
            _procedure(
                practice, chart, appointment, "S", code, load_table("snomed").row(code)["display"]
            )
        )


def _device_choices(chart: Chart) -> list[int]:
    """Indexes into DEVICES that suit this patient."""
    age = chart.age_on(REFERENCE_DATE)
    if chart.showcase == "adult":
        return [0, 7]
    if chart.showcase == "child":
        return [6]
    if chart.showcase == "deceased":
        return [2, 5]
    rng = chart.rng
    if age < 12:
        return [6] if rng.random() < 0.05 else []
    if chart.sex == "female" and age < 45:
        return [rng.choice((0, 1))] if rng.random() < 0.15 else []
    if age > 60:
        count = rng.choices((0, 1, 2), (70, 22, 8))[0]
        return rng.sample((2, 3, 4, 5), count)
    return []


def _implant_devices(practice: Practice, chart: Chart, records: dict[str, list[Record]]) -> None:
    if not chart.visits:
        return
    for device_index in _device_choices(chart):
        table, code, brand, company, gmdn, model = DEVICES[device_index]
        # Tissue draws from its own stream, so adding it left the rest of the chart as it was.
        tissue = code in TISSUE_DEVICES
        rng = random.Random(f"{chart.patient_id}:tissue") if tissue else chart.rng
        visit = rng.choice(chart.visits[1:] or chart.visits)
        procedure_type = "C" if table == "cpt" else "H"
        description = load_table(table).row(code)["display"]
        procedure = _procedure(practice, chart, visit, procedure_type, code, description, rng)
        records["procedures"].append(procedure)
        implanted = date.fromisoformat(procedure["date"])
        made = implanted - timedelta(days=rng.randint(60, 400))
        expires = made + timedelta(days=rng.choice((730, 1095, 1825)))
        if tissue:
            lot, serial, udi = _isbt128_label(rng, made, expires)
        else:
            body = f"0{rng.randint(10**11, 10**12 - 1)}"
            gtin = body + str(gs1_check_digit(body))
            lot = f"{rng.choice('ABCDEFGHJKLM')}{rng.randint(1000, 99999)}"
            serial = f"{rng.randint(10**7, 10**8 - 1)}{rng.choice('ABCDEFG')}"
            udi = f"(01){gtin}(11){made:%y%m%d}(17){expires:%y%m%d}(10){lot}(21){serial}"
        records["implantable_devices"].append(
            {
                "id": practice.next_id("implantable_devices", rng),
                "patient": chart.patient_id,
                "procedure": procedure["id"],
                "udi": udi,
                "brand_name": brand,
                "company_name": company,
                "version_or_model": model,
                "gmdn_pt_name": gmdn,
                "serial_number": serial,
                "lot_number": lot,
                "manufacturing_date": made.isoformat(),
                "expiration_date": expires.isoformat(),
                "status": "active" if chart.patient["patient_status"] != "D" else "inactive",
                "archived": False,
                "created_at": procedure["created_at"],
                "updated_at": procedure["updated_at"],
            }
        )


def _isbt128_label(rng: random.Random, made: date, expires: date) -> tuple[str, str, str]:
    """(lot, serial, UDI) of a tissue graft's ISBT 128 label: the processor's product code
    (=/), serial (=,), the donation identification number (=), expiry (=>) and production
    (=}) dates as cyyjjj, and the lot (&,1)."""
    product = f"{EXAMPLE_PROCESSOR_FIN}OST{rng.randint(100, 999)}T{rng.randint(1000, 9999)}"
    donation = f"{EXAMPLE_COLLECTION_FIN}{made:%y}{rng.randint(0, 999_999):06d}00"
    serial = f"{rng.randint(1, 999_999):06d}"
    lot = f"{rng.randint(1, 10**8):012d}OST{rng.randint(100, 999)}"
    udi = f"=/{product}=,{serial}={donation}=>{_julian(expires)}=}}{_julian(made)}&,1{lot}"
    return lot, serial, udi


def _julian(day: date) -> str:
    """ISBT 128's cyyjjj: century after 2000, year, day of the year."""
    return f"{(day.year - 2000) // 100}{day:%y}{day.timetuple().tm_yday:03d}"


def _scan_documents(practice: Practice, chart: Chart, documents: list[Record]) -> None:
    rng = chart.rng
    types = load_table("loinc_document_types").rows
    if chart.showcase == "adult":
        chosen = list(types)
    elif chart.showcase:
        chosen = [types[4], types[1]]
    else:
        chosen = rng.sample(types, rng.randint(0, 3))
    for position, row in enumerate(chosen):
        day = chart.first_day + timedelta(
            days=rng.randint(0, max((chart.last_day - chart.first_day).days - 1, 1))
        )
        document_id = practice.next_id("documents", rng)
        detail = rng.choice(("", " - outside records", " - scanned"))
        documents.append(
            {
                "id": document_id,
                "date": day.isoformat(),
                "description": f"{row['display']}{detail}",
                "doctor": chart.doctor,
                "patient": chart.patient_id,
                "document": f"/files/documents/{document_id}.pdf",
                "metatags": [row["display"]]
                if position or not chart.showcase
                else [row["display"], "Outside records"],
                "archived": not chart.showcase and rng.random() < 0.05,
                "updated_at": timestamp(day, rng),
            }
        )
