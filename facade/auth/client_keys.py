"""Key pairs for backend services that `facade client add --generate-key` makes: the public
half is registered with the client, the private half written owner-only for the service
(`facade export --key`). The private key is never stored by facade, printed or logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, RSAKey

from facade.store.private_files import open_private

#: The algorithms SMART Backend Services names, as `--generate-key` takes them.
ALGORITHMS = ("ES384", "RS384")
#: RS384 keys: 3072 bits (NIST SP 800-57's size for use beyond 2030; facade accepts ≥ 2048).
RSA_BITS = 3072


@dataclass(frozen=True)
class GeneratedKey:
    #: The JWK Set to register: the public key with its kid, alg and use.
    public_jwks: dict[str, Any]
    kid: str


class KeyFileExists(Exception):
    """The private key file is already there; facade never overwrites a key."""


def generate_key(algorithm: str, private_key_out: Path) -> GeneratedKey:
    """A new key pair for `algorithm` (ES384 or RS384): the private JWK goes to
    `private_key_out` (0600, created new), the public JWK Set is returned."""
    key: ECKey | RSAKey = (
        ECKey.generate_key("P-384", private=True)
        if algorithm == "ES384"
        else RSAKey.generate_key(RSA_BITS, private=True)
    )
    kid = key.thumbprint()
    members = {"kid": kid, "alg": algorithm, "use": "sig"}
    private = {**key.as_dict(private=True), **members}
    public = {**key.as_dict(private=False), **members}
    try:
        with open_private(private_key_out, "x") as handle:
            json.dump(private, handle, indent=2)
            handle.write("\n")
    except FileExistsError:
        raise KeyFileExists(f"{private_key_out} exists; facade does not overwrite keys") from None
    return GeneratedKey(public_jwks={"keys": [public]}, kid=kid)
