"""CareCloud: the vendor client facade talks to (session login with TOTP, Link-header paging),
its connect flow, and the sandbox that imitates the vendor."""
