"""CareCloud: the second vendor facade serves, behind its session login with a TOTP code.

Its client, session keeping and `connect` flow live here, and so does a faithful sandbox of
its API (`sandbox/`). Nothing outside this package and `mappings/carecloud/` may name it.
"""
