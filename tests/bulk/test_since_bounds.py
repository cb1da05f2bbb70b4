"""A bulk export's _since at the ends of the calendar: an export, never a 500 (the vendor's
`since` is a day earlier, which year 1 does not have)."""

from __future__ import annotations

import httpx

from facade.bulk.exports import BulkExports
from tests.bulk.conftest import download, export
from tests.vendors import SANDBOX_PATIENTS


async def test_export_since_the_last_second_of_the_calendar_is_empty(
    fhir: httpx.AsyncClient, exports: BulkExports
) -> None:
    manifest = await export(
        fhir, exports, "$export", params={"_type": "Patient", "_since": "9999-12-31T23:59:59Z"}
    )
    assert manifest["output"] == []


async def test_export_since_before_year_one_exports_everything(
    fhir: httpx.AsyncClient, exports: BulkExports
) -> None:
    manifest = await export(
        fhir,
        exports,
        "$export",
        params={"_type": "Patient", "_since": "0001-01-01T00:00:00+14:00"},
    )
    patients = (await download(fhir, manifest)).get("Patient", [])
    assert len(patients) == SANDBOX_PATIENTS
