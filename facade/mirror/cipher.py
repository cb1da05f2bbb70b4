"""Sealing of mirrored record bodies (PHI) with AES-GCM under a key of their own.

The key is derived (HKDF-SHA256) from the deployment key, so the mirror shares no key with
secrets or cursors and needs no key management of its own. Each body is bound to its row
(connection, endpoint, vendor id) as associated data: a body moved to another row, or
altered, fails to open instead of being served as another record. Nothing here logs a key,
a body or a plaintext.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_INFO = b"facade mirror record v1"
NONCE_BYTES = 12
#: The GCM tag AESGCM appends to the ciphertext.
TAG_BYTES = 16


class MirrorRecordUnreadable(Exception):
    """A stored body does not open: another key, damaged, or copied from another row."""


class RecordCipher:
    def __init__(self, deployment_key: bytes):
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO).derive(
            deployment_key
        )
        self._aead = AESGCM(derived)

    def seal(self, row: tuple[str, str, str], body: dict[str, Any]) -> bytes:
        """nonce || ciphertext of the body's JSON, bound to `row`. The nonce is random and
        fresh each time: NIST SP 800-38D allows 2**32 such writes under one key."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, orjson.dumps(body), _associated_data(row))

    def open(self, row: tuple[str, str, str], sealed: bytes) -> dict[str, Any]:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext, _associated_data(row))
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            connection, endpoint, vendor_id = row
            raise MirrorRecordUnreadable(
                f"mirror record {connection}/{endpoint}/{vendor_id} cannot be decrypted: the "
                "deployment key changed, or the stored body was altered or belongs to another "
                "row"
            ) from None
        body: dict[str, Any] = orjson.loads(plaintext)
        return body

    def __repr__(self) -> str:
        return "RecordCipher(<key hidden>)"


def sealed_version(sealed: bytes) -> bytes:
    """What tells one sealing of a body from every other: its random nonce and its tag (the
    tag authenticates the ciphertext, so no other ciphertext that opens has the same)."""
    return bytes(sealed[:NONCE_BYTES]) + bytes(sealed[-TAG_BYTES:])


def _associated_data(row: tuple[str, str, str]) -> bytes:
    """The row a body belongs to. A JSON list, not "a/b/c": a "/" inside an endpoint or id
    must not let ("a/b", "c") and ("a", "b/c") bind the same."""
    return orjson.dumps(list(row))
