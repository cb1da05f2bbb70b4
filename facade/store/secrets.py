"""Encryption of secrets at rest (vendor client secrets and tokens) with Fernet.

The key comes from FACADE_SECRET_KEY, or from a key file made once in the data directory
with owner-only permissions. A SecretBox never logs or returns the key. Other parts of facade
(paging cursors, the mirror) derive keys of their own from the same deployment key.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from facade.store.private_files import open_private, secure_data_dir, tighten

KEY_FILE_NAME = "secret.key"


class SecretDecryptionError(Exception):
    """A stored secret cannot be read with the current key (key changed or data damaged)."""


class SecretBox:
    def __init__(self, key: bytes):
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, secret_key: str, data_dir: Path) -> SecretBox:
        return cls(deployment_key(secret_key, data_dir))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretDecryptionError("stored secret cannot be decrypted with this key") from exc

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"


def deployment_key(secret_key: str, data_dir: Path) -> bytes:
    """The deployment's key material: FACADE_SECRET_KEY, else the data directory's key file
    (made on first use). Use it only as input to a key derivation with a purpose of your
    own (HKDF info), never directly, and never log or show it."""
    if secret_key:
        return secret_key.encode()
    return load_or_create_key(data_dir)


def load_or_create_key(data_dir: Path) -> bytes:
    secure_data_dir(data_dir)
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        tighten(path)
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    # "x" (O_EXCL): two processes starting at once must not write two different keys.
    try:
        with open_private(path, "xb") as handle:
            handle.write(key)
    except FileExistsError:
        return path.read_bytes().strip()
    return key
