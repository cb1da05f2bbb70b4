"""facade's JWT signing keys: generated, stored encrypted, rotated, published as a JWKS.

A key signs for `rotate_every`, then keeps verifying for `overlap` so tokens it signed stay
valid until they expire. The private part never leaves the secret box except to sign.
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import KeySet, RSAKey
from sqlmodel import select

from facade.clock import Clock
from facade.store.database import Database
from facade.store.models import SigningKey
from facade.store.secrets import SecretBox

ALGORITHM = "RS256"


class SigningKeys:
    def __init__(
        self,
        database: Database,
        box: SecretBox,
        clock: Clock,
        rotate_every: timedelta = timedelta(days=30),
        overlap: timedelta = timedelta(days=2),
    ):
        self._database = database
        self._box = box
        self._clock = clock
        self.rotate_every = rotate_every
        self.overlap = overlap
        self._lock = threading.Lock()
        self._cache: dict[str, RSAKey] = {}
        self._verification: tuple[tuple[str, ...], KeySet] | None = None
        self._verified_at = 0.0

    def current(self) -> RSAKey:
        """The key that signs now; a new one is made when the current one is due."""
        now = self._clock.now()
        with self._lock, self._database.session() as session:
            rows = session.exec(select(SigningKey).order_by(SigningKey.id)).all()  # type: ignore[arg-type]
            live = [r for r in rows if _aware(r.rotate_after) > now]
            if live:
                row = live[-1]
            else:
                row = self._create(now)
                session.add(row)
                session.commit()
            return self._private(row)

    def rotate(self) -> str:
        """Start signing with a fresh key now; the old one keeps verifying for `overlap`."""
        now = self._clock.now()
        with self._lock, self._database.session() as session:
            for row in session.exec(select(SigningKey)).all():
                if _aware(row.rotate_after) > now:
                    row.rotate_after = now
                    row.retired_at = now + self.overlap
                    session.add(row)
            fresh = self._create(now)
            session.add(fresh)
            session.commit()
            self._verification = None
            return fresh.kid

    def verification_keys(self, *, fresh: bool = False) -> KeySet:
        """The keys that verify tokens now, re-read at most once a minute (or when `fresh`,
        e.g. for a kid not seen yet) and parsed once per key set: verifying a token must not
        query and parse RSA keys on every request."""
        now = self._clock.monotonic()
        if not fresh and self._verification is not None and now - self._verified_at < 60.0:
            return self._verification[1]
        self._verified_at = now
        jwks = self.public_jwks()["keys"]
        fingerprint = tuple(sorted(str(k.get("kid")) for k in jwks))
        if self._verification is None or self._verification[0] != fingerprint:
            self._verification = (fingerprint, KeySet([RSAKey.import_key(k) for k in jwks]))
        return self._verification[1]

    def public_jwks(self) -> dict[str, Any]:
        now = self._clock.now()
        self.current()
        with self._database.session() as session:
            rows = session.exec(select(SigningKey)).all()
        return {"keys": [json.loads(r.public_jwk) for r in rows if _aware(r.retired_at) > now]}

    def _create(self, now: datetime) -> SigningKey:
        kid = secrets.token_urlsafe(12)
        key = RSAKey.generate_key(
            2048, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True
        )
        return SigningKey(
            kid=kid,
            alg=ALGORITHM,
            private_jwk_enc=self._box.encrypt(json.dumps(key.as_dict(private=True))),
            public_jwk=json.dumps(key.as_dict(private=False)),
            created_at=now,
            rotate_after=now + self.rotate_every,
            retired_at=now + self.rotate_every + self.overlap,
        )

    def _private(self, row: SigningKey) -> RSAKey:
        if row.kid not in self._cache:
            self._cache[row.kid] = RSAKey.import_key(
                json.loads(self._box.decrypt(row.private_jwk_enc))
            )
        return self._cache[row.kid]


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
