"""Where export jobs live: a small interface (JobStore) and its sqlmodel implementation.

The worker and routes only use JobStore, so a distributed engine (PostgreSQL rows claimed by
several workers, or a task queue's own store) can take over without touching the export
body. Datetimes come back timezone-aware (UTC) whatever the database keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlmodel import col, delete, select

from facade.bulk.models import (
    BulkGroup,
    BulkGroupMember,
    EndpointStatistic,
    ExportFile,
    ExportJob,
    ExportPart,
)
from facade.store.database import Database

ACTIVE_STATES = ("queued", "running", "paused")
FINAL_STATES = ("completed", "failed", "cancelled", "expired")


def aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class JobStore(Protocol):
    def add_job(self, job: ExportJob, parts: Sequence[ExportPart]) -> None: ...
    def job(self, job_id: str) -> ExportJob | None: ...
    def save_job(self, job: ExportJob) -> None: ...
    def parts(self, job_id: str) -> list[ExportPart]: ...
    def save_part(self, part: ExportPart) -> None: ...
    def active_jobs(self) -> list[ExportJob]: ...
    def add_files(self, files: Sequence[ExportFile]) -> None: ...
    def files(self, job_id: str) -> list[ExportFile]: ...
    def jobs_expiring_before(self, moment: datetime) -> list[ExportJob]: ...
    def statistic(self, listing: str) -> EndpointStatistic | None: ...
    def save_statistic(self, listing: str, records: int, pages: int, at: datetime) -> None: ...


class SqlJobStore:
    def __init__(self, database: Database):
        self._database = database

    def add_job(self, job: ExportJob, parts: Sequence[ExportPart]) -> None:
        with self._database.session() as session:
            session.add(job)
            for part in parts:
                session.add(part)
            session.commit()

    def job(self, job_id: str) -> ExportJob | None:
        with self._database.session() as session:
            found = session.get(ExportJob, job_id)
            return _aware_job(found) if found else None

    def save_job(self, job: ExportJob) -> None:
        with self._database.session() as session:
            session.merge(job)
            session.commit()

    def parts(self, job_id: str) -> list[ExportPart]:
        with self._database.session() as session:
            statement = (
                select(ExportPart).where(ExportPart.job_id == job_id).order_by(col(ExportPart.seq))
            )
            return list(session.exec(statement).all())

    def save_part(self, part: ExportPart) -> None:
        with self._database.session() as session:
            session.merge(part)
            session.commit()

    def active_jobs(self) -> list[ExportJob]:
        with self._database.session() as session:
            statement = (
                select(ExportJob)
                .where(col(ExportJob.state).in_(ACTIVE_STATES))
                .order_by(col(ExportJob.created_at))
            )
            return [_aware_job(j) for j in session.exec(statement).all()]

    def add_files(self, files: Sequence[ExportFile]) -> None:
        with self._database.session() as session:
            for item in files:
                session.add(item)
            session.commit()

    def files(self, job_id: str) -> list[ExportFile]:
        with self._database.session() as session:
            statement = (
                select(ExportFile).where(ExportFile.job_id == job_id).order_by(col(ExportFile.id))
            )
            return list(session.exec(statement).all())

    def jobs_expiring_before(self, moment: datetime) -> list[ExportJob]:
        with self._database.session() as session:
            statement = select(ExportJob).where(
                ExportJob.state == "completed", col(ExportJob.expires_at).is_not(None)
            )
            jobs = [_aware_job(j) for j in session.exec(statement).all()]
        return [j for j in jobs if j.expires_at is not None and j.expires_at <= moment]

    def statistic(self, listing: str) -> EndpointStatistic | None:
        with self._database.session() as session:
            statement = select(EndpointStatistic).where(EndpointStatistic.listing == listing)
            return session.exec(statement).first()

    def save_statistic(self, listing: str, records: int, pages: int, at: datetime) -> None:
        with self._database.session() as session:
            statement = select(EndpointStatistic).where(EndpointStatistic.listing == listing)
            found = session.exec(statement).first() or EndpointStatistic(
                listing=listing, updated_at=at
            )
            found.records, found.pages, found.updated_at = records, pages, at
            session.add(found)
            session.commit()


def _aware_job(job: ExportJob) -> ExportJob:
    for name in (
        "resume_at",
        "transaction_time",
        "created_at",
        "updated_at",
        "completed_at",
        "expires_at",
    ):
        setattr(job, name, aware(getattr(job, name)))
    return job


class GroupStore:
    """Operator-defined Groups and their members (vendor patient ids)."""

    def __init__(self, database: Database):
        self._database = database

    def save(self, group: BulkGroup, members: Sequence[str]) -> None:
        with self._database.session() as session:
            session.merge(group)
            session.exec(delete(BulkGroupMember).where(col(BulkGroupMember.group_id) == group.id))
            for patient_id in dict.fromkeys(members):
                session.add(BulkGroupMember(group_id=group.id, patient_id=patient_id))
            session.commit()

    def get(self, group_id: str) -> tuple[BulkGroup, list[str]] | None:
        with self._database.session() as session:
            group = session.get(BulkGroup, group_id)
            if group is None:
                return None
            statement = (
                select(BulkGroupMember)
                .where(BulkGroupMember.group_id == group_id)
                .order_by(col(BulkGroupMember.id))
            )
            return group, [m.patient_id for m in session.exec(statement).all()]

    def all(self) -> list[tuple[BulkGroup, list[str]]]:
        with self._database.session() as session:
            ids = [g.id for g in session.exec(select(BulkGroup).order_by(col(BulkGroup.id))).all()]
        found = [self.get(i) for i in ids]
        return [f for f in found if f is not None]
