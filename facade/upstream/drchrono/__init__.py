"""DrChrono v4: the vendor client facade talks to, and the sandbox that imitates the vendor."""

#: DrChrono throttles an API application beyond 10 calls in one second (besides its 500 calls
#: an hour), a limit it does not let apps change (shared/research/upstreams.md §1.4).
DECLARED_BURST_PER_SECOND = 10
