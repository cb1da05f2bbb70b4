"""A practice at work: seeded changes to the sandbox's records, on its clock, at a set rate.

`ChangeGenerator` creates, modifies and deletes the records facade reads (patients, problems,
allergies, medications, appointments, clinical note locks, lab results), stamps `updated_at`
with the change's moment in the practice's time zone (so `since=` listings see it), announces
what DrChrono would announce through the sandbox's webhooks (nothing for a delete: the vendor
sends no delete events but TASK_DELETE) and logs every change. Same dataset, seed, rate and
moments, same changes; it never reads the wall clock or the global random generator.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from facade.sandbox.changes import Action, Change, ChangeSchedule
from facade.sandbox.codes import names
from facade.upstream.drchrono.sandbox.dataset import Record
from facade.upstream.drchrono.sandbox.endpoints import ENDPOINT_SPECS
from facade.upstream.drchrono.sandbox.rendering import render_record
from facade.upstream.drchrono.sandbox.state import SandboxState

#: What the generator can do, and how often relative to the rest.
KIND_WEIGHTS: dict[str, int] = {
    "patients.create": 1,
    "patients.modify": 3,
    "problems.create": 2,
    "problems.modify": 2,
    "problems.delete": 1,
    "allergies.create": 1,
    "allergies.modify": 1,
    "allergies.delete": 1,
    "medications.create": 2,
    "medications.modify": 2,
    "medications.delete": 1,
    "appointments.create": 3,
    "appointments.modify": 3,
    "clinical_notes.lock": 2,
    "lab_results.modify": 1,
}
#: The event DrChrono sends for each kind of change (absent: it sends none).
EVENT_OF: dict[str, str] = {
    "patients.create": "PATIENT_CREATE",
    "patients.modify": "PATIENT_MODIFY",
    "problems.create": "PATIENT_PROBLEM_CREATE",
    "problems.modify": "PATIENT_PROBLEM_MODIFY",
    "allergies.create": "PATIENT_ALLERGY_CREATE",
    "allergies.modify": "PATIENT_ALLERGY_MODIFY",
    "medications.create": "PATIENT_MEDICATION_CREATE",
    "medications.modify": "PATIENT_MEDICATION_MODIFY",
    "appointments.create": "APPOINTMENT_CREATE",
    "appointments.modify": "APPOINTMENT_MODIFY",
    "clinical_notes.lock": "CLINICAL_NOTE_LOCK",
    "clinical_notes.unlock": "CLINICAL_NOTE_UNLOCK",
}
#: A note's lock and unlock modify it (and its appointment).
ACTION_OF: dict[str, Action] = {
    "create": "create",
    "modify": "modify",
    "delete": "delete",
    "lock": "modify",
    "unlock": "modify",
}
#: Appointment statuses a modification moves forward along.
STATUS_STEPS = {"": "Confirmed", "Confirmed": "Arrived", "Arrived": "In Room"}
#: The endpoints whose new rows are copies of old ones (with new ids).
TEMPLATED = ("patients", "problems", "allergies", "medications", "appointments")
#: How many of an endpoint's rows new ones may be shaped like (a copy is kept of each).
TEMPLATES_PER_ENDPOINT = 50
APPOINTMENT_NOTES = ("Patient called to confirm.", "Bring medication list.", "Running late.")


@dataclass(frozen=True)
class _Made:
    """What one change did: its kind (a key of KIND_WEIGHTS/EVENT_OF), the record it changed,
    a few words on what (never a value that is PHI), and other records it modified with it."""

    kind: str
    record: Record
    what: str
    also: tuple[tuple[str, Record, str], ...] = ()


class ChangeGenerator:
    """Makes `changes_per_hour` changes an hour on the sandbox clock, evenly spaced from when it
    was built (the shared `ChangeSchedule`); `run_until`/`advance` make those that fall due."""

    def __init__(
        self,
        state: SandboxState,
        *,
        changes_per_hour: float,
        seed: int = 0,
        base_url: str = "http://drchrono.sandbox",
    ) -> None:
        self.state = state
        self.base_url = base_url
        self.schedule = ChangeSchedule(state.clock, changes_per_hour, self._step)
        self._rng = random.Random(f"facade-sandbox:{seed}:changes")
        #: The last id given per endpoint: ids only grow, a deleted row's id is never reused.
        self._last_ids = {
            name: max(
                (int(str(r["id"])) for r in state.dataset.endpoint(name) if str(r["id"]).isdigit()),
                default=1_000_000,
            )
            for name in TEMPLATED
        }
        #: New rows are shaped like the practice's first rows as they were at the start, so an
        #: endpoint whose rows were all deleted still gets new ones.
        self._templates = {
            name: copy.deepcopy(state.dataset.endpoint(name)[:TEMPLATES_PER_ENDPOINT])
            for name in TEMPLATED
        }
        doctors = state.dataset.endpoint("doctors")
        zone = str(doctors[0].get("timezone") or "UTC") if doctors else "UTC"
        self._zone = ZoneInfo(zone)

    @property
    def log(self) -> list[Change]:
        """Every change made, oldest first: one per record touched, the announced one first."""
        return self.schedule.log

    async def run_until(self, moment: datetime) -> list[Change]:
        return await self.schedule.run_until(moment)

    async def advance(self, seconds: float) -> list[Change]:
        return await self.schedule.advance(seconds)

    # -- One change --------------------------------------------------------------------------

    async def _step(self, step: int) -> list[Change]:
        """One change of a kind drawn by weight; nothing if the dataset offers nothing to change.

        The schedule has moved a ManualClock to the step's moment, so hooks are queued then."""
        at = self.state.clock()
        kinds = list(KIND_WEIGHTS)
        kind = self._rng.choices(kinds, [KIND_WEIGHTS[k] for k in kinds])[0]
        endpoint, action = kind.split(".")
        stamp = at.astimezone(self._zone).replace(tzinfo=None).isoformat(timespec="seconds")
        make: Callable[[str], _Made | None] = getattr(self, f"_{endpoint}_{action}")
        made = make(stamp)
        if made is None:
            return []
        endpoint, action = made.kind.split(".")
        event = EVENT_OF.get(made.kind)
        if event is not None:
            spec = ENDPOINT_SPECS[endpoint]
            self.state.webhooks.announce(
                event, render_record(self.state, spec, made.record, {}, self.base_url)
            )
        changes = [
            Change(
                step=step,
                at=at,
                action=ACTION_OF[action],
                endpoint=endpoint,
                record_id=str(made.record["id"]),
                patient_id=self._patient_of(endpoint, made.record),
                what=made.what,
                events=(event,) if event else (),
            )
        ]
        for other, record, what in made.also:
            changes.append(
                Change(
                    step=step,
                    at=at,
                    action="modify",
                    endpoint=other,
                    record_id=str(record["id"]),
                    patient_id=self._patient_of(other, record),
                    what=what,
                )
            )
        return changes

    def _patient_of(self, endpoint: str, record: Record) -> str | None:
        if endpoint == "patients":
            patient = record["id"]
        elif "patient" in record:
            patient = record["patient"]
        else:  # lab results carry no patient: their order does
            order = self.state.dataset.by_id("lab_orders", str(record.get("lab_order")))
            patient = None if order is None else order.get("patient")
        return None if patient in (None, "") else str(patient)

    def _pick(
        self, endpoint: str, keep: Callable[[Record], bool] = lambda r: True
    ) -> Record | None:
        candidates = [r for r in self.state.dataset.endpoint(endpoint) if keep(r)]
        return self._rng.choice(candidates) if candidates else None

    def _template(
        self, endpoint: str, keep: Callable[[Record], bool] = lambda r: True
    ) -> Record | None:
        """A fresh copy of one of the endpoint's rows as they were when the generator started."""
        candidates = [r for r in self._templates[endpoint] if keep(r)]
        return copy.deepcopy(self._rng.choice(candidates)) if candidates else None

    def _patient(self) -> Record | None:
        return self._pick("patients", lambda r: r.get("patient_status", "A") == "A")

    def _new_id(self, endpoint: str) -> int:
        self._last_ids[endpoint] += self._rng.randint(1, 17)
        return self._last_ids[endpoint]

    def _clone_for(self, endpoint: str, patient: Record) -> Record | None:
        """A new chart row for `patient`, shaped like one of the practice's existing rows."""
        record = self._template(endpoint)
        if record is None:
            return None
        record["id"] = self._new_id(endpoint)
        record["patient"] = patient["id"]
        if "doctor" in record:
            record["doctor"] = patient.get("doctor", record["doctor"])
        if "appointment" in record:
            record["appointment"] = None  # the template's visit was someone else's
        self.state.dataset.endpoint(endpoint).append(record)
        return record

    # patients

    def _patients_create(self, stamp: str) -> _Made | None:
        record = self._template("patients", lambda r: r.get("patient_status", "A") == "A")
        if record is None:
            return None
        record["id"] = self._new_id("patients")
        record["first_name"] = self._rng.choice(names("given"))
        record["last_name"] = self._rng.choice(names("family"))
        record["chart_id"] = f"{record['last_name'][:2].upper()}{record['first_name'][:2].upper()}"
        record["chart_id"] += f"{record['id'] % 1_000_000:06d}"
        record["created_at"] = record["updated_at"] = stamp
        for key in ("date_of_first_appointment", "date_of_last_appointment"):
            if key in record:
                record[key] = None
        self.state.dataset.endpoint("patients").append(record)
        return _Made("patients.create", record, "created")

    def _patients_modify(self, stamp: str) -> _Made | None:
        record = self._patient()
        if record is None:
            return None
        number = f"(555) 01{self._rng.randint(0, 99):02d}-{self._rng.randint(0, 9999):04d}"
        choice = self._rng.choice(("cell_phone", "email", "address"))
        if choice == "email":
            record["email"] = (
                f"{str(record.get('first_name', 'p')).lower()}{number[-4:]}@example.org"
            )
        elif choice == "address":
            record["address"] = f"{self._rng.randint(10, 9999)} Change Ave"
        else:
            record["cell_phone"] = number
        record["updated_at"] = stamp
        return _Made("patients.modify", record, choice)

    # problems, allergies, medications: no updated_at on the vendor's rows

    def _chart_create(self, endpoint: str) -> _Made | None:
        patient = self._patient()
        record = self._clone_for(endpoint, patient) if patient is not None else None
        if record is None:
            return None
        return _Made(f"{endpoint}.create", record, "created")

    def _chart_delete(self, endpoint: str) -> _Made | None:
        record = self._pick(endpoint)
        if record is None:
            return None
        self.state.dataset.endpoint(endpoint).remove(record)
        return _Made(f"{endpoint}.delete", record, "deleted")

    def _problems_create(self, stamp: str) -> _Made | None:
        made = self._chart_create("problems")
        if made is not None:
            made.record["date_diagnosis"] = made.record["date_changed"] = stamp[:10]
        return made

    def _problems_modify(self, stamp: str) -> _Made | None:
        record = self._pick("problems")
        if record is None:
            return None
        resolved = record.get("status") == "resolved"
        record["status"] = "active" if resolved else "resolved"
        record["abatement_date"] = None if resolved else stamp[:10]
        record["date_changed"] = stamp[:10]
        return _Made("problems.modify", record, f"status {record['status']}")

    def _problems_delete(self, stamp: str) -> _Made | None:
        return self._chart_delete("problems")

    def _allergies_create(self, stamp: str) -> _Made | None:
        return self._chart_create("allergies")

    def _allergies_modify(self, stamp: str) -> _Made | None:
        record = self._pick("allergies")
        if record is None:
            return None
        record["status"] = "inactive" if record.get("status", "active") == "active" else "active"
        return _Made("allergies.modify", record, f"status {record['status']}")

    def _allergies_delete(self, stamp: str) -> _Made | None:
        return self._chart_delete("allergies")

    def _medications_create(self, stamp: str) -> _Made | None:
        made = self._chart_create("medications")
        if made is not None:
            record = made.record
            record.update(status="active", date_started_taking=stamp[:10])
            record["date_stopped_taking"] = None
        return made

    def _medications_modify(self, stamp: str) -> _Made | None:
        record = self._pick("medications")
        if record is None:
            return None
        stopping = record.get("status", "active") == "active"
        record["status"] = "inactive" if stopping else "active"
        record["date_stopped_taking"] = stamp[:10] if stopping else None
        return _Made("medications.modify", record, f"status {record['status']}")

    def _medications_delete(self, stamp: str) -> _Made | None:
        return self._chart_delete("medications")

    # appointments and their notes

    def _appointments_create(self, stamp: str) -> _Made | None:
        patient = self._patient()
        record = self._template("appointments", lambda r: not r.get("deleted_flag"))
        if patient is None or record is None:
            return None
        record["id"] = str(self._new_id("appointments"))
        record["patient"] = patient["id"]
        day = datetime.fromisoformat(stamp).date() + timedelta(days=self._rng.randint(1, 30))
        hour, minute = self._rng.randint(8, 16), self._rng.choice((0, 15, 30, 45))
        record["scheduled_time"] = f"{day.isoformat()}T{hour:02d}:{minute:02d}:00"
        record["status"] = ""
        record["created_at"] = record["updated_at"] = stamp
        defaults = {
            "extended_updated_at": stamp,
            "icd10_codes": [],
            "status_transitions": [],
            "notes": "",
            "clinical_note": {"locked": False, "pdf": "", "updated_at": None},
        }
        record.update({key: value for key, value in defaults.items() if key in record})
        if isinstance(record.get("vitals"), dict):
            record["vitals"] = {
                key: value if key.endswith("_units") else None
                for key, value in record["vitals"].items()
            }
        self.state.dataset.endpoint("appointments").append(record)
        return _Made("appointments.create", record, "created")

    def _appointments_modify(self, stamp: str) -> _Made | None:
        record = self._pick("appointments", lambda r: not r.get("deleted_flag"))
        if record is None:
            return None
        status = str(record.get("status") or "")
        if status in STATUS_STEPS:
            record["status"] = STATUS_STEPS[status]
            what = f"status {record['status']}"
        else:
            record["notes"] = self._rng.choice(APPOINTMENT_NOTES)
            what = "notes"
        _bump_appointment(record, stamp)
        return _Made("appointments.modify", record, what)

    def _clinical_notes_lock(self, stamp: str) -> _Made | None:
        """Locks an unlocked note or unlocks a locked one; the lock lives on the appointment."""
        appointments = {str(a["id"]): a for a in self.state.dataset.endpoint("appointments")}
        note = self._pick(
            "clinical_notes",
            lambda r: not r.get("archived") and str(r.get("appointment")) in appointments,
        )
        if note is None:
            return None
        appointment = appointments[str(note["appointment"])]
        summary = appointment.get("clinical_note")
        signee = note.get("signee")
        locked = bool(summary.get("locked")) if isinstance(summary, dict) else False
        if isinstance(summary, dict):
            summary["locked"] = not locked
            summary["updated_at"] = stamp
        if isinstance(signee, dict):
            signee["locked_by"] = None if locked else self.state.dataset.current_user_id
        if "updated_at" in note:
            note["updated_at"] = stamp
        _bump_appointment(appointment, stamp)
        action = "unlocked" if locked else "locked"
        kind = f"clinical_notes.{action[:-2]}"
        return _Made(kind, note, action, (("appointments", appointment, f"note {action}"),))

    # lab results: DrChrono announces none; the order's summary shows the update

    def _lab_results_modify(self, stamp: str) -> _Made | None:
        record = self._pick("lab_results")
        if record is None:
            return None
        record["status"] = "C"
        record["comments"] = "Corrected result"
        value = str(record.get("value") or "")
        if record.get("value_is_numeric") and value.replace(".", "", 1).isdigit():
            decimals = len(value.partition(".")[2])
            step = self._rng.choice((-1, 1)) * self._rng.randint(1, 5) / 10**decimals
            record["value"] = f"{max(float(value) + step, 0.0):.{decimals}f}"
        also = []
        for summary in self.state.dataset.endpoint("lab_orders_summary"):
            if str(summary["id"]) == str(record.get("lab_order")):
                summary["updated_at"] = stamp
                also.append(("lab_orders_summary", summary, "result corrected"))
        return _Made("lab_results.modify", record, "corrected", tuple(also))


def _bump_appointment(record: Record, stamp: str) -> None:
    record["updated_at"] = stamp
    if "extended_updated_at" in record:
        record["extended_updated_at"] = stamp
