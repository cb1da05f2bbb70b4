"""Record bodies are PHI: the database only ever holds them sealed (AES-GCM under a key
derived from the deployment key) and bound to their row."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text

from facade.clock import FakeClock
from facade.mirror import MirrorRecordUnreadable, MirrorStore, RecordCipher, VendorRecord
from facade.store.database import Database

T0 = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)
PATIENT = {
    "id": 4711,
    "first_name": "Zelda",
    "last_name": "Quillfeather",
    "date_of_birth": "1961-04-02",
    "social_security_number": "078-05-1120",
}


def raw_rows(database: Database) -> list[dict[str, object]]:
    with database.engine.connect() as connection:
        result = connection.execute(text("SELECT * FROM mirror_record ORDER BY id"))
        return [dict(row._mapping) for row in result]


def copy_body(database: Database, source: str, target: str) -> None:
    """Someone with the database copies one row's sealed body into another row."""
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE mirror_record SET body_enc ="
                " (SELECT body_enc FROM mirror_record WHERE vendor_id = :source)"
                " WHERE vendor_id = :target"
            ),
            {"source": source, "target": target},
        )


def put_patient(store: MirrorStore, vendor_id: str = "4711") -> None:
    store.put_many("acme", "patients", [VendorRecord(vendor_id, vendor_id, T0, PATIENT)])


def test_no_plaintext_phi_is_in_the_row(store: MirrorStore, database: Database) -> None:
    put_patient(store)
    [row] = raw_rows(database)
    stored = bytes(row["body_enc"])  # type: ignore[arg-type]
    everything = repr(row).encode() + stored
    for value in ("Zelda", "Quillfeather", "1961-04-02", "078-05-1120"):
        assert value.encode() not in everything
    assert orjson.dumps(PATIENT) not in stored
    # nonce (12 bytes) + ciphertext + tag (16 bytes): nothing else is stored with the body.
    assert len(stored) == 12 + len(orjson.dumps(PATIENT)) + 16
    # Keys and times stay readable, for an operator looking at the table.
    assert (row["connection"], row["endpoint"], row["vendor_id"]) == ("acme", "patients", "4711")


def test_the_same_body_is_sealed_differently_each_time(
    store: MirrorStore, database: Database, clock: FakeClock
) -> None:
    put_patient(store, "1")
    put_patient(store, "2")
    first, second = (bytes(row["body_enc"]) for row in raw_rows(database))  # type: ignore[arg-type]
    assert first[:12] != second[:12] and first[12:] != second[12:]


def test_the_mirror_key_is_derived_not_the_deployment_key(
    store: MirrorStore, database: Database, key: bytes
) -> None:
    put_patient(store)
    stored = bytes(raw_rows(database)[0]["body_enc"])  # type: ignore[arg-type]
    raw_key = base64.urlsafe_b64decode(key)
    with pytest.raises(Exception):  # noqa: B017  (any failure: the raw key does not open it)
        AESGCM(raw_key).decrypt(stored[:12], stored[12:], None)


def test_another_deployment_key_cannot_read_the_bodies(
    store: MirrorStore, database: Database, clock: FakeClock
) -> None:
    put_patient(store)
    stranger = MirrorStore(database, Fernet.generate_key(), clock)
    with pytest.raises(MirrorRecordUnreadable, match="deployment key changed") as raised:
        stranger.get("acme", "patients", "4711")
    assert "Zelda" not in str(raised.value)


def test_a_body_copied_to_another_row_does_not_open(store: MirrorStore, database: Database) -> None:
    put_patient(store, "1")
    store.put_many("acme", "patients", [VendorRecord("2", "2", T0, {"first_name": "Other"})])
    copy_body(database, "1", "2")
    with pytest.raises(MirrorRecordUnreadable) as raised:
        store.get("acme", "patients", "2")
    assert "acme/patients/2" in str(raised.value)
    assert "belongs to another row" in str(raised.value)
    found = store.get("acme", "patients", "1")  # the original still opens
    assert found is not None and found.body == PATIENT


