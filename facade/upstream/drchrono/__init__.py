"""DrChrono v4: the vendor client facade talks to, and the sandbox that imitates the vendor."""
