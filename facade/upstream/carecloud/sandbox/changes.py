"""The CareCloud sandbox's change generator: a practice at work, N changes an hour on the
sandbox's clock. Patients register and move, insurances change, visits are booked, moved,
checked in, charted, signed and amended; now and then a record entered in error is deleted.

Deterministic: one `random.Random` seeded from `seed` picks every change, so the same seed on
the same dataset makes the same changes. Records that carry `updated_at` (patients,
appointments, encounters) get the change's time; a change to a nested row (an insurance, a
chart row) moves its holder's. Only what CareCloud announces raises a webhook (appointment
changes, encounter signing); nothing else does, deletions included: that silence is why a
mirror of CareCloud re-reads. Every change is logged (`log`), without PHI.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from facade.sandbox.changes import Action, Change, ChangeSchedule
from facade.upstream.carecloud.sandbox.chart_edits import ROW_KINDS, ChartEdits, touched
from facade.upstream.carecloud.sandbox.context import (
    IdSequence,
    Practice,
    Record,
    iso,
    local_time,
    new_guid,
)
from facade.upstream.carecloud.sandbox.people import (
    SHOWCASE_KINDS,
    make_insurance,
    make_patient,
    member_id,
    street,
)
from facade.upstream.carecloud.sandbox.practice import phone
from facade.upstream.carecloud.sandbox.state import SandboxState
from facade.upstream.carecloud.sandbox.visits import (
    CANCEL_REASONS,
    DURATIONS,
    encounter_record,
)
from facade.upstream.carecloud.sandbox.webhooks import APPOINTMENT_CHANGED, ENCOUNTER_SIGNED

#: Why patients book (the reasons the generated charts use).
VISIT_REASONS = ("Follow-up", "Sick visit", "Annual physical", "Diabetes follow-up")
#: Established-patient office visit codes an encounter opened today is billed with.
VISIT_CODES = ("99212", "99213", "99213", "99214")
#: Tries at drawing a change the practice can make before a step gives up.
ATTEMPTS = 20


def _max_row_id(encounters: list[Record]) -> int:
    """The highest clinical row (or generated note) id: new rows number on from it."""
    ids = [0]
    for encounter in encounters:
        for kind in (*ROW_KINDS, "procedures"):
            ids.extend(row["id"] for row in encounter[kind])
        if encounter["note"] is not None:
            ids.append(encounter["note"]["id"])
    return max(ids)


class ChangeGenerator:
    """Changes `state`'s records `per_hour` times an hour, from `seed`.

    `advance(seconds)` and `run_until(moment)` drive it on a ManualClock (moving the clock to
    each change's moment); `run_forever()` on the real one. Build it before other writes so
    that new row ids start above the dataset's.
    """

    def __init__(self, state: SandboxState, per_hour: float, *, seed: int = 0) -> None:
        self.state = state
        self.dataset = state.dataset
        self.rng = random.Random(f"facade-carecloud-sandbox:{seed}:changes")
        dataset = self.dataset
        insurance_ids = [i["id"] for p in dataset.patients for i in p["insurances"]]
        self.practice = Practice(
            business_entity=dataset.business_entity,
            user=dataset.user,
            providers=dataset.providers,
            locations=dataset.locations,
            rows=IdSequence(_max_row_id(dataset.encounters)),
            insurances=IdSequence(max(insurance_ids, default=880_000)),
        )
        self.chart = ChartEdits(dataset, self.practice, self.rng)
        #: The showcase patients (the demo logins) are never deleted from, only changed.
        self.showcase = frozenset(p["id"] for p in dataset.patients[: len(SHOWCASE_KINDS)])
        self.registered = max(
            (int(p["chart_number"].removeprefix("CC-")) for p in dataset.patients), default=0
        )
        self.schedule = ChangeSchedule(state.clock, per_hour, self.step)
        self._step = 0

    @property
    def log(self) -> list[Change]:
        return self.schedule.log

    async def advance(self, seconds: float) -> list[Change]:
        return await self.schedule.advance(seconds)

    async def run_until(self, moment: datetime) -> list[Change]:
        return await self.schedule.run_until(moment)

    async def run_forever(self) -> None:
        await self.schedule.run_forever()

    async def step(self, number: int) -> list[Change]:
        """One change, drawn by weight; a draw the practice cannot make (nothing to sign,
        say) is drawn again."""
        self._step = number
        for _ in range(ATTEMPTS):
            [kind] = self.rng.choices(KINDS, weights=[k.weight for k in KINDS])
            changes = await kind.make(self)
            if changes:
                return changes
        return []

    # -- helpers ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.state.clock()

    def _today(self) -> date:
        return self.state.now_local().date()

    def _change(
        self,
        action: Action,
        endpoint: str,
        record: Record,
        what: str = "",
        *,
        items: tuple[str, ...] = (),
        events: tuple[str, ...] = (),
    ) -> Change:
        patient_id = record["id"] if endpoint == "patients" else record["patient_id"]
        return Change(
            self._step, self._now(), action, endpoint, record["id"], patient_id, what, items, events
        )

    def _living(self, *, active: bool = False) -> list[Record]:
        return [
            p
            for p in self.dataset.patients
            if p["deceased_at"] is None and (not active or p["status"] == "A")
        ]

    def _deletable(self, patient_id: str) -> bool:
        return patient_id not in self.showcase

    # -- patients and their insurances -------------------------------------------------------

    async def register_patient(self) -> list[Change]:
        self.registered += 1
        patient = make_patient(
            self.practice, self.rng, self.registered - 1, "", self.dataset.benefits
        ).record
        for insurance in patient["insurances"]:
            insurance["termination_date"] = None
            insurance["effective_date"] = self._today().isoformat()
        patient["created_at"] = patient["updated_at"] = iso(self._now())
        self.dataset.patients.append(patient)
        return [self._change("create", "patients", patient)]

    async def edit_patient(self) -> list[Change]:
        living = self._living()
        if not living:
            return []
        patient = self.rng.choice(living)
        what = self.rng.choice(("phone", "email", "address"))
        if what == "phone":
            primary = patient["phones"][0]
            primary["phone_number"] = phone(self.rng, primary["phone_number"][:3])
        elif what == "email":
            local, _, domain = patient["email"].partition("@")
            patient["email"] = f"{local.rstrip('0123456789')}{self.rng.randint(100, 999)}@{domain}"
        else:
            patient["addresses"][0].update(line1=street(self.rng), line2="")
        patient["updated_at"] = iso(self._now())
        return [self._change("modify", "patients", patient, what)]

    async def delete_patient(self) -> list[Change]:
        """A duplicate registered in error; only a patient with no visit can be deleted."""
        seen = {a["patient_id"] for a in self.dataset.appointments}
        seen |= {e["patient_id"] for e in self.dataset.encounters}
        candidates = [
            p for p in self.dataset.patients if p["id"] not in seen and self._deletable(p["id"])
        ]
        if not candidates:
            return []
        patient = self.dataset.remove("patients", self.rng.choice(candidates)["id"])
        assert patient is not None
        for insurance in patient["insurances"]:
            self.dataset.benefits.pop(insurance["id"], None)
        return [self._change("delete", "patients", patient)]

    async def add_insurance(self) -> list[Change]:
        candidates = [p for p in self._living() if len(p["insurances"]) < 2]
        if not candidates:
            return []
        patient = self.rng.choice(candidates)
        held = patient["insurances"]
        subscriber, relationship = (
            (dict(held[0]["subscriber"]), held[0]["relationship_to_insured_code"])
            if held
            else (
                {key: patient[key] for key in ("first_name", "last_name", "date_of_birth")},
                "18",
            )
        )
        insurance, benefits = make_insurance(
            self.practice, self.rng, len(held) + 1, subscriber, relationship, self._today()
        )
        insurance["termination_date"] = None
        held.append(insurance)
        self.dataset.benefits[insurance["id"]] = benefits
        patient["updated_at"] = iso(self._now())
        item = f"insurances/{insurance['id']}"
        return [self._change("create", "patients", patient, "insurance", items=(item,))]

    async def change_insurance(self) -> list[Change]:
        candidates = [p for p in self._living() if p["insurances"]]
        if not candidates:
            return []
        patient = self.rng.choice(candidates)
        insurance = self.rng.choice(patient["insurances"])
        if insurance["termination_date"] is None and self.rng.random() < 0.3:
            insurance["termination_date"] = self._today().isoformat()
            what = "insurance terminated"
        else:
            insurance["member_id"] = member_id(self.rng)
            what = "insurance member id"
        patient["updated_at"] = iso(self._now())
        item = f"insurances/{insurance['id']}"
        return [self._change("modify", "patients", patient, what, items=(item,))]

    async def remove_insurance(self) -> list[Change]:
        candidates = [p for p in self._living() if p["insurances"] and self._deletable(p["id"])]
        if not candidates:
            return []
        patient = self.rng.choice(candidates)
        insurance = self.rng.choice(patient["insurances"])
        patient["insurances"] = [i for i in patient["insurances"] if i is not insurance]
        for priority, kept in enumerate(patient["insurances"], start=1):
            kept["priority"] = priority
        self.dataset.benefits.pop(insurance["id"], None)
        patient["updated_at"] = iso(self._now())
        item = f"insurances/{insurance['id']}"
        return [self._change("delete", "patients", patient, "insurance", items=(item,))]

    # -- appointments --------------------------------------------------------------------------

    def _slot(self, day: date) -> tuple[datetime, datetime]:
        start = local_time(day, self.rng.randint(8, 16), self.rng.choice((0, 15, 30, 45)))
        return start, start + timedelta(minutes=self.rng.choice(DURATIONS))

    def _appointment(self, patient: Record, start: datetime, end: datetime, status: str) -> Record:
        now = iso(self._now())
        return {
            "id": new_guid(self.rng),
            "patient_id": patient["id"],
            "provider_id": patient["primary_provider_id"],
            "location_id": patient["primary_location_id"],
            "visit_reason_name": self.rng.choice(VISIT_REASONS),
            "start_time": iso(start),
            "end_time": iso(end),
            "status": status,
            "cancellation_reason": None,
            "comments": "",
            "created_at": now,
            "updated_at": now,
        }

    async def book_appointment(self) -> list[Change]:
        living = self._living(active=True)
        if not living:
            return []
        patient = self.rng.choice(living)
        start, end = self._slot(self._today() + timedelta(days=self.rng.randint(1, 45)))
        appointment = await self.state.add_appointment(
            self._appointment(patient, start, end, "scheduled")
        )
        return [self._change("create", "appointments", appointment, events=(APPOINTMENT_CHANGED,))]

    async def move_appointment(self) -> list[Change]:
        """A booked visit confirmed, moved, cancelled, missed, checked in or out."""
        living = {p["id"] for p in self._living()}
        candidates = [
            a
            for a in self.dataset.appointments
            if a["status"] in ("scheduled", "confirmed", "checked_in") and a["patient_id"] in living
        ]
        if not candidates:
            return []
        appointment = self.rng.choice(candidates)
        day = datetime.fromisoformat(appointment["start_time"]).date()
        today, draw = self._today(), self.rng.random()
        if appointment["status"] == "checked_in":
            status = "checked_out"
        elif day < today:
            status = "no_show"
        elif day == today:
            status = "checked_in"
        elif draw < 0.4 and appointment["status"] == "scheduled":
            status = "confirmed"
        elif draw < 0.75:
            start = datetime.fromisoformat(appointment["start_time"])
            end = datetime.fromisoformat(appointment["end_time"])
            shift = timedelta(days=self.rng.randint(1, 14))
            await self.state.reschedule_appointment(appointment["id"], start + shift, end + shift)
            return [
                self._change(
                    "modify",
                    "appointments",
                    appointment,
                    "rescheduled",
                    events=(APPOINTMENT_CHANGED,),
                )
            ]
        else:
            status = "cancelled"
        reason = self.rng.choice(CANCEL_REASONS) if status == "cancelled" else None
        await self.state.change_appointment_status(
            appointment["id"], status, cancellation_reason=reason
        )
        return [
            self._change(
                "modify",
                "appointments",
                appointment,
                f"status {status}",
                events=(APPOINTMENT_CHANGED,),
            )
        ]

    async def delete_appointment(self) -> list[Change]:
        """A booking entered in error: only one that no encounter came from."""
        visited = {e["appointment_id"] for e in self.dataset.encounters}
        candidates = [
            a
            for a in self.dataset.appointments
            if a["id"] not in visited and self._deletable(a["patient_id"])
        ]
        if not candidates:
            return []
        appointment = self.dataset.remove("appointments", self.rng.choice(candidates)["id"])
        assert appointment is not None
        return [self._change("delete", "appointments", appointment)]

    # -- encounters ------------------------------------------------------------------------------

    async def open_encounter(self) -> list[Change]:
        """A patient checks in (for today's booking, or walks in) and the visit is opened;
        the check-in is announced, the new encounter is not."""
        today = self._today()
        living = {p["id"]: p for p in self._living(active=True)}
        if not living:
            return []
        visited = {e["appointment_id"] for e in self.dataset.encounters}
        booked = [
            a
            for a in self.dataset.appointments
            if a["status"] in ("scheduled", "confirmed", "checked_in")
            and a["patient_id"] in living
            and a["id"] not in visited
            and datetime.fromisoformat(a["start_time"]).date() == today
        ]
        changes: list[Change] = []
        if booked:
            appointment = self.rng.choice(booked)
            if appointment["status"] != "checked_in":
                await self.state.change_appointment_status(appointment["id"], "checked_in")
                changes.append(
                    self._change(
                        "modify",
                        "appointments",
                        appointment,
                        "status checked_in",
                        events=(APPOINTMENT_CHANGED,),
                    )
                )
        else:
            patient = living[self.rng.choice(sorted(living))]
            now = self.state.now_local()
            start = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
            appointment = await self.state.add_appointment(
                self._appointment(patient, start, start + timedelta(minutes=20), "checked_in")
            )
            changes.append(
                self._change(
                    "create", "appointments", appointment, "walk-in", events=(APPOINTMENT_CHANGED,)
                )
            )
        encounter = encounter_record(
            new_guid(self.rng),
            appointment,
            status="open",
            code=self.rng.choice(VISIT_CODES),
        )
        encounter["created_at"] = encounter["updated_at"] = iso(self._now())
        self.dataset.encounters.append(encounter)
        return [*changes, self._change("create", "encounters", encounter)]

    async def sign_encounter(self) -> list[Change]:
        candidates = [e for e in self.dataset.encounters if e["status"] == "open"]
        if not candidates:
            return []
        encounter = await self.state.sign_encounter(self.rng.choice(candidates)["id"])
        return [
            self._change("modify", "encounters", encounter, "signed", events=(ENCOUNTER_SIGNED,))
        ]

    async def amend_encounter(self) -> list[Change]:
        """An addendum to a signed note, signed again (CareCloud announces it as a signing)."""
        candidates = [
            e
            for e in self.dataset.encounters
            if e["status"] in ("signed", "amended") and e["note"] is not None
        ]
        if not candidates:
            return []
        chosen = self.rng.choice(candidates)
        text = chosen["note"]["text"] + "\nAddendum: results reviewed with the patient."
        encounter = await self.state.sign_encounter(chosen["id"], text=text)
        return [
            self._change("modify", "encounters", encounter, "amended", events=(ENCOUNTER_SIGNED,))
        ]

    async def delete_encounter(self) -> list[Change]:
        """A visit opened in error: only an unsigned one can go."""
        candidates = [
            e
            for e in self.dataset.encounters
            if e["status"] == "open" and self._deletable(e["patient_id"])
        ]
        if not candidates:
            return []
        encounter = self.dataset.remove("encounters", self.rng.choice(candidates)["id"])
        assert encounter is not None
        return [self._change("delete", "encounters", encounter)]

    # -- chart rows --------------------------------------------------------------------------------

    def _row_change(
        self, action: Action, encounter: Record, kind: str, ids: list[int], what: str
    ) -> list[Change]:
        touched(encounter, self._now())
        items = tuple(f"{kind}/{row_id}" for row_id in ids)
        return [self._change(action, "encounters", encounter, what, items=items)]

    async def add_chart_row(self) -> list[Change]:
        kind = self.rng.choice(ROW_KINDS)
        prefer_open = self.rng.random() < 0.7
        added = self.chart.add(kind, self._today(), prefer_open=prefer_open)
        if added is None:
            return []
        encounter, ids = added
        return self._row_change("create", encounter, kind, ids, kind)

    async def change_chart_row(self) -> list[Change]:
        kind = self.rng.choice(ROW_KINDS)
        changed = self.chart.change(kind, self._today())
        if changed is None:
            return []
        encounter, ids, what = changed
        return self._row_change("modify", encounter, kind, ids, what)

    async def remove_chart_row(self) -> list[Change]:
        kind = self.rng.choice(ROW_KINDS)
        removed = self.chart.remove(kind, keep=lambda patient_id: not self._deletable(patient_id))
        if removed is None:
            return []
        encounter, ids = removed
        return self._row_change("delete", encounter, kind, ids, kind)


@dataclass(frozen=True)
class Kind:
    """One kind of change and how often it happens (out of the weights' sum)."""

    name: str
    weight: int
    make: Callable[[ChangeGenerator], Awaitable[list[Change]]]


#: A practice's day, roughly: the schedule churns most, charts grow, demographics drift,
#: and deletions are rare (and limited to what was entered in error).
KINDS: tuple[Kind, ...] = (
    Kind("book appointment", 12, ChangeGenerator.book_appointment),
    Kind("move appointment", 18, ChangeGenerator.move_appointment),
    Kind("delete appointment", 3, ChangeGenerator.delete_appointment),
    Kind("open encounter", 6, ChangeGenerator.open_encounter),
    Kind("sign encounter", 6, ChangeGenerator.sign_encounter),
    Kind("amend encounter", 2, ChangeGenerator.amend_encounter),
    Kind("delete encounter", 1, ChangeGenerator.delete_encounter),
    Kind("add chart row", 14, ChangeGenerator.add_chart_row),
    Kind("change chart row", 12, ChangeGenerator.change_chart_row),
    Kind("remove chart row", 4, ChangeGenerator.remove_chart_row),
    Kind("register patient", 4, ChangeGenerator.register_patient),
    Kind("edit patient", 10, ChangeGenerator.edit_patient),
    Kind("delete patient", 1, ChangeGenerator.delete_patient),
    Kind("add insurance", 2, ChangeGenerator.add_insurance),
    Kind("change insurance", 3, ChangeGenerator.change_insurance),
    Kind("remove insurance", 2, ChangeGenerator.remove_insurance),
)