def test_an_altered_body_does_not_open(store: MirrorStore, database: Database) -> None:
    put_patient(store)
    stored = bytearray(bytes(raw_rows(database)[0]["body_enc"]))  # type: ignore[arg-type]
    stored[20] ^= 1
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE mirror_record SET body_enc = :b"), {"b": bytes(stored)})
    with pytest.raises(MirrorRecordUnreadable, match="altered"):
        store.get("acme", "patients", "4711")


def test_a_slash_in_a_key_cannot_make_two_rows_alike(key: bytes) -> None:
    cipher = RecordCipher(key)
    sealed = cipher.seal(("acme", "a/b", "c"), {"x": 1})
    assert cipher.open(("acme", "a/b", "c"), sealed) == {"x": 1}
    with pytest.raises(MirrorRecordUnreadable):
        cipher.open(("acme", "a", "b/c"), sealed)
    with pytest.raises(MirrorRecordUnreadable):
        cipher.open(("acme", "a/b", "c"), b"short")


def test_neither_store_nor_cipher_shows_the_key(store: MirrorStore, key: bytes) -> None:
    shown = repr(store) + repr(RecordCipher(key))
    assert key.decode() not in shown and "hidden" in shown


# -- bodies opened for answers, kept in memory --------------------------------------------


def _page_bodies(store: MirrorStore) -> dict[str, dict[str, object]]:
    records, _ = store.page("acme", "patients", after=0, limit=100)
    return {r.vendor_id: r.body for r in records}


def test_a_served_body_kept_opened_still_binds_to_its_row(
    store: MirrorStore, database: Database
) -> None:
    """The answers' opened bodies are kept by row and sealing: a body copied into another
    row is not served from memory as that row's; it fails to open, as it would cold."""
    put_patient(store, "1")
    store.put_many("acme", "patients", [VendorRecord("2", "2", T0, {"first_name": "Other"})])
    assert _page_bodies(store) == {"1": PATIENT, "2": {"first_name": "Other"}}
    copy_body(database, "1", "2")
    with pytest.raises(MirrorRecordUnreadable, match="belongs to another row"):
        _page_bodies(store)
    with pytest.raises(MirrorRecordUnreadable, match="belongs to another row"):
        store.for_patient("acme", "patients", "2")


def test_a_record_written_again_is_served_as_written_not_as_it_was_opened(
    store: MirrorStore, clock: FakeClock
) -> None:
    put_patient(store, "1")
    assert _page_bodies(store) == {"1": PATIENT}
    assert [r.body for r in store.for_patient("acme", "patients", "1")] == [PATIENT]
    changed = {**PATIENT, "last_name": "Quill"}
    later = T0.replace(hour=10)
    store.put_many("acme", "patients", [VendorRecord("1", "1", later, changed)])

    assert _page_bodies(store) == {"1": changed}
    assert [r.body for r in store.for_patient("acme", "patients", "1")] == [changed]


def test_more_records_than_it_keeps_opened_are_each_served_right(
    database: Database, key: bytes, clock: FakeClock
) -> None:
    small = MirrorStore(database, key, clock, opened_bodies=2)
    bodies = {str(n): {"id": n, "first_name": f"P{n}"} for n in range(1, 6)}
    small.put_many("acme", "patients", [VendorRecord(k, k, T0, b) for k, b in bodies.items()])
    for _ in range(3):
        assert _page_bodies(small) == bodies
        for vendor_id, body in bodies.items():
            assert [r.body for r in small.for_patient("acme", "patients", vendor_id)] == [body]


def test_a_purge_forgets_the_opened_bodies(store: MirrorStore) -> None:
    put_patient(store, "1")
    assert _page_bodies(store) == {"1": PATIENT}
    store.purge("acme")
    assert _page_bodies(store) == {}
    store.put_many("acme", "patients", [VendorRecord("1", "1", T0, {"first_name": "New"})])
    assert _page_bodies(store) == {"1": {"first_name": "New"}}
