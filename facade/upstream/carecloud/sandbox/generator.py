"""Builds the CareCloud sandbox's practice: `generate(patients, seed)` -> CareCloudDataset.

Deterministic by construction: one `random.Random` per patient seeded from (seed, index),
GUIDs drawn from it, dates anchored to REFERENCE_DATE, codes only from the curated tables.
The first three patients are the showcase (a rich adult chart, a toddler, a deceased man)
and do not depend on `patients`. It never reads the clock, the network or global randomness.
"""

from __future__ import annotations

import random

from facade.upstream.carecloud.sandbox.context import REFERENCE_DATE, Record
from facade.upstream.carecloud.sandbox.dataset import CareCloudDataset
from facade.upstream.carecloud.sandbox.people import SHOWCASE_KINDS, make_patient
from facade.upstream.carecloud.sandbox.practice import make_practice
from facade.upstream.carecloud.sandbox.visits import write_visits

__all__ = ["REFERENCE_DATE", "generate"]


def generate(patients: int = 50, seed: int = 1) -> CareCloudDataset:
    """A business entity with `patients` patients and their charts; same arguments, same bytes."""
    practice = make_practice(seed)
    benefits: dict[int, Record] = {}
    people: list[Record] = []
    appointments: list[Record] = []
    encounters: list[Record] = []
    for index in range(patients):
        rng = random.Random(f"facade-carecloud-sandbox:{seed}:patient:{index}")
        kind = SHOWCASE_KINDS[index] if index < len(SHOWCASE_KINDS) else ""
        person = make_patient(practice, rng, index, kind, benefits)
        people.append(person.record)
        write_visits(practice, person, appointments, encounters)
    appointments.sort(key=lambda a: (a["start_time"], a["id"]))
    encounters.sort(key=lambda e: (e["start_time"], e["id"]))
    return CareCloudDataset(
        business_entity=practice.business_entity,
        user=practice.user,
        providers=practice.providers,
        locations=practice.locations,
        patients=people,
        appointments=appointments,
        encounters=encounters,
        benefits=benefits,
    )
