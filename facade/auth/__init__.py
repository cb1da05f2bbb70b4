"""facade's SMART App Launch authorization server and the access checks it feeds.

Tokens are short-lived JWTs signed with keys facade keeps (encrypted) and rotates; every
issued token is recorded so that revocation and introspection are exact.
"""
