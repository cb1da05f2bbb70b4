"""The backfill estimate `facade mirror status` prints, from the store alone: a listing read
patient by patient needs what its finished patients cost per patient for the patients left; a
listing read page by page is a lower bound until it ends; a backfilled one needs nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from facade.mirror import MirrorStore, VendorRecord, Watermark
from facade.mirror.progress import describe_seconds, read_progress

T0 = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)


def _patients(store: MirrorStore, count: int) -> None:
    rows = [VendorRecord(f"p{n}", f"p{n}", T0, {"n": n}) for n in range(1, count + 1)]
    store.put_many("acme", "patients", rows)
    store.save_watermark(Watermark("acme", "patients", complete=True, synced_through=T0))


def test_a_listing_read_patient_by_patient_needs_its_cost_per_patient_for_those_left(
    store: MirrorStore,
) -> None:
    _patients(store, 4)
    cursor = {"started": T0.isoformat(), "after": "p2", "next": None}
    store.save_watermark(Watermark("acme", "encounters", backfill_cursor=cursor, calls_spent=6))

    progress = read_progress(
        store, "acme", patient_endpoint="patients", calls_per_window=12, window_seconds=3600
    )

    by_name = {e.endpoint: e for e in progress.endpoints}
    assert by_name["patients"].eta is None and by_name["patients"].complete
    eta = by_name["encounters"].eta
    assert eta is not None and (eta.calls, eta.seconds, eta.at_least) == (6, 1800.0, False)
    assert progress.eta == eta and not progress.complete


def test_listings_not_started_or_read_page_by_page_give_a_lower_bound(
    store: MirrorStore,
) -> None:
    _patients(store, 3)
    store.save_watermark(
        Watermark("acme", "encounters", backfill_cursor={"started": "x", "after": None})
    )
    store.save_watermark(Watermark("acme", "problems", backfill_cursor={"started": "x"}))

    progress = read_progress(
        store, "acme", patient_endpoint="patients", calls_per_window=4, window_seconds=3600
    )

    assert progress.eta is not None
    assert (progress.eta.calls, progress.eta.at_least) == (3 + 1, True)
    assert describe_seconds(progress.eta.seconds) == "1 h"


def test_a_backfilled_mirror_has_no_estimate(store: MirrorStore) -> None:
    _patients(store, 2)
    progress = read_progress(
        store, "acme", patient_endpoint="patients", calls_per_window=4, window_seconds=3600
    )
    assert progress.complete and progress.eta is None and progress.pending_hints == 0
