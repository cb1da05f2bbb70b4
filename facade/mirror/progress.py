"""How far the mirror is, read from its store alone (no vendor call, no record body): per
endpoint its records, whether it is backfilled, its synced-through time and the calls spent,
the hints waiting, and how long an unfinished backfill still needs at the sync's rate.

The estimate: a listing read patient by patient has cost `calls_spent` for the patients it
finished, so it needs that much per patient for the patients left; a listing read page by page
says nothing of its remaining pages until it ends, so it counts as one more call and the
estimate is a lower bound (`at_least`). Calls left divided by what backfill may spend per
quota window (the sync's share less the webhook reserve) gives the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from math import ceil

from facade.mirror.store import MirrorStore, Watermark


@dataclass(frozen=True)
class Estimate:
    """Calls a backfill still needs and the time they take at the rate given."""

    calls: int
    seconds: float
    #: Some listing's remaining calls are unknown (counted as one): at least this long.
    at_least: bool


@dataclass(frozen=True)
class EndpointProgress:
    endpoint: str
    records: int
    complete: bool
    synced_through: datetime | None
    calls_spent: int
    #: None once the endpoint is backfilled.
    eta: Estimate | None


@dataclass(frozen=True)
class Progress:
    connection: str
    endpoints: list[EndpointProgress]
    pending_hints: int
    #: The whole backfill's (None once every endpoint is backfilled).
    eta: Estimate | None

    @property
    def complete(self) -> bool:
        return bool(self.endpoints) and all(e.complete for e in self.endpoints)


def read_progress(
    store: MirrorStore,
    connection: str,
    *,
    patient_endpoint: str,
    calls_per_window: int,
    window_seconds: float,
) -> Progress:
    """`patient_endpoint` holds the patients per-patient listings go through (the Patient
    mapping's endpoint); `calls_per_window` is what backfill may spend per quota window."""
    marks = store.watermarks(connection)
    patients = sorted(store.ids(connection, patient_endpoint)) if _by_patient(marks) else []
    rate = (calls_per_window, window_seconds)
    by_endpoint: dict[str, list[Watermark]] = {}
    for mark in marks:
        by_endpoint.setdefault(mark.endpoint, []).append(mark)
    endpoints = []
    estimates = []
    for status in store.status(connection):
        mine = by_endpoint.get(status.endpoint, [])
        left = [_calls_left(m, patients) for m in mine if not m.complete]
        eta = _estimate(left, rate) if left else None
        if eta is not None:
            estimates.extend(left)
        endpoints.append(
            EndpointProgress(
                endpoint=status.endpoint,
                records=status.records,
                complete=status.complete,
                synced_through=status.synced_through,
                calls_spent=status.calls_spent,
                eta=eta,
            )
        )
    return Progress(
        connection=connection,
        endpoints=endpoints,
        pending_hints=store.pending_hints(connection),
        eta=_estimate(estimates, rate) if estimates else None,
    )


def _by_patient(marks: list[Watermark]) -> bool:
    return any(m.backfill_cursor is not None and "after" in m.backfill_cursor for m in marks)


def _calls_left(mark: Watermark, patients: list[str]) -> tuple[int, bool]:
    """A listing's calls still needed, and whether that is only a lower bound."""
    cursor = mark.backfill_cursor or {}
    if "after" not in cursor:
        return 1, True  # read page by page: its pages left are unknown until it ends
    after = cursor["after"]
    done = 0 if after is None else sum(1 for p in patients if p <= after)
    if done == 0 or not mark.calls_spent:
        return max(1, len(patients)), True  # at least a call per patient
    return ceil(mark.calls_spent * (len(patients) - done) / done), False


def _estimate(left: list[tuple[int, bool]], rate: tuple[int, float]) -> Estimate:
    calls = sum(n for n, _ in left)
    per_window, window = rate
    seconds = calls * window / per_window if per_window > 0 else float("inf")
    return Estimate(calls=calls, seconds=seconds, at_least=any(bound for _, bound in left))


def describe_seconds(seconds: float) -> str:
    """A duration as an operator reads it: "45 s", "12 min", "3 h 20 min"."""
    if seconds == float("inf"):
        return "never (the sync has no calls)"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"
