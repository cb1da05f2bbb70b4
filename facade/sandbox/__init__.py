"""What every vendor sandbox shares: the curated code tables and the NPIs the generators draw,
the clock a sandbox reads and the plan of faults it injects into chosen API calls."""
