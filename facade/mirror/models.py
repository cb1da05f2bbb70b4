"""Tables of the mirror: vendor records as the vendor sent them, how far each listing is
synced, the webhook deliveries already taken and the records they said changed. Only keys
and times are stored in the clear (they are indexed and carry no PHI); a record's body is
only ever stored sealed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class MirrorRecord(SQLModel, table=True):
    """One vendor record, keyed by connection, endpoint and the vendor's id."""

    __tablename__ = "mirror_record"
    __table_args__ = (
        UniqueConstraint("connection", "endpoint", "vendor_id", name="uq_mirror_record_key"),
        Index("ix_mirror_record_patient", "connection", "endpoint", "patient_id"),
        # A scan pages through one endpoint by id; without this index each page would sort
        # the endpoint's whole set again.
        Index("ix_mirror_record_scan", "connection", "endpoint", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: The vendor connection's key (today the vendor's name).
    connection: str = Field(max_length=100)
    endpoint: str = Field(max_length=100)
    vendor_id: str = Field(max_length=100)
    #: The vendor's patient key, for a chart row; None for records outside a chart.
    patient_id: str | None = Field(default=None, max_length=100)
    #: When the vendor last changed the record, if the vendor says. UTC.
    vendor_updated_at: datetime | None = None
    #: When facade fetched this version. UTC.
    fetched_at: datetime
    #: AES-GCM nonce || ciphertext of the record's JSON (facade/mirror/cipher.py).
    body_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MirrorWatermark(SQLModel, table=True):
    """How far one vendor listing is synced, and where its backfill resumes."""

    __tablename__ = "mirror_watermark"
    __table_args__ = (
        UniqueConstraint("connection", "endpoint", "params_key", name="uq_mirror_watermark_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    endpoint: str = Field(max_length=100)
    #: The listing's canonical identity (its parameters), "" for the plain listing.
    params_key: str = Field(default="", max_length=500)
    #: Every change made before this moment is in the mirror. UTC.
    synced_through: datetime | None = None
    #: Where an unfinished backfill resumes (JSON); None when none is under way. Once the
    #: listing is complete: where its re-reads in rotation go on, if it has any.
    backfill_cursor: str | None = None
    #: The listing has been backfilled at least once.
    complete: bool = False
    records: int = 0
    calls_spent: int = 0
    updated_at: datetime


class MirrorDelivery(SQLModel, table=True):
    """A webhook delivery taken, so that a redelivery of it is recognised."""

    __tablename__ = "mirror_delivery"
    __table_args__ = (UniqueConstraint("connection", "delivery_id", name="uq_mirror_delivery_key"),)

    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    delivery_id: str = Field(max_length=200)
    received_at: datetime = Field(index=True)


class MirrorHint(SQLModel, table=True):
    """A record a vendor said changed (a webhook event), waiting for the sync to refresh it.

    One row per record: a second event about a record not yet refreshed only updates the
    row, so the table is bounded by the records, not by how often the vendor speaks."""

    __tablename__ = "mirror_hint"
    __table_args__ = (
        UniqueConstraint("connection", "endpoint", "vendor_id", name="uq_mirror_hint_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection: str = Field(max_length=100)
    endpoint: str = Field(max_length=100)
    vendor_id: str = Field(max_length=100)
    #: The vendor's patient key, when the event names one.
    patient_id: str | None = Field(default=None, max_length=100)
    #: The vendor's event name (the latest one, when several arrived).
    event: str = Field(max_length=100)
    #: When the latest event about the record arrived. UTC.
    received_at: datetime
