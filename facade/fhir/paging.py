"""Opaque, tamper-proof paging cursors and searchset Bundles.

A cursor is encrypted and authenticated (Fernet) and bound to the search it belongs to, so
a client can neither read nor alter it, nor reuse it for another search. It survives a
restart as long as the server's secret key does.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from facade.errors import InvalidCursor


class CursorCodec:
    def __init__(self, secret_key: bytes):
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"facade paging cursor"
        ).derive(secret_key)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    @staticmethod
    def binding(resource_type: str, query: str, count: int) -> str:
        digest = hashlib.sha256(f"{resource_type}?{query}&_count={count}".encode()).digest()
        return base64.urlsafe_b64encode(digest[:12]).decode()

    def encode(self, binding: str, position: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps({"b": binding, "p": position})).decode()

    def decode(self, token: str, binding: str) -> dict[str, Any]:
        try:
            payload = orjson.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, orjson.JSONDecodeError, ValueError):
            raise InvalidCursor() from None
        if not isinstance(payload, dict) or payload.get("b") != binding:
            raise InvalidCursor("The paging cursor belongs to a different search.")
        position = payload.get("p")
        if not isinstance(position, dict):
            raise InvalidCursor()
        return position


def searchset(
    base_url: str,
    resource_type: str,
    resources: list[dict[str, Any]],
    self_url: str,
    next_url: str | None,
    included: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in resources
        ]
        + [
            {
                "fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "include"},
            }
            for resource in included or []
        ],
    }
