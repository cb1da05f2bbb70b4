"""The mirror's store: vendor records as the vendor sent them, per connection and endpoint,
with their bodies sealed; how far each listing is synced; the webhook deliveries taken and
the refresh hints they brought.

A write never takes a record back in time: one upsert statement compares the stored
version with the incoming one, so an out-of-order or repeated delivery, or two writers
racing, cannot replace a newer version with an older one. A scan pages by id in short
transactions, so an export holds neither every record in memory nor a read transaction for
its whole length. Calls block: code on the event loop goes through anyio.to_thread. Nothing
here logs a body or a key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import islice
from threading import Lock
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Delete,
    Integer,
    MetaData,
    Row,
    Select,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel, col

from facade.clock import Clock
from facade.mirror.cipher import RecordCipher, sealed_version
from facade.mirror.models import MirrorDelivery, MirrorHint, MirrorRecord, MirrorWatermark
from facade.store.database import Database

#: Records taken from a caller's iterable at a time (sealed, then sent in one executemany), and
#: ids per DELETE: memory stays bounded however many a call brings.
WRITE_BATCH = 500

#: How many opened record bodies a store keeps for its serving reads (at most about 50 MB:
#: the largest records the sandboxes serve, patients with every detail, take about 12 KB
#: each once parsed).
OPENED_BODIES = 4096


#: A record on its way in: vendor id, patient id, vendor update time, body (a VendorRecord).
Incoming = tuple[str, str | None, datetime | None, dict[str, Any]]


class VendorRecord(NamedTuple):
    """A record to keep, as the vendor sent it."""

    vendor_id: str
    patient_id: str | None
    #: When the vendor last changed it (timezone-aware), if the vendor says.
    vendor_updated_at: datetime | None
    body: dict[str, Any]


@dataclass(frozen=True)
class StoredRecord:
    connection: str
    endpoint: str
    vendor_id: str
    patient_id: str | None
    vendor_updated_at: datetime | None
    fetched_at: datetime
    #: The vendor's record (PHI): kept out of repr so no log line or traceback shows it.
    body: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Watermark:
    """How far one listing (an endpoint with canonical parameters) is synced."""

    connection: str
    endpoint: str
    params_key: str = ""
    synced_through: datetime | None = None
    #: Where an unfinished backfill resumes (JSON-serialisable); None when none is running.
    #: Once the listing is backfilled, the sync may keep its own position here (where a
    #: listing re-read patient by patient in rotation goes on).
    backfill_cursor: dict[str, Any] | None = None
    complete: bool = False
    records: int = 0
    calls_spent: int = 0
    #: Set by the store when saved.
    updated_at: datetime | None = None


@dataclass(frozen=True)
class EndpointStatus:
    """One endpoint of a connection, for `facade mirror status`."""

    endpoint: str
    #: Records held now.
    records: int
    #: Listings with a watermark.
    listings: int
    #: Every listing has been backfilled at least once.
    complete: bool
    #: The stalest listing's synced-through time; None while any listing has none.
    synced_through: datetime | None
    calls_spent: int


#: A refresh hint on its way in: endpoint, vendor id, patient id, event (a RefreshHint).
IncomingHint = tuple[str, str, str | None, str]


@dataclass(frozen=True)
class Hint:
    """A record the vendor said changed, waiting to be refreshed."""

    connection: str
    endpoint: str
    vendor_id: str
    patient_id: str | None
    event: str
    received_at: datetime


#: Per connection and endpoint, how often its records changed (shared databases only).
_GENERATIONS = Table(
    "mirror_generation",
    MetaData(),
    Column("connection", String(100), primary_key=True),
    Column("endpoint", String(100), primary_key=True),
    Column("generation", BigInteger, nullable=False),
)
#: The generation row a purge of the whole connection bumps.
_PURGE = "*"


class MirrorStore:
    def __init__(
        self, database: Database, key: bytes, clock: Clock, *, opened_bodies: int = OPENED_BODIES
    ):
        """`key` is the deployment key (facade.store.secrets.deployment_key); the serving
        reads keep up to `opened_bodies` opened record bodies in memory."""
        self._database = database
        self._cipher = RecordCipher(key)
        self._clock = clock
        #: Bodies the serving reads (page, for_patient) opened, by row and sealed version
        #: (a rewritten record is another version), least recently served first.
        self._opened: OrderedDict[tuple[str, str, str, bytes], dict[str, Any]] = OrderedDict()
        self._opened_bodies = opened_bodies
        self._opened_lock = Lock()
        #: Per (connection, endpoint), how many times its records were written or deleted by
        #: this store (what readers that index records in memory compare).
        self._generations: dict[tuple[str, str], int] = {}
        self._purges = 0

    @property
    def clock(self) -> Clock:
        """The clock its fetch and save times are read from (the sync reads the same one)."""
        return self._clock

    # -- records ---------------------------------------------------------------------------

    def put_many(
        self,
        connection: str,
        endpoint: str,
        records: Iterable[Incoming],
        *,
        fetched_at: datetime | None = None,
    ) -> int:
        """Keep `records` (VendorRecord tuples), in one transaction; how many were written.

        A record replaces the stored one unless it is older: by the vendor's update time
        when both have one, else by fetch time (`fetched_at`: when the vendor answered,
        default now), so a slow response written late cannot undo a fresher one. Records
        are read from `records` a batch at a time; a record repeated in the batch is
        applied in order, as if written one after another."""
        fetched = _utc(fetched_at or self._clock.now(), "fetched_at")
        written = 0
        source = iter(records)
        with self._database.engine.begin() as db:
            while batch := list(islice(source, WRITE_BATCH)):
                for distinct in _without_repeats(batch):
                    rows = [self._record_row(connection, endpoint, r, fetched) for r in distinct]
                    written += len(db.execute(_upsert_records(db), rows).all())
        if written:
            self._changed(connection, endpoint)
        return written

    def get(self, connection: str, endpoint: str, vendor_id: str) -> StoredRecord | None:
        statement = _records(connection, endpoint).where(col(MirrorRecord.vendor_id) == vendor_id)
        with self._database.engine.connect() as db:
            row = db.execute(statement).first()
        return None if row is None else self._stored(row)

    def for_patient(self, connection: str, endpoint: str, patient_id: str) -> list[StoredRecord]:
        statement = (
            _records(connection, endpoint)
            .where(col(MirrorRecord.patient_id) == patient_id)
            .order_by(col(MirrorRecord.id))
        )
        with self._database.engine.connect() as db:
            rows = db.execute(statement).all()
        return [self._served(row) for row in rows]

    def scan(self, connection: str, endpoint: str, batch: int = 500) -> Iterator[StoredRecord]:
        """Every record of the endpoint, in id order, `batch` rows per query (keyset paging:
        each page starts after the last id seen, so records written meanwhile neither repeat
        nor shift the ones not yet read)."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        after = 0
        while True:
            statement = (
                _records(connection, endpoint)
                .where(col(MirrorRecord.id) > after)
                .order_by(col(MirrorRecord.id))
                .limit(batch)
            )
            with self._database.engine.connect() as db:
                rows = db.execute(statement).all()
            for row in rows:
                yield self._stored(row)
            if len(rows) < batch:
                return
            after = rows[-1].id

    def page(
        self,
        connection: str,
        endpoint: str,
        *,
        after: int,
        limit: int,
        keep: Callable[[StoredRecord], bool] = lambda record: True,
    ) -> tuple[list[StoredRecord], int | None]:
        """Up to `limit` records `keep` keeps, in id order from the store's position `after`
        (0: the start), and the position the next page starts from (None: none left)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        kept: list[StoredRecord] = []
        while True:
            # One row more than the page: when it is there, so is a next page (no second query).
            bound = {"connection": connection, "endpoint": endpoint, "after": after}
            with self._database.engine.connect() as db:
                rows = db.execute(_PAGE, {**bound, "rows": limit + 1}).all()
            for position, row in enumerate(rows[:limit]):
                record = self._served(row)
                if keep(record):
                    kept.append(record)
                after = row.id
                if len(kept) == limit:
                    more = position + 1 < len(rows) or self._has_after(connection, endpoint, after)
                    return kept, after if more else None
            if len(rows) <= limit:
                return kept, None

    def _has_after(self, connection: str, endpoint: str, after: int) -> bool:
        statement = (
            select(col(MirrorRecord.id))
            .where(_endpoint_of(connection, endpoint), col(MirrorRecord.id) > after)
            .limit(1)
        )
        with self._database.engine.connect() as db:
            return db.execute(statement).first() is not None

    def ids(self, connection: str, endpoint: str) -> set[str]:
        """The vendor ids held (for reconciling deletes); no body is read."""
        statement = select(col(MirrorRecord.vendor_id)).where(_endpoint_of(connection, endpoint))
        with self._database.engine.connect() as db:
            return set(db.execute(statement).scalars())

    def fetched_by_patient(self, connection: str, endpoint: str) -> dict[str, datetime]:
        """Per patient with records of the endpoint, when the newest of them was fetched: when
        the patient's listing was last read (a sync re-reading patients in rotation reads the
        stalest first). One grouped query over the patient index; no body is read."""
        statement = (
            select(col(MirrorRecord.patient_id), func.max(col(MirrorRecord.fetched_at)))
            .where(_endpoint_of(connection, endpoint), col(MirrorRecord.patient_id).is_not(None))
            .group_by(col(MirrorRecord.patient_id))
        )
        with self._database.engine.connect() as db:
            rows = db.execute(statement).all()
        return {str(patient): _utc_from_db(fetched) for patient, fetched in rows}

    def delete(self, connection: str, endpoint: str, vendor_ids: Iterable[str]) -> int:
        """Forget records the vendor no longer has; how many were held."""
        deleted = 0
        source = iter(vendor_ids)
        with self._database.engine.begin() as db:
            while batch := list(islice(source, WRITE_BATCH)):
                result = db.execute(
                    delete(MirrorRecord).where(
                        _endpoint_of(connection, endpoint), col(MirrorRecord.vendor_id).in_(batch)
                    )
                )
                deleted += result.rowcount
        if deleted:
            self._changed(connection, endpoint)
        return deleted

    def generation(self, connection: str, endpoint: str) -> int:
        """A number that changes whenever records of the endpoint are written or deleted:
        counted in memory by the one process of a SQLite deployment, in the database when
        several processes share it (one syncs, the others serve)."""
        if self._database.shared:
            with self._database.engine.connect() as db:
                counted = db.execute(
                    select(func.coalesce(func.sum(_GENERATIONS.c.generation), 0)).where(
                        _GENERATIONS.c.connection == connection,
                        _GENERATIONS.c.endpoint.in_((endpoint, _PURGE)),
                    )
                ).scalar_one()
            return int(counted)
        return self._purges + self._generations.get((connection, endpoint), 0)

    def _changed(self, connection: str, endpoint: str) -> None:
        key = (connection, endpoint)
        self._generations[key] = self._generations.get(key, 0) + 1
        if self._database.shared:
            insert = postgresql.insert(_GENERATIONS).values(
                connection=connection, endpoint=endpoint, generation=1
            )
            bump = insert.on_conflict_do_update(
                index_elements=[_GENERATIONS.c.connection, _GENERATIONS.c.endpoint],
                set_={"generation": _GENERATIONS.c.generation + 1},
            )
            with self._database.engine.begin() as db:
                db.execute(bump)

    # -- watermarks ------------------------------------------------------------------------

    def watermark(self, connection: str, endpoint: str, params_key: str = "") -> Watermark | None:
        statement = select(*_WATERMARK_COLUMNS).where(
            col(MirrorWatermark.connection) == connection,
            col(MirrorWatermark.endpoint) == endpoint,
            col(MirrorWatermark.params_key) == params_key,
        )
        with self._database.engine.connect() as db:
            row = db.execute(statement).first()
        return None if row is None else _watermark(row)

    def watermarks(self, connection: str) -> list[Watermark]:
        """Every listing's watermark of `connection`, by endpoint and listing (for progress)."""
        statement = (
            select(*_WATERMARK_COLUMNS)
            .where(col(MirrorWatermark.connection) == connection)
            .order_by(col(MirrorWatermark.endpoint), col(MirrorWatermark.params_key))
        )
        with self._database.engine.connect() as db:
            return [_watermark(row) for row in db.execute(statement).all()]

    def save_watermark(self, mark: Watermark) -> Watermark:
        """Create or replace the listing's watermark; it comes back with its save time."""
        saved = replace(
            mark,
            synced_through=(
                None if mark.synced_through is None else _utc(mark.synced_through, "synced_through")
            ),
            updated_at=_utc(self._clock.now(), "clock"),
        )
        values = {
            "connection": saved.connection,
            "endpoint": saved.endpoint,
            "params_key": saved.params_key,
            "synced_through": saved.synced_through,
            "backfill_cursor": (
                None
                if saved.backfill_cursor is None
                else orjson.dumps(saved.backfill_cursor).decode()
            ),
            "complete": saved.complete,
            "records": saved.records,
            "calls_spent": saved.calls_spent,
            "updated_at": saved.updated_at,
        }
        with self._database.engine.begin() as db:
            statement = _insert(db, MirrorWatermark).values(values)
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=["connection", "endpoint", "params_key"],
                    set_={name: statement.excluded[name] for name in values},
                )
            )
        return saved

    # -- webhook deliveries ----------------------------------------------------------------

    def seen_delivery(self, connection: str, delivery_id: str) -> bool:
        """Record a delivery as taken; True if it was taken before. One statement decides,
        so of two deliveries with the same id arriving at once exactly one is new."""
        with self._database.engine.begin() as db:
            return not self._claim(db, connection, delivery_id)

    def take_delivery(
        self, connection: str, delivery_id: str, hints: Iterable[IncomingHint]
    ) -> bool:
        """Record a delivery as taken and keep its hints, in one transaction; False (and
        nothing kept) if it was taken before. A failure keeps neither, so the vendor's
        redelivery is not mistaken for a duplicate of a delivery whose hints were lost."""
        with self._database.engine.begin() as db:
            if not self._claim(db, connection, delivery_id):
                return False
            self._add_hints(db, connection, hints)
            return True

    def _claim(self, db: Connection, connection: str, delivery_id: str) -> bool:
        """Insert the delivery's id; True if this statement inserted it (it is new)."""
        statement = (
            _insert(db, MirrorDelivery)
            .values(
                connection=connection,
                delivery_id=delivery_id,
                received_at=_utc(self._clock.now(), "clock"),
            )
            .on_conflict_do_nothing(index_elements=["connection", "delivery_id"])
            .returning(col(MirrorDelivery.id))
        )
        return db.execute(statement).first() is not None

    # -- refresh hints ---------------------------------------------------------------------

    def add_hints(self, connection: str, hints: Iterable[IncomingHint]) -> None:
        """Keep hints (RefreshHint tuples); a record already hinted keeps one row, with the
        latest event and arrival time."""
        with self._database.engine.begin() as db:
            self._add_hints(db, connection, hints)

    def take_hints(self, connection: str, limit: int = WRITE_BATCH) -> list[Hint]:
        """Remove and return up to `limit` hints, oldest first. One DELETE ... RETURNING
        decides, so two takers never both get a hint, and on PostgreSQL a taker skips the
        rows another is taking (SKIP LOCKED) rather than coming back empty while hints wait;
        SQLite runs writers one at a time. A hint taken and then lost by a crash is repaired
        by the next poll or reconcile, as a lost webhook is."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        oldest = (
            select(col(MirrorHint.id))
            .where(col(MirrorHint.connection) == connection)
            .order_by(col(MirrorHint.received_at), col(MirrorHint.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            delete(MirrorHint)
            .where(col(MirrorHint.id).in_(oldest.scalar_subquery()))
            .returning(*_HINT_COLUMNS)
        )
        with self._database.engine.begin() as db:
            rows = db.execute(statement).all()
        hints = [
            Hint(
                connection=row.connection,
                endpoint=row.endpoint,
                vendor_id=row.vendor_id,
                patient_id=row.patient_id,
                event=row.event,
                received_at=_utc_from_db(row.received_at),
            )
            for row in rows
        ]
        return sorted(hints, key=lambda hint: hint.received_at)

    def pending_hints(self, connection: str) -> int:
        """How many records wait for a refresh (for `facade mirror status`)."""
        statement = select(func.count()).where(col(MirrorHint.connection) == connection)
        with self._database.engine.connect() as db:
            return int(db.execute(statement).scalar_one())

    def _add_hints(self, db: Connection, connection: str, hints: Iterable[IncomingHint]) -> None:
        now = _utc(self._clock.now(), "clock")
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for endpoint, vendor_id, patient_id, event in hints:
            latest[(endpoint, vendor_id)] = {
                "connection": connection,
                "endpoint": endpoint,
                "vendor_id": vendor_id,
                "patient_id": patient_id,
                "event": event,
                "received_at": now,
            }
        if not latest:
            return
        statement = _insert(db, MirrorHint)
        db.execute(
            statement.on_conflict_do_update(
                index_elements=["connection", "endpoint", "vendor_id"],
                set_={
                    name: statement.excluded[name]
                    for name in ("patient_id", "event", "received_at")
                },
            ),
            list(latest.values()),
        )

    def forget_deliveries(self, received_before: datetime) -> int:
        """Drop delivery ids older than any redelivery the vendor would still make."""
        moment = _utc(received_before, "received_before")
        with self._database.engine.begin() as db:
            result = db.execute(
                delete(MirrorDelivery).where(col(MirrorDelivery.received_at) < moment)
            )
            return result.rowcount

    # -- the whole mirror ------------------------------------------------------------------

    def purge(self, connection: str | None = None) -> int:
        """Delete everything the mirror holds for `connection` (None: for every one): records,
        watermarks, deliveries and hints; how many records were deleted.

        On SQLite the deleted pages are overwritten and the write-ahead log emptied, so the
        sealed bodies leave the files too (as far as no reader still holds an older
        snapshot). On PostgreSQL the dead rows, sealed, remain until autovacuum reuses them."""
        with self._database.engine.begin() as db:
            secure = db.dialect.name == "sqlite"
            if secure:
                db.exec_driver_sql("PRAGMA secure_delete = ON")
            try:
                deleted = db.execute(_all_of(MirrorRecord, connection)).rowcount
                db.execute(_all_of(MirrorWatermark, connection))
                db.execute(_all_of(MirrorDelivery, connection))
                db.execute(_all_of(MirrorHint, connection))
            finally:
                if secure:
                    db.exec_driver_sql("PRAGMA secure_delete = OFF")
        if secure:
            with self._database.engine.connect() as db:
                db.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self._purges += 1
        if self._database.shared:  # the serving processes' indexes are of deleted records
            with self._database.engine.begin() as db:
                every = update(_GENERATIONS).values(generation=_GENERATIONS.c.generation + 1)
                if connection is not None:
                    every = every.where(_GENERATIONS.c.connection == connection)
                db.execute(every)
            if connection is not None:
                self._changed(connection, _PURGE)
        self.forget_opened()
        return deleted

    def status(self, connection: str) -> list[EndpointStatus]:
        """Per endpoint of `connection` (those with records or watermarks), by name."""
        counts = (
            select(col(MirrorRecord.endpoint), func.count())
            .where(col(MirrorRecord.connection) == connection)
            .group_by(col(MirrorRecord.endpoint))
        )
        marks = select(*_WATERMARK_COLUMNS).where(col(MirrorWatermark.connection) == connection)
        with self._database.engine.connect() as db:
            records = {str(name): int(count) for name, count in db.execute(counts).all()}
            listings = [_watermark(row) for row in db.execute(marks).all()]
        return [
            _endpoint_status(
                name, records.get(name, 0), [m for m in listings if m.endpoint == name]
            )
            for name in sorted(records.keys() | {m.endpoint for m in listings})
        ]

    def __repr__(self) -> str:
        return "MirrorStore(<key hidden>)"

    # -- rows ------------------------------------------------------------------------------

    def _record_row(
        self,
        connection: str,
        endpoint: str,
        record: Incoming,
        fetched_at: datetime,
    ) -> dict[str, Any]:
        vendor_id, patient_id, updated_at, body = record
        return {
            "connection": connection,
            "endpoint": endpoint,
            "vendor_id": vendor_id,
            "patient_id": patient_id,
            "vendor_updated_at": (
                None if updated_at is None else _utc(updated_at, "vendor_updated_at")
            ),
            "fetched_at": fetched_at,
            "body_enc": self._cipher.seal((connection, endpoint, vendor_id), body),
        }

    def _stored(
        self, row: Row[*tuple[Any, ...]], body: dict[str, Any] | None = None
    ) -> StoredRecord:
        return StoredRecord(
            connection=row.connection,
            endpoint=row.endpoint,
            vendor_id=row.vendor_id,
            patient_id=row.patient_id,
            vendor_updated_at=_aware(row.vendor_updated_at),
            fetched_at=_utc_from_db(row.fetched_at),
            body=body
            if body is not None
            else self._cipher.open((row.connection, row.endpoint, row.vendor_id), row.body_enc),
        )

    def _served(self, row: Row[*tuple[Any, ...]]) -> StoredRecord:
        """A record for an answer: its body opened once per sealed version while it stays
        among the `opened_bodies` most recently served. Only a body that opened (decrypted
        and authenticated, bound to this row) is kept, and only under this row's key and
        this sealing's nonce and tag, so a body moved or altered in the database still
        fails to open. Bodies are shared between answers: readers never change them (as
        with the vendor client's page cache)."""
        key = (row.connection, row.endpoint, row.vendor_id, sealed_version(row.body_enc))
        with self._opened_lock:
            body = self._opened.get(key)
            if body is not None:
                self._opened.move_to_end(key)
        if body is not None:
            return self._stored(row, body)
        record = self._stored(row)
        with self._opened_lock:
            self._opened[key] = record.body
            while len(self._opened) > self._opened_bodies:
                self._opened.popitem(last=False)
        return record

    def forget_opened(self) -> None:
        """Drop every opened body kept in memory (purge does; the benchmark's cold reads)."""
        with self._opened_lock:
            self._opened.clear()


#: What a StoredRecord is made of (and the id a scan pages by).
_RECORD_COLUMNS = (
    col(MirrorRecord.id),
    col(MirrorRecord.connection),
    col(MirrorRecord.endpoint),
    col(MirrorRecord.vendor_id),
    col(MirrorRecord.patient_id),
    col(MirrorRecord.vendor_updated_at),
    col(MirrorRecord.fetched_at),
    col(MirrorRecord.body_enc),
)
_WATERMARK_COLUMNS = (
    col(MirrorWatermark.connection),
    col(MirrorWatermark.endpoint),
    col(MirrorWatermark.params_key),
    col(MirrorWatermark.synced_through),
    col(MirrorWatermark.backfill_cursor),
    col(MirrorWatermark.complete),
    col(MirrorWatermark.records),
    col(MirrorWatermark.calls_spent),
    col(MirrorWatermark.updated_at),
)
_HINT_COLUMNS = (
    col(MirrorHint.connection),
    col(MirrorHint.endpoint),
    col(MirrorHint.vendor_id),
    col(MirrorHint.patient_id),
    col(MirrorHint.event),
    col(MirrorHint.received_at),
)


#: A page of one endpoint's records after a position (built once: a page is the hot path of
#: every search the mirror answers).
_PAGE = (
    select(*_RECORD_COLUMNS)
    .where(
        col(MirrorRecord.connection) == bindparam("connection"),
        col(MirrorRecord.endpoint) == bindparam("endpoint"),
        col(MirrorRecord.id) > bindparam("after"),
    )
    .order_by(col(MirrorRecord.id))
    .limit(bindparam("rows", type_=Integer))
)


def _records(connection: str, endpoint: str) -> Select[*tuple[Any, ...]]:
    return select(*_RECORD_COLUMNS).where(_endpoint_of(connection, endpoint))


def _endpoint_of(connection: str, endpoint: str) -> ColumnElement[bool]:
    return and_(col(MirrorRecord.connection) == connection, col(MirrorRecord.endpoint) == endpoint)


def _all_of(
    model: type[MirrorRecord | MirrorWatermark | MirrorDelivery | MirrorHint],
    connection: str | None,
) -> Delete:
    """DELETE of a mirror table's rows of one connection (None: of every connection)."""
    statement = delete(model)
    return statement if connection is None else statement.where(col(model.connection) == connection)


def _insert(db: Connection, model: type[SQLModel]) -> sqlite.Insert | postgresql.Insert:
    """INSERT with ON CONFLICT, which both engines have under the same SQL."""
    if db.dialect.name == "postgresql":
        return postgresql.insert(model)
    if db.dialect.name == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"the mirror has no upsert for {db.dialect.name}")


