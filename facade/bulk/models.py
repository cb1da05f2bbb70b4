"""Tables of Bulk $export state: jobs, their parts (one vendor listing each, with its
checkpoint), the files they wrote, and operator-defined Groups. Ids and counts only: no
record content is ever stored here."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class ExportJob(SQLModel, table=True):
    """One kick-off. `state` moves queued → running ⇄ paused → completed | failed, or
    → cancelled from any of them; `expired` once its files are deleted."""

    __tablename__ = "export_job"

    id: str = Field(primary_key=True, max_length=40)
    client_id: str = Field(index=True, max_length=100)
    #: "system", "patient" or "group".
    level: str = Field(max_length=10)
    group_id: str = Field(default="", max_length=100)
    #: The kick-off URL as the client sent it (the manifest's `request`).
    request_url: str
    #: The parsed kick-off parameters (JSON of ExportRequest).
    parameters: str
    #: The types the client's token may export (JSON list), checked again at run time.
    granted_types: str = ""
    state: str = Field(default="queued", index=True, max_length=12)
    phase: str = Field(default="planning", max_length=40)
    estimated_calls: int = 0
    calls_spent: int = 0
    resources_written: int = 0
    #: When the job may continue after the vendor's quota ran out.
    resume_at: datetime | None = None
    failure: str = ""
    transaction_time: datetime
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    expires_at: datetime | None = None


class ExportPart(SQLModel, table=True):
    """One unit of work: a vendor listing (practice-wide, or one patient's) that yields one
    resource type. `checkpoint` (JSON) holds the next vendor page URL and the state of the
    export's files (which all parts share) after the last page written, so a restart resumes
    exactly there."""

    __tablename__ = "export_part"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(index=True, max_length=40)
    seq: int
    resource_type: str = Field(max_length=64)
    #: Source name (compartment types) or "" (practice types).
    source: str = Field(default="", max_length=64)
    #: "practice" (listed practice-wide) or "patients" (one listing per patient).
    mode: str = Field(max_length=10)
    estimated_calls: int = 0
    #: "pending", "done", "failed" or "skipped".
    state: str = Field(default="pending", max_length=10)
    checkpoint: str = ""
    error: str = ""


class ExportFile(SQLModel, table=True):
    """A finished output (or error) file of a job."""

    __tablename__ = "export_file"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(index=True, max_length=40)
    name: str = Field(max_length=200)
    resource_type: str = Field(max_length=64)
    #: "output" or "error".
    kind: str = Field(max_length=10)
    count: int = 0
    size: int = 0


class EndpointStatistic(SQLModel, table=True):
    """How many records a practice-wide listing returned last time (to estimate plans)."""

    __tablename__ = "export_endpoint_stat"

    id: int | None = Field(default=None, primary_key=True)
    listing: str = Field(index=True, unique=True, max_length=200)
    records: int = 0
    pages: int = 0
    updated_at: datetime


class BulkGroup(SQLModel, table=True):
    """An operator-defined Group (e.g. a payer's attribution list)."""

    __tablename__ = "bulk_group"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    created_by: str = Field(default="", max_length=100)
    created_at: datetime
    updated_at: datetime


class BulkGroupMember(SQLModel, table=True):
    __tablename__ = "bulk_group_member"

    id: int | None = Field(default=None, primary_key=True)
    group_id: str = Field(index=True, max_length=64)
    patient_id: str = Field(max_length=64)
