"""One patient's clinical rows, each written into the encounter that recorded it: problems,
NDC-coded medications, allergies, vitals (LOINC/UCUM), immunizations (CVX), lab results,
smoking status and procedures.

The charts hold, in small shares, the cases US Core certification checks and a tidy chart
never shows: a blood pressure with only one half charted, pulse oximetry on supplemental
oxygen (flow rate and concentration rows), an infant's head circumference percentile and
qualitative (text) lab results.

Codes come only from the curated tables; a drug without a verified NDC is never prescribed.
It never reads the clock: every date derives from the visit it belongs to.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from facade.sandbox.codes import load_table
from facade.upstream.carecloud.sandbox.context import (
    Practice,
    Record,
    age_in_months,
    iso,
)
from facade.upstream.carecloud.sandbox.people import Person

#: The SNOMED-coded twin of a problem is used for every n-th problem (CareCloud takes both).
SNOMED_PROBLEM_EVERY = 4
REACTION_SEVERITY = ("mild", "moderate", "severe")
#: Share of adult vital-sign sets where only one blood pressure half was charted (the reading
#: was interrupted, or only the systolic was palpated).
ONE_PRESSURE_HALF_SHARE = 0.03
#: Share of adult vital-sign sets taken on supplemental oxygen by nasal cannula.
ON_OXYGEN_SHARE = 0.03
#: Share of qualitative lab results that come back abnormal (where the test has such a value).
ABNORMAL_TEXT_SHARE = 0.1
#: The specimen whose collection is no venipuncture.
URINE = "Urine"


@cache
def _ndc_drugs() -> dict[str, list[dict[str, Any]]]:
    """RxNorm SCD rows that have a verified NDC, by the ICD-10-CM code they treat."""
    ndc_by_rxcui: dict[str, dict[str, Any]] = {}
    for row in load_table("ndc_rxnorm").rows:
        ndc_by_rxcui.setdefault(row["rxnorm"], row)
    drugs: dict[str, list[dict[str, Any]]] = {}
    for row in load_table("rxnorm").where(tty="SCD"):
        if row["code"] in ndc_by_rxcui:
            drugs.setdefault(row["indication"], []).append(
                {**row, "ndc": ndc_by_rxcui[row["code"]]["code"]}
            )
    return drugs


@cache
def _vital(key: str) -> dict[str, Any]:
    return load_table("loinc_vitals").where(vitals_key=key)[0]


@cache
def _labs(group: str) -> tuple[dict[str, Any], ...]:
    return load_table("loinc_labs").where(group=group)


@cache
def _panel(group: str) -> dict[str, Any]:
    return load_table("loinc_lab_panels").where(group=group)[0]


def _snomed(kind: str) -> tuple[dict[str, Any], ...]:
    return load_table("snomed").where(kind=kind)


def _number(text: str) -> int | float:
    value = float(text.split()[0])
    return int(value) if value.is_integer() else value


class ChartWriter:
    """Writes one person's rows into their encounters (`encounters` are in date order)."""

    def __init__(self, practice: Practice, person: Person, encounters: list[Record]) -> None:
        self.practice = practice
        self.person = person
        self.rng: random.Random = person.rng
        self.encounters = encounters

    def _id(self) -> int:
        return self.practice.rows.next(self.rng)

    def _at(self, encounter: Record, minutes: int) -> str:
        start = datetime.fromisoformat(encounter["start_time"])
        return iso(start + timedelta(minutes=minutes))

    # -- problems and diagnoses ------------------------------------------------------------

    def problem(
        self,
        encounter: Record,
        condition: dict[str, Any],
        *,
        onset: date,
        resolved: date | None = None,
    ) -> Record:
        use_snomed = (len(encounter["problems"]) + 1) % SNOMED_PROBLEM_EVERY == 0
        snomed = load_table("snomed").row(condition["snomed"]) if use_snomed else None
        row = {
            "id": self._id(),
            "code": snomed["code"] if snomed else condition["code"],
            "code_system": "SNOMED" if snomed else "ICD10CM",
            "description": snomed["display"] if snomed else condition["display"],
            "status": "resolved" if resolved else "active",
            "onset_date": onset.isoformat(),
            "resolved_date": resolved.isoformat() if resolved else None,
            "recorded_at": self._at(encounter, 12),
        }
        encounter["problems"].append(row)
        return row

    @staticmethod
    def diagnose(encounter: Record, conditions: list[dict[str, Any]]) -> None:
        for condition in conditions:
            if any(d["code"] == condition["code"] for d in encounter["diagnoses"]):
                continue
            encounter["diagnoses"].append(
                {
                    "rank": len(encounter["diagnoses"]) + 1,
                    "code": condition["code"],
                    "code_system": "ICD10CM",
                    "description": condition["display"],
                }
            )

    # -- medications ----------------------------------------------------------------------

    def drugs_for(self, condition_code: str) -> list[dict[str, Any]]:
        return _ndc_drugs().get(condition_code, [])

    def medication(
        self,
        encounter: Record,
        drug: dict[str, Any],
        *,
        ended: date | None = None,
        status: str = "active",
    ) -> Record:
        row = {
            "id": self._id(),
            "ndc": drug["ndc"],
            "name": drug["display"],
            "sig": drug["sig"],
            "dose_quantity": _number(drug["dosage_quantity"]),
            "dose_unit": drug["dosage_units"],
            "status": status,
            "start_date": encounter["date_of_service"],
            "end_date": ended.isoformat() if ended else None,
            "prescriber_id": encounter["provider_id"],
            "recorded_at": self._at(encounter, 18),
        }
        encounter["medications"].append(row)
        return row

    # -- allergies ------------------------------------------------------------------------

    def allergy(
        self, encounter: Record, allergen: dict[str, Any], code_system: str, severity: str
    ) -> Record:
        reaction = self.rng.choice(_snomed("reaction"))
        if severity == "severe":
            reaction = load_table("snomed").row("39579001")
        onset = self.person.born + timedelta(
            days=self.rng.randint(
                200, max(201, (self.person.last_day - self.person.born).days // 2)
            )
        )
        row = {
            "id": self._id(),
            "allergen": allergen["display"],
            "allergen_code": allergen["code"],
            "code_system": code_system,
            "reaction": reaction["display"],
            "reaction_code": reaction["code"],
            "severity": severity,
            "status": "active",
            "onset_date": onset.isoformat(),
            "recorded_at": self._at(encounter, 8),
        }
        encounter["allergies"].append(row)
        return row

    def no_known_allergies(self, encounter: Record) -> None:
        row = load_table("snomed").row("716186003")
        encounter["allergies"].append(
            {
                "id": self._id(),
                "allergen": row["display"],
                "allergen_code": row["code"],
                "code_system": "SNOMED",
                "reaction": None,
                "reaction_code": None,
                "severity": None,
                "status": "active",
                "onset_date": None,
                "recorded_at": self._at(encounter, 8),
            }
        )

    # -- vitals ---------------------------------------------------------------------------

    def _vital_row(self, encounter: Record, key: str, value: str, unit: str) -> None:
        row = _vital(key)
        encounter["vitals"].append(
            {
                "id": self._id(),
                "name": row["display"],
                "value": value,
                "unit": unit,
                "loinc_code": row["code"],
                "observed_at": self._at(encounter, 5),
            }
        )

    def vitals(
        self,
        encounter: Record,
        *,
        hypertensive: bool,
        pressure_half: str = "",
        oxygen_lpm: int = 0,
    ) -> None:
        """One vital-sign set. An adult's blood pressure is charted whole unless
        `pressure_half` ("systolic" or "diastolic") names the only half taken; `oxygen_lpm`
        is the flow of supplemental oxygen during the pulse oximetry (0: room air). Both
        also happen at random, in the shares above."""
        on = date.fromisoformat(encounter["date_of_service"])
        months = age_in_months(self.person.born, on)
        rng = self.rng
        if months < 18 * 12:
            self._child_vitals(encounter, months)
            return
        if self.person.height_in is None:
            self.person.height_in = 64 if self.person.kind == "adult" else rng.randint(60, 75)
        height = self.person.height_in
        # The showcase adult has obesity on her problem list; her BMI agrees.
        low, high = (1.45, 1.55) if self.person.kind == "adult" else (0.8, 1.25)
        weight = round(rng.uniform(low, high) * height * 2.6, 1)
        self._vital_row(encounter, "height", str(height), "[in_i]")
        self._vital_row(encounter, "weight", f"{weight:.1f}", "[lb_av]")
        self._vital_row(encounter, "bmi", f"{703 * weight / height**2:.1f}", "kg/m2")
        systolic = rng.randint(132, 158) if hypertensive else rng.randint(104, 128)
        diastolic = rng.randint(82, 96) if hypertensive else rng.randint(64, 80)
        if not pressure_half and rng.random() < ONE_PRESSURE_HALF_SHARE:
            pressure_half = rng.choice(("systolic", "diastolic"))
        if pressure_half != "diastolic":
            self._vital_row(encounter, "blood_pressure_1", str(systolic), "mm[Hg]")
        if pressure_half != "systolic":
            self._vital_row(encounter, "blood_pressure_2", str(diastolic), "mm[Hg]")
        self._vital_row(encounter, "pulse", str(rng.randint(58, 96)), "/min")
        self._vital_row(encounter, "respiratory_rate", str(rng.randint(12, 20)), "/min")
        self._vital_row(encounter, "temperature", f"{rng.uniform(97.4, 99.1):.1f}", "[degF]")
        if not oxygen_lpm and rng.random() < ON_OXYGEN_SHARE:
            oxygen_lpm = rng.randint(1, 4)
        if oxygen_lpm:
            self._vital_row(encounter, "oxygen_saturation", str(rng.randint(91, 97)), "%")
            self._vital_row(encounter, "inhaled_oxygen_flow_rate", str(oxygen_lpm), "L/min")
            # By nasal cannula each litre a minute adds about 4% to room air's 21%.
            self._vital_row(encounter, "oxygen_concentration", str(21 + 4 * oxygen_lpm), "%")
        else:
            self._vital_row(encounter, "oxygen_saturation", str(rng.randint(94, 100)), "%")

    def _child_vitals(self, encounter: Record, months: int) -> None:
        rng = self.rng
        length_cm = 50 + 25 * min(months, 12) / 12 + max(0, months - 12) * 0.75
        weight_kg = 3.4 + 0.6 * min(months, 6) + 0.3 * max(0, min(months, 12) - 6)
        weight_kg += 0.18 * max(0, months - 12)
        weight_kg *= rng.uniform(0.92, 1.08)
        self._vital_row(encounter, "height", f"{length_cm / 2.54:.1f}", "[in_i]")
        self._vital_row(encounter, "weight", f"{weight_kg * 2.20462:.1f}", "[lb_av]")
        if months <= 36:
            head = 35 + 2 * min(months, 3) + 0.5 * max(0, min(months, 12) - 3)
            head += 0.15 * max(0, months - 12)
            self._vital_row(encounter, "head_circumference", f"{head:.1f}", "cm")
            self._vital_row(
                encounter,
                "head_occipital_frontal_circumference_percentile",
                str(rng.randint(10, 90)),
                "%",
            )
        if months < 24:
            self._vital_row(
                encounter, "weight_for_length_percentile", str(rng.randint(15, 85)), "%"
            )
        else:
            self._vital_row(encounter, "bmi", f"{weight_kg / (length_cm / 100) ** 2:.1f}", "kg/m2")
            self._vital_row(encounter, "bmi_percentile", str(rng.randint(15, 85)), "%")
        self._vital_row(encounter, "pulse", str(rng.randint(90, 130)), "/min")
        self._vital_row(encounter, "respiratory_rate", str(rng.randint(22, 34)), "/min")
        self._vital_row(encounter, "temperature", f"{rng.uniform(97.6, 99.4):.1f}", "[degF]")

    # -- labs -----------------------------------------------------------------------------

    def labs(self, encounter: Record, group: str, *, high: bool = False) -> None:
        """One panel's results; `high` makes every result abnormal (high, or the qualitative
        test's abnormal value)."""
        panel = _panel(group)
        collected = self._at(encounter, 25)
        resulted_day = date.fromisoformat(encounter["date_of_service"]) + timedelta(days=1)
        resulted = iso(
            datetime.fromisoformat(collected).replace(
                year=resulted_day.year, month=resulted_day.month, day=resulted_day.day, hour=10
            )
        )
        status = "preliminary" if encounter["status"] == "open" else "final"
        for test in _labs(group):
            row: Record = {
                "id": self._id(),
                "panel_loinc": panel["code"],
                "panel_name": panel["display"],
                "loinc_code": test["code"],
                "name": test["short"],
                "unit": test["unit"],
                "status": status,
                "collected_at": collected,
                "resulted_at": resulted,
            }
            if test.get("text_value"):
                row.update(self._text_result(test, high=high))
            else:
                low, top, decimals = float(test["low"]), float(test["high"]), int(test["decimals"])
                span = top - low
                value = self.rng.uniform(low + 0.1 * span, top - 0.1 * span)
                if high or self.rng.random() < 0.12:
                    value = top + self.rng.uniform(0.05, 0.5) * max(span, 1.0)
                flag = "H" if value > top else ("L" if value < low else "N")
                row.update(
                    value=f"{value:.{decimals}f}",
                    value_type="numeric",
                    reference_range=f"{low:.{decimals}f}-{top:.{decimals}f}",
                    abnormal_flag=flag,
                )
            encounter["lab_results"].append(row)
        if panel["specimen"] != URINE:
            self.procedure(encounter, "36415", "CPT")

    def _text_result(self, test: dict[str, Any], *, high: bool) -> Record:
        """A qualitative result: its words, no unit; a test with an abnormal value (a
        presence test) names its normal value as the reference range and flags "A"."""
        abnormal = test.get("abnormal_text_value") or ""
        if not abnormal:
            return {
                "value": test["text_value"],
                "value_type": "text",
                "reference_range": "",
                "abnormal_flag": "N",
            }
        flagged = high or self.rng.random() < ABNORMAL_TEXT_SHARE
        return {
            "value": abnormal if flagged else test["text_value"],
            "value_type": "text",
            "reference_range": test["text_value"],
            "abnormal_flag": "A" if flagged else "N",
        }

    # -- immunizations, procedures, smoking ----------------------------------------------

    def immunization(
        self, encounter: Record, cvx: dict[str, Any], *, refused: bool = False
    ) -> None:
        encounter["immunizations"].append(
            {
                "id": self._id(),
                "cvx_code": cvx["code"],
                "name": cvx["display"],
                "administered_on": encounter["date_of_service"],
                "lot_number": None if refused else self.lot_number(),
                "manufacturer": None if refused else cvx["manufacturer"],
                "status": "refused" if refused else "completed",
                "refusal_reason": "Patient declined after counseling" if refused else None,
            }
        )
        if not refused:
            self.procedure(encounter, "90471", "CPT")

    def lot_number(self) -> str:
        rng = self.rng
        letters = rng.choice("ABCDEFHJKLMNPRSTUVWXYZ") + rng.choice("ABCDEF") + rng.choice("ABCDEF")
        return f"{letters[0]}{rng.randint(1000, 9999)}{letters[1:]}"

    def procedure(self, encounter: Record, code: str, code_system: str) -> None:
        if any(p["code"] == code for p in encounter["procedures"]):
            return
        table = {"CPT": "cpt", "HCPCS": "hcpcs", "SNOMED": "snomed"}[code_system]
        row = load_table(table).row(code)
        encounter["procedures"].append(
            {
                "id": self._id(),
                "code": code,
                "code_system": code_system,
                "description": row["display"],
                "performed_at": self._at(encounter, 30),
            }
        )

    def smoking_status(self, encounter: Record, code: str) -> None:
        row = load_table("snomed").row(code)
        encounter["smoking_status"] = {
            "code": row["code"],
            "description": row["display"],
            "recorded_at": self._at(encounter, 6),
        }

    def choose_smoking_code(self) -> str:
        return self.rng.choice(
            ("266919005",) * 5 + ("8517006", "8517006", "449868002", "428061000124105")
        )

    def allergen_choices(self) -> list[tuple[dict[str, Any], str]]:
        drug_allergens = [(row, "RXNORM") for row in load_table("rxnorm").where(tty="IN")]
        other = [(row, "SNOMED") for row in _snomed("allergen")]
        return drug_allergens + other

    def cvx(self, code: str) -> dict[str, Any]:
        return load_table("cvx").row(code)

    def vaccines_due(self, months: int, given: set[str]) -> list[dict[str, Any]]:
        due = []
        for row in load_table("cvx").rows:
            if row["code"] in given or row["code"] in ("150", "197", "309", "312"):
                continue
            top = row["max_age_months"]
            if row["min_age_months"] <= months and (top is None or months <= top):
                due.append(row)
        return due
