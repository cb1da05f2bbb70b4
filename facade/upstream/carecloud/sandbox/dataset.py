"""The CareCloud sandbox's records: one business entity, its providers, locations, patients,
appointments and encounters (each with its nested chart), plus what writes add (claims).

Records are the JSON bodies the API serves, kept as plain dicts; lookups by id go through
indexes rebuilt whenever a list grows or `remove` takes a record out. It must never hold FHIR
or anything the API hides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from facade.upstream.carecloud.sandbox.context import Record


@dataclass
class CareCloudDataset:
    business_entity: Record
    user: Record
    providers: list[Record]
    locations: list[Record]
    patients: list[Record]
    appointments: list[Record]
    encounters: list[Record]
    #: Plan benefits per insurance id (copay, deductible): what /eligibility answers with.
    benefits: dict[int, Record] = field(default_factory=dict)
    claims: list[Record] = field(default_factory=list)
    _indexes: dict[str, tuple[int, dict[Any, Record]]] = field(
        default_factory=dict, init=False, repr=False
    )

    def _index(self, name: str) -> dict[Any, Record]:
        records: list[Record] = getattr(self, name)
        cached = self._indexes.get(name)
        if cached is None or cached[0] != len(records):
            cached = (len(records), {record["id"]: record for record in records})
            self._indexes[name] = cached
        return cached[1]

    def remove(self, name: str, record_id: Any) -> Record | None:
        """Take a record out of the `name` list (a deletion): gone from lists and lookups."""
        records: list[Record] = getattr(self, name)
        found = self._index(name).get(record_id)
        if found is None:
            return None
        del records[next(i for i, record in enumerate(records) if record is found)]
        # A removal followed by an append leaves the length as it was: forget the index.
        self._indexes.pop(name, None)
        return found

    def patient(self, patient_id: str) -> Record | None:
        return self._index("patients").get(patient_id)

    def appointment(self, appointment_id: str) -> Record | None:
        return self._index("appointments").get(appointment_id)

    def encounter(self, encounter_id: str) -> Record | None:
        return self._index("encounters").get(encounter_id)

    def provider(self, provider_id: int) -> Record | None:
        return self._index("providers").get(provider_id)

    def location(self, location_id: int) -> Record | None:
        return self._index("locations").get(location_id)

    def claim(self, claim_id: str) -> Record | None:
        return self._index("claims").get(claim_id)

    def encounters_of(self, patient_id: str) -> list[Record]:
        return [e for e in self.encounters if e["patient_id"] == patient_id]

    def as_json(self) -> dict[str, Any]:
        """Everything, in a JSON-ready shape (determinism tests compare its bytes)."""
        return {
            "business_entity": self.business_entity,
            "user": self.user,
            "providers": self.providers,
            "locations": self.locations,
            "patients": self.patients,
            "appointments": self.appointments,
            "encounters": self.encounters,
            "benefits": {str(key): value for key, value in sorted(self.benefits.items())},
            "claims": self.claims,
        }
