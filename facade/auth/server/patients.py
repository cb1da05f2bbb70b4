"""The patient picker's view of the FHIR service: find patients by name, check an id.

It asks the service with facade's internal grant (the practitioner picking is already
logged in; what the app may then read is decided by the token it gets)."""

from __future__ import annotations

from typing import Any, Protocol

from facade.auth.grant import INTERNAL
from facade.auth.server.authority import PatientChoice
from facade.errors import FacadeError
from facade.fhir.query import parse_query

PICKER_PAGE_SIZE = 20


class _Service(Protocol):
    async def search(self, resource_type: str, query: Any, *, grant: Any) -> Any: ...

    async def read(self, resource_type: str, resource_id: str, *, grant: Any) -> Any: ...


class ServicePatientDirectory:
    def __init__(self, service: _Service):
        self._service = service

    async def search(self, text: str) -> list[PatientChoice]:
        query = parse_query([("name", text), ("_count", str(PICKER_PAGE_SIZE))])
        try:
            result = await self._service.search("Patient", query, grant=INTERNAL)
        except FacadeError:
            return []
        entries = result.bundle.get("entry", [])
        return [
            PatientChoice(str(e["resource"]["id"]), _display(e["resource"]))
            for e in entries
            if e.get("resource", {}).get("resourceType") == "Patient"
        ]

    async def exists(self, patient_id: str) -> bool:
        try:
            await self._service.read("Patient", patient_id, grant=INTERNAL)
        except FacadeError:
            return False
        return True


def _display(patient: dict[str, Any]) -> str:
    for name in patient.get("name", []):
        parts = [*name.get("given", []), name.get("family", "")]
        text = " ".join(p for p in parts if p)
        if text:
            return text
    return "(no name)"
