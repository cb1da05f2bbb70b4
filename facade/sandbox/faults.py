"""The failures a vendor sandbox injects into chosen API calls, and the plan that places them.

Tests plan a fault at a position in the count of arriving API calls; the sandbox's app asks
`next_api_call()` once per call and acts the fault out in its vendor's own words. This module
never answers a request: what a 500, a 429 or an expired login looks like is the vendor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Fault(StrEnum):
    """A failure a sandbox injects into a chosen API call."""

    SERVER_ERROR = "500"
    THROTTLED = "429"
    #: Sleeps `timeout_seconds`, then answers 504: a client with a shorter timeout gives up.
    TIMEOUT = "timeout"
    #: Every login the sandbox issued (access token or session) expires before the call is
    #: authenticated, so it gets a 401.
    EXPIRE_TOKEN = "expire_token"
    #: The same fault under the name a sandbox whose logins are sessions gives it.
    EXPIRE_SESSION = "expire_token"

    @classmethod
    def _missing_(cls, value: object) -> Fault | None:
        return cls.EXPIRE_SESSION if value == "expire_session" else None


@dataclass(frozen=True)
class PlannedFault:
    fault: Fault
    timeout_seconds: float = 30.0


@dataclass
class FaultPlan:
    """Where the planned faults strike; a sandbox's state extends it.

    Which requests count as API calls is the sandbox's to say: its app calls `next_api_call`
    on each of them and on nothing else.
    """

    #: How many API calls arrived so far; fault positions are absolute in this count.
    api_calls_seen: int = field(default=0, init=False)
    planned_faults: dict[int, PlannedFault] = field(default_factory=dict, init=False)

    def fail_call(self, nth: int, fault: Fault | str, *, timeout_seconds: float = 30.0) -> None:
        """Make the `nth` API call from now (1 = the next one) fail with `fault`."""
        if nth < 1:
            raise ValueError("nth counts from 1 (the next API call)")
        self.planned_faults[self.api_calls_seen + nth] = PlannedFault(Fault(fault), timeout_seconds)

    def fail_next(self, count: int, fault: Fault | str, *, timeout_seconds: float = 30.0) -> None:
        """Make each of the next `count` API calls fail with `fault`."""
        for nth in range(1, count + 1):
            self.fail_call(nth, fault, timeout_seconds=timeout_seconds)

    def clear_faults(self) -> None:
        self.planned_faults.clear()

    def next_api_call(self) -> PlannedFault | None:
        """Count one arriving API call and return the fault planned for it, if any."""
        self.api_calls_seen += 1
        return self.planned_faults.pop(self.api_calls_seen, None)
