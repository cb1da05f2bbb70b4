"""The records a sandbox serves: plain DrChrono-shaped dicts, keyed by endpoint name.

The generator builds a dataset; the sandbox app serves it. Neither knows about FHIR.
Records hold every field, verbose-only ones included; the app strips those unless
`verbose=true` is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]

#: Every /api list endpoint the sandbox serves, by the name in its path (`/api/<name>`).
ENDPOINTS: tuple[str, ...] = (
    "patients",
    "doctors",
    "offices",
    "users",
    "custom_demographics",
    "appointments",
    "problems",
    "allergies",
    "medications",
    "procedures",
    "lab_orders",
    "lab_orders_summary",
    "lab_tests",
    "lab_results",
    "patient_vaccine_records",
    "clinical_notes",
    "documents",
    "care_plans",
    "implantable_devices",
    "patient_risk_assessments",
    "patient_physical_exams",
    "patient_interventions",
)


@dataclass
class SandboxDataset:
    """One practice group's data, as DrChrono would hold it."""

    practice_group_id: int
    practice_group_name: str
    #: The /api/users id of the user who authorizes apps (the practice's primary doctor).
    current_user_id: int
    records: dict[str, list[Record]] = field(default_factory=dict)

    def endpoint(self, name: str) -> list[Record]:
        return self.records.setdefault(name, [])

    def by_id(self, name: str, record_id: str) -> Record | None:
        for record in self.endpoint(name):
            if str(record["id"]) == record_id:
                return record
        return None
