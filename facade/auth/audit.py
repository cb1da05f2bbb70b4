"""The audit log: every FHIR interaction and authorization event, by ids only.

Records hold who (client, user), which patient, what (type, interaction, id), how many
results and vendor calls, and the outcome. Never names, values or tokens. Operators read
them with `facade audit` or as FHIR AuditEvent with a system scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import col, select

from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import AuditRecord


@dataclass
class AuditEntry:
    """What a request records, filled in as it goes (routes set it on request.state)."""

    interaction: str
    resource_type: str = ""
    resource_id: str = ""
    patient_ids: list[str] = field(default_factory=list)
    result_count: int = 0
    client_id: str = ""
    username: str = ""


class AuditLog:
    def __init__(self, database: Database, clock: Clock):
        self._database = database
        self._clock = clock

    def record(
        self, entry: AuditEntry, *, outcome: str, vendor_calls: int, source_ip: str = ""
    ) -> None:
        # One row per patient touched, so `facade audit --patient X` finds every access to X;
        # written in one executemany (a 100-patient page is one statement, not 100 objects).
        now = self._clock.now()
        rows = [
            {
                "recorded_at": now,
                "interaction": entry.interaction,
                "client_id": entry.client_id,
                "username": entry.username,
                "patient_id": patient,
                "resource_type": entry.resource_type,
                "resource_id": entry.resource_id,
                "result_count": entry.result_count,
                "vendor_calls": vendor_calls,
                "outcome": outcome,
                "source_ip": source_ip,
            }
            for patient in entry.patient_ids or [""]
        ]
        with self._database.engine.begin() as connection:
            connection.execute(insert(AuditRecord), rows)

    def query(
        self,
        *,
        patient_id: str | None = None,
        client_id: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[AuditRecord]:
        statement = select(AuditRecord)
        if patient_id:
            statement = statement.where(AuditRecord.patient_id == patient_id)
        if client_id:
            statement = statement.where(AuditRecord.client_id == client_id)
        if since is not None:
            statement = statement.where(col(AuditRecord.recorded_at) >= since)
        statement = statement.order_by(col(AuditRecord.id)).offset(offset).limit(limit)
        with self._database.session() as session:
            return list(session.exec(statement).all())


_ACTION = {"read": "R", "search": "E", "operation": "E", "export": "E"}


def audit_event(record: AuditRecord) -> dict[str, Any]:
    """An AuditRecord as a FHIR R4 AuditEvent (RESTful operation)."""
    recorded = record.recorded_at
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(record.id),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [
            {
                "system": "http://hl7.org/fhir/restful-interaction",
                "code": "search-type" if record.interaction == "search" else record.interaction,
            }
        ]
        if record.interaction in ("read", "search")
        else [{"system": "urn:facade:audit-interaction", "code": record.interaction}],
        "action": _ACTION.get(record.interaction, "E"),
        "recorded": (recorded if recorded.tzinfo else recorded.replace(tzinfo=UTC)).isoformat(),
        "outcome": "0" if record.outcome == "success" else "4",
        "outcomeDesc": record.outcome,
        "agent": [
            {
                "who": {
                    "identifier": {"system": "urn:facade:client", "value": record.client_id or "-"}
                },
                "requestor": True,
            }
        ],
        "source": {"observer": {"display": "facade"}},
    }
    if record.username:
        event["agent"].append(
            {
                "who": {"identifier": {"system": "urn:facade:user", "value": record.username}},
                "requestor": False,
            }
        )
    if record.source_ip:
        event["agent"][0]["network"] = {"address": record.source_ip, "type": "2"}
    entities: list[dict[str, Any]] = []
    if record.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{record.patient_id}"},
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            }
        )
    if record.resource_type:
        what = f"{record.resource_type}/{record.resource_id}" if record.resource_id else None
        entity: dict[str, Any] = {
            "type": {"system": "http://hl7.org/fhir/resource-types", "code": record.resource_type},
            "detail": [
                {"type": "result-count", "valueString": str(record.result_count)},
                {"type": "vendor-calls", "valueString": str(record.vendor_calls)},
            ],
        }
        if what:
            entity["what"] = {"reference": what}
        entities.append(entity)
    if entities:
        event["entity"] = entities
    return event
