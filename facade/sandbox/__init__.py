"""What every vendor sandbox shares: the curated code tables the generators draw from, the
clock a sandbox reads and the plan of faults it injects into chosen API calls."""
