"""Refresh hints: what a webhook said changed, kept until the sync takes it, once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from facade.clock import FakeClock
from facade.mirror import MirrorStore
from facade.store.database import Database


def test_hints_are_taken_oldest_first_and_only_once(store: MirrorStore, clock: FakeClock) -> None:
    store.add_hints("acme", [("problems", "7", "p-1", "PROBLEM_CHANGED")])
    clock.advance(5)
    store.add_hints("acme", [("patients", "p-2", "p-2", "PATIENT_CHANGED")])
    store.add_hints("other", [("patients", "p-9", "p-9", "PATIENT_CHANGED")])
    assert store.pending_hints("acme") == 2
    taken = store.take_hints("acme")
    assert [(h.endpoint, h.vendor_id, h.patient_id, h.event) for h in taken] == [
        ("problems", "7", "p-1", "PROBLEM_CHANGED"),
        ("patients", "p-2", "p-2", "PATIENT_CHANGED"),
    ]
    assert taken[0].received_at < taken[1].received_at
    assert taken[0].received_at.tzinfo is not None
    assert store.take_hints("acme") == []
    assert [h.vendor_id for h in store.take_hints("other")] == ["p-9"]


def test_a_record_hinted_twice_waits_once_with_the_latest_event(
    store: MirrorStore, clock: FakeClock
) -> None:
    store.add_hints("acme", [("appointments", "5", "p-1", "CREATED")])
    clock.advance(60)
    store.add_hints(
        "acme", [("appointments", "5", "p-1", "MODIFIED"), ("appointments", "5", "p-1", "LOCKED")]
    )
    [hint] = store.take_hints("acme")
    assert hint.event == "LOCKED"
    assert hint.received_at == clock.now()


def test_take_hints_is_bounded(store: MirrorStore) -> None:
    store.add_hints("acme", [("problems", str(n), None, "E") for n in range(30)])
    assert len(store.take_hints("acme", limit=10)) == 10
    assert store.pending_hints("acme") == 20
    with pytest.raises(ValueError):
        store.take_hints("acme", limit=0)


def test_a_delivery_and_its_hints_are_kept_together_or_not_at_all(store: MirrorStore) -> None:
    assert store.take_delivery("acme", "d-1", [("problems", "7", "p-1", "E")]) is True
    assert store.take_delivery("acme", "d-1", [("problems", "8", "p-1", "E")]) is False
    assert [h.vendor_id for h in store.take_hints("acme")] == ["7"]
    # A delivery whose hints cannot be written is not marked taken: the redelivery counts.
    unwritable: Any = ("problems", None, None, "E")  # NOT NULL vendor_id: the database refuses
    with pytest.raises(IntegrityError):
        store.take_delivery("acme", "d-2", [("problems", "9", "p-1", "E"), unwritable])
    assert store.seen_delivery("acme", "d-2") is False


def test_two_takers_never_get_the_same_hint(
    database: Database, key: bytes, clock: FakeClock
) -> None:
    MirrorStore(database, key, clock).add_hints(
        "acme", [("problems", str(n), None, "E") for n in range(200)]
    )
    taken: list[list[str]] = [[], []]
    failures: list[BaseException] = []

    def take(taker: int) -> None:
        store = MirrorStore(database, key, clock)
        try:
            while hints := store.take_hints("acme", limit=7):
                taken[taker].extend(h.vendor_id for h in hints)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=take, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    # Each taker stopped only when nothing was left, and no hint went to both.
    assert sorted(taken[0] + taken[1], key=int) == [str(n) for n in range(200)]
