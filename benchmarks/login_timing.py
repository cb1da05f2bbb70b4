"""How long a login check takes for a username that has an account and one that does not,
before, at and after the lockout: the two columns should match within noise.

Runs UserRegistry.check_password (what POST /auth/login runs in the threadpool) with the
default argon2 cost on a SQLite file, interleaving the two usernames so drift hits both. A
fake clock ends each lockout between rounds. Numbers only; never a timed assertion.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from benchmarks.stats import machine, median, ms, percentile
from facade.auth.server.lockout import LOCKOUT, MAX_FAILED_LOGINS
from facade.auth.server.users import UserRegistry
from facade.clock import FakeClock
from facade.store.database import Database
from facade.store.secrets import SecretBox

KNOWN = "known.user"
UNKNOWN = "no.such.user"
PASSWORD = "seven tall ships at dawn"


def run(rounds: int) -> dict[tuple[str, str], list[float]]:
    timings: dict[tuple[str, str], list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as scratch:
        database = Database(f"sqlite:///{Path(scratch) / 'facade.db'}")
        database.migrate()
        clock = FakeClock()
        users = UserRegistry(database, SecretBox.from_settings("", Path(scratch)), clock)
        users.create(KNOWN, PASSWORD, "Patient/1")
        users.check_password(UNKNOWN, "warm-up")  # the dummy hash is made on first use
        for _ in range(rounds):
            clock.advance((LOCKOUT + timedelta(seconds=1)).total_seconds())
            for attempt in range(1, MAX_FAILED_LOGINS + 2):
                phase = (
                    "wrong password"
                    if attempt < MAX_FAILED_LOGINS
                    else "locking attempt"
                    if attempt == MAX_FAILED_LOGINS
                    else "while locked"
                )
                for username in (KNOWN, UNKNOWN) if attempt % 2 else (UNKNOWN, KNOWN):
                    started = time.perf_counter()
                    users.check_password(username, "not the password")
                    timings[(phase, username)].append(time.perf_counter() - started)
        database.dispose()
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.login_timing")
    parser.add_argument("--rounds", type=int, default=20, help="lockout cycles (20)")
    args = parser.parse_args(argv)
    timings = run(args.rounds)
    print(f"login check time, known vs unknown username ({machine()})")
    print(f"{'phase':<16} {'username':<8} {'n':>4} {'median':>9} {'p90':>9}")
    for phase in ("wrong password", "locking attempt", "while locked"):
        for label, username in (("known", KNOWN), ("unknown", UNKNOWN)):
            values = timings[(phase, username)]
            print(
                f"{phase:<16} {label:<8} {len(values):>4} {ms(median(values)):>9} "
                f"{ms(percentile(values, 0.9)):>9}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
