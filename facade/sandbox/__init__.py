"""What every vendor sandbox shares: the curated code tables the generators draw from."""
