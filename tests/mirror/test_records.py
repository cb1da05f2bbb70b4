"""Records in the mirror: kept as the vendor sent them, never taken back in time, read one
by one, by patient, or streamed a page at a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from facade.clock import FakeClock
from facade.mirror import MirrorStore, VendorRecord
from facade.store.database import Database

T0 = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)


def chart_row(vendor_id: str, version: int, patient: str = "p1") -> VendorRecord:
    body = {"id": vendor_id, "patient": patient, "version": version, "note": f"v{version}"}
    return VendorRecord(vendor_id, patient, T0 + timedelta(minutes=version), body)


def version_of(store: MirrorStore, vendor_id: str, endpoint: str = "problems") -> int | None:
    found = store.get("acme", endpoint, vendor_id)
    return None if found is None else int(found.body["version"])


# -- round trip ----------------------------------------------------------------------------


def test_a_record_reads_back_as_the_vendor_sent_it(store: MirrorStore, clock: FakeClock) -> None:
    body: dict[str, Any] = {"id": 7, "name": [{"given": "Ada"}], "flags": None, "score": 1.5}
    assert store.put_many("acme", "patients", [VendorRecord("7", "7", T0, body)]) == 1
    found = store.get("acme", "patients", "7")
    assert found is not None
    assert found.body == body
    assert (found.connection, found.endpoint, found.vendor_id, found.patient_id) == (
        "acme",
        "patients",
        "7",
        "7",
    )
    assert found.vendor_updated_at == T0 and found.vendor_updated_at.tzinfo is not None
    assert found.fetched_at == clock.now()


def test_an_unknown_record_is_none(store: MirrorStore) -> None:
    store.put_many("acme", "patients", [chart_row("1", 1)])
    assert store.get("acme", "patients", "2") is None
    assert store.get("acme", "problems", "1") is None
    assert store.get("other", "patients", "1") is None


def test_a_vendor_time_in_another_zone_is_kept_as_the_same_instant(store: MirrorStore) -> None:
    local = T0.astimezone(ZoneInfo("America/Chicago"))
    store.put_many("acme", "patients", [VendorRecord("1", None, local, {"id": 1})])
    found = store.get("acme", "patients", "1")
    assert found is not None and found.vendor_updated_at == T0
    assert found.vendor_updated_at.utcoffset() == timedelta(0)


def test_a_time_without_a_zone_is_refused(store: MirrorStore) -> None:
    naive = VendorRecord("1", None, datetime(2026, 5, 1, 9, 0), {"id": 1})
    with pytest.raises(ValueError, match="vendor_updated_at must be timezone-aware"):
        store.put_many("acme", "patients", [naive])
    assert store.get("acme", "patients", "1") is None


def test_a_patients_records_are_found_by_the_vendor_patient_key(store: MirrorStore) -> None:
    store.put_many(
        "acme",
        "problems",
        [chart_row("1", 1, "p1"), chart_row("2", 1, "p2"), chart_row("3", 1, "p1")],
    )
    store.put_many("acme", "allergies", [chart_row("4", 1, "p1")])
    assert [r.vendor_id for r in store.for_patient("acme", "problems", "p1")] == ["1", "3"]
    assert store.for_patient("acme", "problems", "p9") == []


def test_a_record_repr_never_shows_its_body(store: MirrorStore) -> None:
    store.put_many("acme", "patients", [VendorRecord("1", "1", T0, {"name": "Zelda Quill"})])
    found = store.get("acme", "patients", "1")
    assert found is not None and "Zelda" not in repr(found)


# -- never back in time --------------------------------------------------------------------


def test_an_older_version_arriving_late_is_ignored(store: MirrorStore) -> None:
    assert store.put_many("acme", "problems", [chart_row("1", 5)]) == 1
    assert store.put_many("acme", "problems", [chart_row("1", 3)]) == 0
    assert version_of(store, "1") == 5


def test_a_newer_or_equal_version_replaces(store: MirrorStore) -> None:
    store.put_many("acme", "problems", [chart_row("1", 5)])
    assert store.put_many("acme", "problems", [chart_row("1", 6)]) == 1
    assert version_of(store, "1") == 6
    refetched = VendorRecord("1", "p2", T0 + timedelta(minutes=6), {"version": 7})
    assert store.put_many("acme", "problems", [refetched]) == 1
    found = store.get("acme", "problems", "1")
    assert found is not None and found.body == {"version": 7} and found.patient_id == "p2"


def test_without_vendor_times_the_later_fetch_wins(store: MirrorStore, clock: FakeClock) -> None:
    fetched_first = clock.now()
    clock.advance(60)
    store.put_many("acme", "notes", [VendorRecord("1", None, None, {"version": 2})])
    # A slow answer the vendor gave before the one already stored, written only now.
    stale = [VendorRecord("1", None, None, {"version": 1})]
    assert store.put_many("acme", "notes", stale, fetched_at=fetched_first) == 0
    assert version_of(store, "1", "notes") == 2
    clock.advance(60)
    assert store.put_many("acme", "notes", [VendorRecord("1", None, None, {"version": 3})]) == 1
    assert version_of(store, "1", "notes") == 3


def test_a_record_repeated_in_one_call_is_applied_in_order(store: MirrorStore) -> None:
    written = store.put_many(
        "acme",
        "problems",
        [chart_row("1", 1), chart_row("2", 4), chart_row("1", 3), chart_row("1", 2)],
    )
    # "1" v1 and "2" v4 are new, "1" v3 replaces v1, "1" v2 comes too late.
    assert written == 3
    assert (version_of(store, "1"), version_of(store, "2")) == (3, 4)


def test_racing_writers_leave_the_newest_version(database: Database, key: bytes) -> None:
    clock = FakeClock()
    ids = [str(n) for n in range(200)]
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def write(version: int) -> None:
        writer = MirrorStore(database, key, clock)
        try:
            barrier.wait()
            for start in range(0, len(ids), 20):
                writer.put_many(
                    "acme", "problems", [chart_row(i, version) for i in ids[start : start + 20]]
                )
        except BaseException as exc:  # reported by the test below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in (2, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    reader = MirrorStore(database, key, clock)
    assert {version_of(reader, i) for i in ids} == {2}


# -- scans ---------------------------------------------------------------------------------


def test_a_scan_streams_ten_thousand_records_a_page_at_a_time(
    store: MirrorStore, database: Database
) -> None:
    rows = [
        VendorRecord(str(n), f"p{n % 97}", T0, {"n": n, "pad": "x" * 200}) for n in range(10_000)
    ]
    assert store.put_many("acme", "problems", iter(rows)) == 10_000
    store.put_many("acme", "allergies", [chart_row("a", 1)])
    store.put_many("other", "problems", [chart_row("b", 1)])
    queries: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if "FROM mirror_record" in statement:
            queries.append(statement)

    event.listen(database.engine, "before_cursor_execute", seen)
    try:
        scan = store.scan("acme", "problems", batch=500)
        first = next(scan)
        assert first.body["n"] == 0
        assert len(queries) == 1  # one page read, not the endpoint
        numbers = [first.body["n"]] + [record.body["n"] for record in scan]
    finally:
        event.remove(database.engine, "before_cursor_execute", seen)
    assert numbers == list(range(10_000))
    # 20 full pages and the empty one that ends the scan, each bounded by LIMIT.
    assert len(queries) == 21
    assert all("LIMIT" in q for q in queries)


def test_records_written_during_a_scan_neither_repeat_nor_hide_others(
    store: MirrorStore,
) -> None:
    store.put_many("acme", "problems", [chart_row(str(n), 1) for n in range(10)])
    seen = []
    for record in store.scan("acme", "problems", batch=3):
        seen.append(record.vendor_id)
        if record.vendor_id == "4":
            store.put_many("acme", "problems", [chart_row("4", 2), chart_row("new", 1)])
    assert seen == [str(n) for n in range(10)] + ["new"]


def test_a_scan_of_an_empty_endpoint_yields_nothing(store: MirrorStore) -> None:
    assert list(store.scan("acme", "problems")) == []
    with pytest.raises(ValueError, match="batch"):
        list(store.scan("acme", "problems", batch=0))


# -- ids and deletes -----------------------------------------------------------------------


def test_ids_and_deletes_for_reconciling(store: MirrorStore) -> None:
    store.put_many("acme", "problems", [chart_row(str(n), 1) for n in range(1200)])
    store.put_many("acme", "allergies", [chart_row("5", 1)])
    assert store.ids("acme", "problems") == {str(n) for n in range(1200)}
    gone = [str(n) for n in range(0, 1200, 2)] + ["never-held"]
    assert store.delete("acme", "problems", iter(gone)) == 600
    assert store.ids("acme", "problems") == {str(n) for n in range(1, 1200, 2)}
    assert store.get("acme", "problems", "0") is None
    assert store.ids("acme", "allergies") == {"5"}  # another endpoint is untouched
