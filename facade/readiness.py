"""Whether facade can serve: its database answers, its audit log is written, and its vendor
connection works.

Vendor calls are the scarce resource (≈500 an hour), so the vendor is probed at most once per
VENDOR_PROBE_SECONDS however often readiness is asked: at most 12 calls an hour, counted in
the hourly budget like any other. Results name what failed, never a URL, a credential or an
exception's text (which may quote either).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import anyio
from sqlalchemy import text

from facade.auth.audit import FAIL_CLOSED_AFTER, AuditWriter
from facade.clock import Clock
from facade.errors import UpstreamAuthFailed, UpstreamThrottled
from facade.store.database import Database
from facade.upstream.budget import UpstreamBudget

log = logging.getLogger("facade.readiness")

#: How long one vendor probe's result stands: 300 s is at most 12 calls an hour (2.4 % of
#: a 500-call hourly quota), and an outage shows within five minutes.
VENDOR_PROBE_SECONDS = 300.0
#: The longest a readiness check waits for the database or the vendor.
CHECK_TIMEOUT_SECONDS = 5.0
#: One authorized vendor call (the runtime chooses the cheapest); raises a facade error.
VendorProbe = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Check:
    """One check's result in the health+json style: pass, warn (serving, with a caveat) or
    fail, with a sentence for the operator."""

    status: str
    output: str = ""
    checked_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def as_json(self) -> dict[str, str]:
        answer = {"status": self.status}
        if self.output:
            answer["output"] = self.output
        if self.checked_at is not None:
            answer["time"] = self.checked_at.isoformat(timespec="seconds")
        return answer


class Readiness:
    """The database check (every time: it is local) and the cached vendor probe."""

    def __init__(
        self,
        database: Database,
        probe: VendorProbe,
        budget: UpstreamBudget,
        clock: Clock,
        audit: AuditWriter,
    ):
        self.database = database
        self._audit = audit
        self._probe_vendor = probe
        self._budget = budget
        self._clock = clock
        self._vendor_result: Check | None = None
        self._probed_at = 0.0
        self._lock = asyncio.Lock()
        #: Vendor calls spent on probes since start-up (for tests and the README's figure).
        self.probes = 0

    async def checks(self) -> dict[str, Check]:
        return {
            "database": await self.check_database(),
            "audit": self.check_audit(),
            "vendor": await self.check_vendor(),
        }

    def check_audit(self) -> Check:
        """facade refuses patient data while its audit log cannot be written (fail closed):
        then it is not ready, though the database may answer a SELECT."""
        failures = self._audit.failures
        if failures >= FAIL_CLOSED_AFTER:
            return Check(
                "fail",
                "The audit log cannot be written; patient data is refused until it can.",
                self._clock.now(),
            )
        if failures:
            return Check(
                "warn",
                f"Writing the audit log failed {failures} time(s); retrying.",
                self._clock.now(),
            )
        return Check("pass", checked_at=self._clock.now())

    async def check_database(self) -> Check:
        def select_one() -> None:
            with self.database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        try:
            with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
                await anyio.to_thread.run_sync(select_one, abandon_on_cancel=True)
        except TimeoutError:
            return Check("fail", "The database did not answer in time.", self._clock.now())
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; its text may hold the URL
            log.warning("readiness: database check failed (%s)", type(exc).__name__)
            return Check("fail", "The database does not answer.", self._clock.now())
        return Check("pass", checked_at=self._clock.now())

    async def check_vendor(self) -> Check:
        """The last probe's result while it is fresh; otherwise one probe (callers that
        arrive meanwhile wait for it rather than send their own)."""
        async with self._lock:
            fresh = self._clock.monotonic() - self._probed_at < VENDOR_PROBE_SECONDS
            if self._vendor_result is None or not fresh:
                self._vendor_result = await self._probe()
                self._probed_at = self._clock.monotonic()
            return self._vendor_result

    async def _probe(self) -> Check:
        now = self._clock.now()
        budget = self._budget
        if budget.remaining <= 0:
            # Serving, but vendor calls wait for the hour to turn: not a reason to take facade
            # out of a load balancer, and not worth a probe.
            return Check(
                "warn",
                "facade's hourly budget of EHR calls is spent; calls resume in "
                f"{int(budget.seconds_until_reset())} s.",
                now,
            )
        self.probes += 1
        try:
            with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
                await self._probe_vendor()
        except UpstreamThrottled:
            return Check("warn", "The EHR is rate-limiting facade's calls.", now)
        except UpstreamAuthFailed:
            return Check(
                "fail",
                "The EHR refuses facade's stored authorization: reconnect the account "
                "(facade connect).",
                now,
            )
        except TimeoutError:
            return Check("fail", "The EHR did not answer in time.", now)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; its text may quote the vendor
            log.warning("readiness: vendor probe failed (%s)", type(exc).__name__)
            return Check("fail", "The EHR cannot be reached or answers with errors.", now)
        return Check("pass", checked_at=now)
