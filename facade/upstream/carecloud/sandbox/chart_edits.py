"""Edits to the rows nested in an encounter (problems, medications, allergies, vitals,
immunizations, lab results), as the change generator makes them: a row added during or after a
visit, a problem resolved, a drug stopped, a value corrected, a row entered in error removed.

CareCloud announces none of these (its webhooks cover appointments and signing only), so
each edit only moves its encounter's `updated_at`. New rows come from the same ChartWriter the
practice's charts were generated with; an edit never invents a code outside the curated tables.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from facade.sandbox.codes import load_table
from facade.upstream.carecloud.sandbox.chart import ChartWriter
from facade.upstream.carecloud.sandbox.context import Practice, Record, age_in_months, iso
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset
from facade.upstream.carecloud.sandbox.people import Person

#: The nested lists an edit touches, as the encounter names them.
ROW_KINDS = ("problems", "medications", "allergies", "vitals", "immunizations", "lab_results")
#: Encounters looked at for a row an edit applies to, before the edit gives up.
SEARCH_LIMIT = 25

Row = tuple[Record, Record]


@cache
def _conditions() -> tuple[dict[str, Any], ...]:
    """Conditions a problem list takes (no bare diagnoses such as well-child codes)."""
    rows = load_table("icd10cm").rows
    return tuple(r for r in rows if r["kind"] in ("chronic", "acute") and not r["problem_type"])


def _nudged(value: str, rng: random.Random, *, down: bool) -> str:
    """A measured value read again: one to three units of its last decimal off."""
    decimals = len(value.partition(".")[2])
    unit = 10.0**-decimals
    delta = rng.randint(1, 3) * unit * (-1 if down else 1)
    return f"{float(value) + delta:.{decimals}f}"


def _lab_flag(value: str, reference_range: str) -> str:
    low, _, top = reference_range.partition("-")
    number = float(value)
    return "H" if number > float(top) else ("L" if number < float(low) else "N")


class ChartEdits:
    """Adds, changes and removes chart rows in `dataset`'s encounters, drawing from `rng`.

    Each method returns (encounter, [row ids]) or None when the dataset offers nothing to
    apply it to; it never touches a deceased patient's chart.
    """

    def __init__(self, dataset: CareCloudDataset, practice: Practice, rng: random.Random) -> None:
        self.dataset = dataset
        self.practice = practice
        self.rng = rng

    def _living(self, encounter: Record) -> bool:
        patient = self.dataset.patient(encounter["patient_id"])
        return patient is not None and patient["deceased_at"] is None

    def _writer(self, encounter: Record, today: date) -> ChartWriter:
        patient = self.dataset.patient(encounter["patient_id"])
        assert patient is not None
        provider = self.dataset.provider(patient["primary_provider_id"])
        location = self.dataset.location(patient["primary_location_id"])
        assert provider is not None and location is not None
        person = Person(
            record=patient,
            rng=self.rng,
            kind="",
            sex="female" if patient["gender_code"] == "F" else "male",
            born=date.fromisoformat(patient["date_of_birth"]),
            last_day=today,
            provider=provider,
            location=location,
        )
        return ChartWriter(self.practice, person, self.dataset.encounters_of(patient["id"]))

    def _find(self, kind: str, wanted: Callable[[Record], bool]) -> Row | None:
        """A row of `kind` that `wanted` accepts, in one of a few encounters drawn at random."""
        encounters = self.dataset.encounters
        if not encounters:
            return None
        for _ in range(SEARCH_LIMIT):
            encounter = self.rng.choice(encounters)
            if not self._living(encounter):
                continue
            rows = [row for row in encounter[kind] if wanted(row)]
            if rows:
                return encounter, self.rng.choice(rows)
        return None

    # -- add -------------------------------------------------------------------------------

    def add(self, kind: str, today: date, *, prefer_open: bool) -> tuple[Record, list[int]] | None:
        """New rows of `kind`: mostly charted in a visit still open, else a late entry."""
        living = [e for e in self.dataset.encounters if self._living(e)]
        open_ = [e for e in living if e["status"] == "open"]
        pool = open_ if open_ and prefer_open else living
        if not pool:
            return None
        encounter = self.rng.choice(pool)
        before = {row["id"] for row in encounter[kind]}
        self._write(kind, encounter, self._writer(encounter, today))
        added = [row["id"] for row in encounter[kind] if row["id"] not in before]
        return (encounter, added) if added else None

    def _write(self, kind: str, encounter: Record, chart: ChartWriter) -> None:
        rng = self.rng
        visit_day = date.fromisoformat(encounter["date_of_service"])
        if kind == "problems":
            onset = max(chart.person.born, visit_day - timedelta(days=rng.randint(3, 400)))
            chart.problem(encounter, rng.choice(_conditions()), onset=onset)
        elif kind == "medications":
            if chart.person.is_child:
                return  # the drug table treats adults' conditions
            treatable = [c for c in _conditions() if chart.drugs_for(c["code"])]
            chart.medication(encounter, rng.choice(chart.drugs_for(rng.choice(treatable)["code"])))
        elif kind == "allergies":
            allergen, system = rng.choice(chart.allergen_choices())
            chart.allergy(encounter, allergen, system, rng.choice(("mild", "moderate", "severe")))
        elif kind == "vitals":
            chart.vitals(encounter, hypertensive=rng.random() < 0.3)
        elif kind == "immunizations":
            months = age_in_months(chart.person.born, visit_day)
            given = {row["cvx_code"] for past in chart.encounters for row in past["immunizations"]}
            due = chart.vaccines_due(months, given)
            if due:
                chart.immunization(encounter, due[0])
            elif months >= 6:
                chart.immunization(encounter, chart.cvx("150"))
        else:
            groups = sorted({row["group"] for row in load_table("loinc_lab_panels").rows})
            chart.labs(encounter, rng.choice(groups))

    # -- change ----------------------------------------------------------------------------

    def change(self, kind: str, today: date) -> tuple[Record, list[int], str] | None:
        """One row of `kind` changed as a chart is kept up: (encounter, [row id], what)."""
        found = self._find(kind, _CHANGEABLE[kind])
        if found is None:
            return None
        encounter, row = found
        day = today.isoformat()
        if kind == "problems":
            row.update(status="resolved", resolved_date=day)
            what = "problem resolved"
        elif kind == "medications":
            row.update(status="discontinued", end_date=day)
            what = "medication discontinued"
        elif kind == "allergies":
            row["status"] = "inactive"
            what = "allergy inactive"
        elif kind == "vitals":
            row["value"] = _nudged(row["value"], self.rng, down=row["unit"] == "%")
            what = "vital sign corrected"
        elif kind == "immunizations":
            row["lot_number"] = self._writer(encounter, today).lot_number()
            what = "immunization lot corrected"
        elif row["status"] == "preliminary":
            row["status"] = "final"
            what = "lab result final"
        else:
            row["value"] = _nudged(row["value"], self.rng, down=self.rng.random() < 0.5)
            row["abnormal_flag"] = _lab_flag(row["value"], row["reference_range"])
            row["status"] = "corrected"
            what = "lab result corrected"
        return encounter, [row["id"]], what

    # -- remove ----------------------------------------------------------------------------

    def remove(self, kind: str, keep: Callable[[str], bool]) -> tuple[Record, list[int]] | None:
        """A row entered in error taken out; `keep(patient_id)` spares a patient's chart."""
        found = self._find(kind, lambda row: True)
        if found is None or keep(found[0]["patient_id"]):
            return None
        encounter, row = found
        encounter[kind] = [r for r in encounter[kind] if r is not row]
        return encounter, [row["id"]]


def _numeric_vital(row: Record) -> bool:
    try:
        return float(row["value"]) > 3
    except (TypeError, ValueError):
        return False


#: Which rows a change applies to: the ones still in the state the change moves them out of.
_CHANGEABLE: dict[str, Callable[[Record], bool]] = {
    "problems": lambda row: row["status"] == "active",
    "medications": lambda row: row["status"] == "active",
    "allergies": lambda row: row["status"] == "active",
    "vitals": _numeric_vital,
    "immunizations": lambda row: row["status"] == "completed",
    "lab_results": lambda row: (
        row["status"] == "preliminary"
        or (row["status"] == "final" and row["value_type"] == "numeric")
    ),
}


def touched(encounter: Record, now: datetime) -> None:
    """Every edit moves its encounter's `updated_at` (the chart's change time)."""
    encounter["updated_at"] = iso(now)