def _upsert_records(db: Connection) -> ReturningInsert[int | None]:
    """Insert a row, or replace the stored one unless it is newer; RETURNING names the rows
    written. The database compares, under the row's lock. Executed with many rows at once,
    SQLAlchemy sends them as multi-row VALUES from one cached compilation."""
    statement = _insert(db, MirrorRecord)
    new, old = statement.excluded, MirrorRecord
    timed = and_(col(old.vendor_updated_at).is_not(None), new.vendor_updated_at.is_not(None))
    not_older = or_(
        and_(timed, col(old.vendor_updated_at) <= new.vendor_updated_at),
        and_(not_(timed), col(old.fetched_at) <= new.fetched_at),
    )
    replaced = ("patient_id", "vendor_updated_at", "fetched_at", "body_enc")
    return statement.on_conflict_do_update(
        index_elements=["connection", "endpoint", "vendor_id"],
        set_={name: new[name] for name in replaced},
        where=not_older,
    ).returning(col(MirrorRecord.id))


def _without_repeats(
    batch: Sequence[Incoming],
) -> list[list[Incoming]]:
    """Split a batch into runs in which each vendor id appears once, keeping the order of a
    repeated id's versions: one statement may not touch a row twice (PostgreSQL refuses)."""
    runs: list[list[Incoming]] = []
    seen: list[set[str]] = []
    for record in batch:
        vendor_id = record[0]
        # After the last run that already has this id, so its versions stay in order.
        start = max((i + 1 for i, ids in enumerate(seen) if vendor_id in ids), default=0)
        if start == len(runs):
            runs.append([])
            seen.append(set())
        runs[start].append(record)
        seen[start].add(vendor_id)
    return runs


def _endpoint_status(name: str, records: int, listings: list[Watermark]) -> EndpointStatus:
    times = [m.synced_through for m in listings]
    synced = None if not times or None in times else min(t for t in times if t is not None)
    return EndpointStatus(
        endpoint=name,
        records=records,
        listings=len(listings),
        complete=bool(listings) and all(m.complete for m in listings),
        synced_through=synced,
        calls_spent=sum(m.calls_spent for m in listings),
    )


def _watermark(row: Row[*tuple[Any, ...]]) -> Watermark:
    return Watermark(
        connection=row.connection,
        endpoint=row.endpoint,
        params_key=row.params_key,
        synced_through=_aware(row.synced_through),
        backfill_cursor=None if row.backfill_cursor is None else orjson.loads(row.backfill_cursor),
        complete=row.complete,
        records=row.records,
        calls_spent=row.calls_spent,
        updated_at=_aware(row.updated_at),
    )


def _utc(moment: datetime, name: str) -> datetime:
    """A time on its way in: it must say its zone (a naive vendor time would be guessed)."""
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    """A time on its way out: SQLite hands back naive UTC."""
    return None if moment is None else _utc_from_db(moment)


def _utc_from_db(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
