"""Webhook deliveries are taken once: a redelivery, or the same delivery arriving twice at
once, is recognised by its id."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import text

from facade.clock import FakeClock
from facade.mirror import MirrorStore
from facade.store.database import Database


def test_a_delivery_is_new_once(store: MirrorStore) -> None:
    assert store.seen_delivery("acme", "d-1") is False
    assert store.seen_delivery("acme", "d-1") is True
    assert store.seen_delivery("acme", "d-2") is False


def test_delivery_ids_are_per_connection(store: MirrorStore) -> None:
    assert store.seen_delivery("acme", "d-1") is False
    assert store.seen_delivery("other", "d-1") is False


def test_of_two_concurrent_deliveries_exactly_one_is_new(
    database: Database, key: bytes, clock: FakeClock
) -> None:
    ids = [f"d-{n}" for n in range(100)]
    barrier = threading.Barrier(2)
    answers: list[list[bool]] = [[], []]
    failures: list[BaseException] = []

    def receive(receiver: int) -> None:
        store = MirrorStore(database, key, clock)
        try:
            for delivery_id in ids:
                barrier.wait()  # both receivers take the same delivery at the same moment
                answers[receiver].append(store.seen_delivery("acme", delivery_id))
        except BaseException as exc:  # reported below, not lost in the thread
            barrier.abort()
            failures.append(exc)

    threads = [threading.Thread(target=receive, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(first != second for first, second in zip(*answers, strict=True))
    with database.engine.connect() as connection:
        stored = connection.execute(text("SELECT COUNT(*) FROM mirror_delivery")).scalar_one()
    assert stored == len(ids)


def test_old_delivery_ids_can_be_forgotten(store: MirrorStore, clock: FakeClock) -> None:
    store.seen_delivery("acme", "old")
    clock.advance(8 * 3600)
    store.seen_delivery("acme", "recent")
    assert store.forget_deliveries(clock.now() - timedelta(hours=1)) == 1
    assert store.seen_delivery("acme", "old") is False
    assert store.seen_delivery("acme", "recent") is True
