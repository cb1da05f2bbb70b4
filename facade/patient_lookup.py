"""Whether a patient id names a patient at the vendor, for the operator's commands
(`facade launch --patient`, `facade user add --patient`): one vendor call, never a search.

The vendor is the one `facade serve` uses with the same data directory: the stored
connection, or the embedded sandbox rebuilt from the running server's size and seed.
"""

from __future__ import annotations

import asyncio
import re

from facade.errors import FacadeError
from facade.settings import Settings
from facade.store.served_base import ServedBase
from facade.upstream.budget import metered

#: A FHIR id (R4 `id` datatype); anything else is refused before any vendor call.
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class PatientUnknown(Exception):
    """The patient id names no patient, or the vendor could not be asked; the message says
    which, for the operator."""


def check_patient(settings: Settings, served: ServedBase | None, patient_id: str) -> int:
    """The vendor calls spent (one) finding that the vendor holds a patient with this id;
    raises PatientUnknown when it does not."""
    if not _FHIR_ID.match(patient_id):
        raise PatientUnknown(f"{patient_id!r} is not a patient id")
    if served is not None:
        # What the running server serves: its public base (the plain-HTTP rule depends on
        # it) and, on the embedded sandbox, the same size and seed.
        settings = settings.with_overrides(public_base_url=served.base_url)
        if served.sandbox_patients:
            settings = settings.with_overrides(
                sandbox_patients=served.sandbox_patients, sandbox_seed=served.sandbox_seed
            )
    from facade.runtime import InsecureConfiguration

    try:
        found, calls = asyncio.run(_vendor_has_patient(settings, patient_id))
    except FacadeError as exc:
        raise PatientUnknown(
            f"could not ask the EHR about Patient/{patient_id}: {exc.message}"
        ) from None
    except InsecureConfiguration as exc:
        raise PatientUnknown(str(exc)) from None
    if not found:
        raise PatientUnknown(f"the EHR has no patient with id {patient_id!r}")
    return calls


async def _vendor_has_patient(settings: Settings, patient_id: str) -> tuple[bool, int]:
    from facade.runtime import build_runtime

    runtime = await build_runtime(settings)
    try:
        with metered() as meter:
            record = await runtime.client.get_record(
                "patients", patient_id, reason="operator command: does the patient exist"
            )
    finally:
        await runtime.aclose()
    return record is not None, meter.count
