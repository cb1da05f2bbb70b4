"""Collecting what facade serves, type by type: practice-wide searches for the practice
types, one search per sandbox patient for the patient-compartment types."""

from __future__ import annotations

from typing import Any

import httpx

from facade.core.compartment import CompartmentMapping
from tests.conftest import all_pages
from tests.vendors import ALL_VENDORS, registry

#: The types searched one patient at a time (the same for every vendor that serves them).
PATIENT_COMPARTMENT = frozenset(
    m.resource_type
    for name in ALL_VENDORS
    for m in registry(name)
    if isinstance(m, CompartmentMapping)
)


def patient_of(resource: dict[str, Any]) -> str | None:
    for key in ("subject", "patient", "beneficiary"):
        reference = (
            resource.get(key, {}).get("reference", "")
            if isinstance(resource.get(key), dict)
            else ""
        )
        if reference.startswith("Patient/"):
            return reference.split("/", 1)[1]
    return None


async def every_resource(
    client: httpx.AsyncClient, resource_type: str, patient_ids: list[str], count: int = 100
) -> list[dict[str, Any]]:
    if resource_type not in PATIENT_COMPARTMENT:
        return await all_pages(client, f"/fhir/{resource_type}?_count={count}")
    found: list[dict[str, Any]] = []
    for patient_id in patient_ids:
        found += await all_pages(
            client, f"/fhir/{resource_type}?patient={patient_id}&_count={count}"
        )
    return found
