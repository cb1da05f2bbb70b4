"""A record the vendor made since the mirror's last sync, read by id, is answered by the
vendor (DrChrono: its records are read by id; CareCloud nests a patient's chart in one
per-patient listing, which the mirror answers as fresh as its last sync of that patient)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from facade.clock import FakeClock
from facade.core.confinement import patient_of_id
from facade.runtime import Runtime
from tests.conftest import all_pages
from tests.mirror.serving import LIVE, by_id, mirror_on, searches
from tests.mirror.vendor_state import after_todays_visits
from tests.vendors import change_generator, patient_ids


@pytest.fixture
def clock() -> FakeClock:
    return after_todays_visits()


async def test_a_record_made_since_the_sync_is_read_from_the_vendor(
    runtime: Runtime, fhir: httpx.AsyncClient, sandbox: Any, clock: FakeClock
) -> None:
    await mirror_on(runtime)
    changes = change_generator(sandbox, 60, seed=3)
    created = []
    for _ in range(120):
        clock.advance(60)
        created += [c for c in await changes.run_until(clock.now()) if c.action == "create"]
    patients = sorted({c.patient_id for c in created if c.patient_id} & set(patient_ids(sandbox)))
    patients = patients[:2]  # the live answers spend the hour's calls
    new: list[str] = []
    for url in searches(runtime, patients):
        mirrored = by_id(await all_pages(fhir, url))
        new += [
            key for key in by_id(await all_pages(fhir, url, headers=LIVE)) if key not in mirrored
        ]
    # Resources read through a record the mirror holds (a coverage from the patient record)
    # are as fresh as that record: those whose own record is new are the vendor's alone.
    registry = runtime.service.registry
    new = [k for k in new if patient_of_id(registry, *k.split("/")) is None]
    assert new, "the vendor made records the mirror has not synced"
    for key in new:
        read = await fhir.get(f"/fhir/{key}")
        assert read.status_code == 200, key
        assert int(read.headers["X-Upstream-Calls"]) > 0
