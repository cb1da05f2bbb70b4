"""What every vendor sandbox shares: the curated code tables and the NPIs the generators draw,
the clock a sandbox reads, the plan of faults it injects into chosen API calls and the pace
(and log) of its change generator."""
