"""How far each listing is synced, the status an operator reads from it, and a purge that
leaves nothing of a connection behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

from facade.clock import FakeClock
from facade.mirror import EndpointStatus, MirrorStore, VendorRecord, Watermark
from facade.store.database import Database

T0 = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)


def records(count: int, endpoint_tag: str = "") -> list[VendorRecord]:
    return [
        VendorRecord(f"{endpoint_tag}{n}", None, T0, {"secret": f"phi-{n}"}) for n in range(count)
    ]


def row_count(database: Database, table: str) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


# -- watermarks ----------------------------------------------------------------------------


def test_a_listing_without_a_watermark_has_none(store: MirrorStore) -> None:
    assert store.watermark("acme", "problems") is None


def test_every_watermark_of_a_connection_is_listed_by_endpoint_and_listing(
    store: MirrorStore,
) -> None:
    for endpoint, key in (("problems", "b"), ("allergies", ""), ("problems", "a")):
        store.save_watermark(Watermark("acme", endpoint, key, backfill_cursor={"after": None}))
    store.save_watermark(Watermark("other", "problems"))

    marks = store.watermarks("acme")

    assert [(m.endpoint, m.params_key) for m in marks] == [
        ("allergies", ""),
        ("problems", "a"),
        ("problems", "b"),
    ]
    assert all(m.backfill_cursor == {"after": None} for m in marks)
    assert store.watermarks("nobody") == []


def test_a_watermark_reads_back_as_saved(store: MirrorStore, clock: FakeClock) -> None:
    local = T0.astimezone(ZoneInfo("Asia/Tokyo"))
    mark = Watermark(
        "acme",
        "problems",
        synced_through=local,
        backfill_cursor={"next": "https://vendor.test/x?cursor=abc", "page": 3},
        records=750,
        calls_spent=3,
    )
    saved = store.save_watermark(mark)
    assert saved.updated_at == clock.now() and saved.synced_through == T0
    loaded = store.watermark("acme", "problems")
    assert loaded == saved
    assert loaded is not None and loaded.synced_through is not None
    assert loaded.synced_through.utcoffset() == timedelta(0)


def test_saving_again_moves_the_watermark(
    store: MirrorStore, clock: FakeClock, database: Database
) -> None:
    store.save_watermark(Watermark("acme", "problems", backfill_cursor={"page": 3}))
    clock.advance(60)
    done = Watermark("acme", "problems", synced_through=T0, complete=True, calls_spent=9)
    store.save_watermark(done)
    loaded = store.watermark("acme", "problems")
    assert loaded is not None
    assert (loaded.backfill_cursor, loaded.complete, loaded.calls_spent) == (None, True, 9)
    assert loaded.updated_at == clock.now()
    assert row_count(database, "mirror_watermark") == 1


def test_each_listing_of_an_endpoint_has_its_own_watermark(store: MirrorStore) -> None:
    store.save_watermark(Watermark("acme", "problems", "", calls_spent=1))
    store.save_watermark(Watermark("acme", "problems", "status=active", calls_spent=2))
    plain = store.watermark("acme", "problems")
    active = store.watermark("acme", "problems", "status=active")
    assert plain is not None and plain.calls_spent == 1
    assert active is not None and active.calls_spent == 2


# -- status --------------------------------------------------------------------------------


def test_status_sums_each_endpoint_of_the_connection(store: MirrorStore) -> None:
    store.put_many("acme", "problems", records(3))
    store.put_many("acme", "patients", records(2))
    store.put_many("other", "problems", records(5))
    earlier, later = T0 - timedelta(hours=1), T0
    store.save_watermark(Watermark("acme", "problems", "a", earlier, complete=True, calls_spent=4))
    store.save_watermark(Watermark("acme", "problems", "b", later, complete=True, calls_spent=6))
    store.save_watermark(Watermark("acme", "notes", "", None, backfill_cursor={"page": 2}))
    assert store.status("acme") == [
        EndpointStatus("notes", records=0, listings=1, complete=False, synced_through=None,
                       calls_spent=0),
        # Records without a watermark (written by a webhook before any backfill).
        EndpointStatus("patients", records=2, listings=0, complete=False, synced_through=None,
                       calls_spent=0),
        # An endpoint is only as fresh as its stalest listing.
        EndpointStatus("problems", records=3, listings=2, complete=True, synced_through=earlier,
                       calls_spent=10),
    ]  # fmt: skip
    assert store.status("nobody") == []


# -- purge ---------------------------------------------------------------------------------


def fill(store: MirrorStore, connection: str) -> None:
    store.put_many(connection, "problems", records(50))
    store.save_watermark(Watermark(connection, "problems", synced_through=T0, complete=True))
    store.take_delivery(connection, "d-1", [("problems", "1", "p-1", "changed")])


def test_purging_a_connection_leaves_nothing_of_it(store: MirrorStore, database: Database) -> None:
    fill(store, "acme")
    fill(store, "other")
    assert store.purge("acme") == 50
    assert store.status("acme") == []
    assert store.ids("acme", "problems") == set()
    assert store.watermark("acme", "problems") is None
    assert store.seen_delivery("acme", "d-1") is False  # forgotten too
    assert store.pending_hints("acme") == 0
    # Another connection's mirror is untouched.
    assert len(store.ids("other", "problems")) == 50
    assert store.watermark("other", "problems") is not None
    assert store.seen_delivery("other", "d-1") is True
    assert store.pending_hints("other") == 1


def test_purging_everything_empties_the_mirror(store: MirrorStore, database: Database) -> None:
    fill(store, "acme")
    fill(store, "other")
    assert store.purge() == 100
    for table in ("mirror_record", "mirror_watermark", "mirror_delivery", "mirror_hint"):
        assert row_count(database, table) == 0


def test_a_purge_leaves_no_sealed_body_in_the_sqlite_files(
    tmp_path: Path, key: bytes, clock: FakeClock
) -> None:
    """SQLite only: PostgreSQL keeps dead rows until vacuum (the purge docstring says so)."""
    database = Database(f"sqlite:///{tmp_path / 'facade.db'}")
    database.migrate()
    store = MirrorStore(database, key, clock)
    try:
        fill(store, "acme")
        with database.engine.connect() as connection:
            sealed = [
                bytes(body)
                for (body,) in connection.execute(text("SELECT body_enc FROM mirror_record"))
            ]
        store.purge("acme")
        files = [tmp_path / "facade.db", tmp_path / "facade.db-wal"]
        content = b"".join(path.read_bytes() for path in files if path.exists())
        assert not any(body[12:40] in content for body in sealed)
    finally:
        database.dispose()
