"""EHR launch: an opaque `launch` value bound to a patient (and encounter) for a short time.

The EHR side (a logged-in practitioner, or an operator command) mints it; the app brings it
back to /auth/authorize, where it becomes the token's patient and encounter context.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlmodel import select

from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import LaunchContext

LAUNCH_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class Launch:
    launch: str
    patient_id: str
    encounter_id: str


class LaunchContexts:
    def __init__(self, database: Database, clock: Clock, fhir_base: str):
        self._database = database
        self._clock = clock
        self._fhir_base = fhir_base

    def create(self, patient_id: str, encounter_id: str = "", created_by: str = "") -> Launch:
        value = secrets.token_urlsafe(24)
        with self._database.session() as session:
            session.add(
                LaunchContext(
                    launch=value,
                    patient_id=patient_id,
                    encounter_id=encounter_id,
                    created_by=created_by,
                    expires_at=self._clock.now() + LAUNCH_LIFETIME,
                )
            )
            session.commit()
        return Launch(value, patient_id, encounter_id)

    def resolve(self, value: str) -> Launch | None:
        if not value:
            return None
        with self._database.session() as session:
            row = session.exec(select(LaunchContext).where(LaunchContext.launch == value)).first()
        if row is None or _aware(row.expires_at) <= self._clock.now():
            return None
        return Launch(row.launch, row.patient_id, row.encounter_id)

    def app_launch_url(self, launch_uri: str, launch: Launch) -> str:
        """`<launch_uri>?iss=<FHIR base>&launch=<value>`, keeping the URI's own query."""
        parts = urlsplit(launch_uri)
        extra = urlencode({"iss": self._fhir_base, "launch": launch.launch})
        query = f"{parts.query}&{extra}" if parts.query else extra
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
