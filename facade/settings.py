"""facade's configuration: one immutable object, read from FACADE_* environment variables.

Every command-line option has an environment variable of the same name. Nothing else in
facade reads the environment; the settings object is passed to whatever needs it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "FACADE_"
#: FACADE_REGISTRATION values (dynamic client registration policy).
REGISTRATION_MODES = ("approval", "open")
#: Bind addresses meaning "every interface": never advertised as the public base URL.
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
#: An origin as browsers send it: scheme, host, optional port; no path, no trailing slash.
_ORIGIN = re.compile(r"https?://[a-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")


@dataclass(frozen=True)
class Settings:
    """What an operator can set. Defaults give a zero-set-up server on the embedded sandbox."""

    host: str = "127.0.0.1"
    port: int = 8080
    #: Where the SQLite database, the secret key file and (later) export files live.
    data_dir: Path = field(default_factory=lambda: Path(".facade"))
    #: SQLAlchemy URL; empty means a SQLite file in data_dir.
    database_url: str = ""
    vendor: str = "drchrono"
    #: Public base URL of the FHIR endpoint; empty means http://HOST:PORT/fhir, with a
    #: wildcard HOST (0.0.0.0, ::) advertised as localhost (serve warns: set this instead).
    public_base_url: str = ""
    #: Fernet key (urlsafe base64 of 32 bytes) for secrets at rest; empty: a key file in data_dir.
    secret_key: str = ""
    # Embedded sandbox (used when no vendor connection is stored).
    sandbox_patients: int = 50
    sandbox_seed: int = 1
    # Upstream client behaviour.
    upstream_hourly_limit: int = 500
    upstream_burst_per_second: int = 10
    upstream_timeout_seconds: float = 20.0
    upstream_retries: int = 3
    #: The longest an interactive request waits for the vendor's rate limit before giving up.
    upstream_max_wait_seconds: float = 5.0
    #: How long a fetched vendor page may be reused (seconds); practice-wide lookups live longer.
    upstream_page_cache_seconds: float = 120.0
    upstream_lookup_cache_seconds: float = 900.0
    # FHIR search.
    default_page_size: int = 50
    max_page_size: int = 250
    # Request limits on every route, checked before anything is parsed (413 / 414).
    #: Largest request body: 2 MiB holds a Group of 20,000 members (1.6 MB pretty-printed)
    #: or a $export Parameters naming 20,000 patients (1.4 MB compact).
    max_body_bytes: int = 2 * 1024 * 1024
    #: Longest query string, and longest path (the common 8 KiB request-line limit of proxies).
    max_query_bytes: int = 8 * 1024
    log_level: str = "info"
    # Bulk $export (files live in data_dir/exports).
    #: Exports queued or running at once; one more kick-off gets 429 with Retry-After.
    bulk_max_running_exports: int = 4
    #: Jobs the in-process worker runs at the same time.
    bulk_worker_concurrency: int = 2
    #: An NDJSON output file is closed and the next one started beyond this many bytes.
    bulk_file_size_bytes: int = 64 * 1024 * 1024
    #: Output files are deleted this long after the export completed (the job is kept).
    bulk_file_expiry_seconds: float = 86400.0
    #: Patient and Group exports of at most this many patients list per patient.
    bulk_per_patient_threshold: int = 10
    #: Dynamic client registration (RFC 7591): "approval" (default) holds every registered
    #: client as pending until an operator approves it; "open" lets user-facing apps with
    #: patient-level scopes start at once (backend and user/ apps are still held).
    registration: str = ""
    #: Deprecated spelling of `registration`: "true" means approval, "false" means open.
    #: Used only when FACADE_REGISTRATION is unset.
    registration_approval: str = ""
    #: Registrations one source address may attempt per hour (0 disables the limit); a
    #: registration with an operator's initial access token is not counted.
    registration_per_hour: int = 10
    #: FHIR requests per minute one client may make (0 disables the limit).
    client_requests_per_minute: int = 600
    #: "local-development" lets a non-sandbox server answer on plain HTTP; otherwise
    #: public_base_url must be https (facade behind a TLS-terminating proxy).
    allow_http: str = ""
    #: Origins whose browser apps may call the FHIR, discovery and token routes (CORS):
    #: "*" (default) for any, or a comma-separated list such as
    #: "https://app.example,http://localhost:3000". Never with cookies: tokens travel in
    #: the Authorization header.
    cors_origins: str = "*"

    def __post_init__(self) -> None:
        cors_origins(self.cors_origins)  # a malformed origin stops start-up, not a request
        if self.registration not in ("", *REGISTRATION_MODES):
            raise ValueError(
                f"setting {ENV_PREFIX}REGISTRATION: {self.registration!r} is not one of "
                + ", ".join(REGISTRATION_MODES)
            )

    @property
    def registration_mode(self) -> str:
        """The registration policy, "approval" or "open": FACADE_REGISTRATION, else the
        deprecated FACADE_REGISTRATION_APPROVAL (false → open), else approval."""
        if self.registration:
            return self.registration
        legacy = str(self.registration_approval).strip().lower()
        return "open" if legacy in ("0", "false", "no", "off") else "approval"

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """The origins CORS allows, or ("*",) for any."""
        return cors_origins(self.cors_origins)

    @property
    def base_url(self) -> str:
        """The FHIR base clients see. A wildcard bind address (0.0.0.0 in a container) is
        no address a client can use: without FACADE_PUBLIC_BASE_URL it is advertised as
        localhost, and `facade serve` warns (see `binds_wildcard`)."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = "localhost" if self.binds_wildcard else self.host
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self.port}/fhir"

    @property
    def binds_wildcard(self) -> bool:
        """Listening on every interface, so the bind address says nothing of the public one."""
        return self.host.strip("[]") in WILDCARD_HOSTS

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'facade.db').resolve()}"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; None values are ignored (unset CLI options)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **_coerce_all(given))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = raw
        return cls(**_coerce_all(values))


def cors_origins(value: str) -> tuple[str, ...]:
    """FACADE_CORS_ORIGINS as origins (scheme://host[:port], lower case, as browsers send
    them), or ("*",) when it is empty or names "*"."""
    names = [part.strip() for part in value.replace(" ", ",").split(",") if part.strip()]
    if not names or "*" in names:
        return ("*",)
    origins = []
    for name in names:
        origin = name.rstrip("/").lower()
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"setting {ENV_PREFIX}CORS_ORIGINS: {name!r} is not an origin "
                "(scheme://host[:port], without a path) nor '*'"
            )
        origins.append(origin)
    return tuple(origins)


def _coerce_all(values: dict[str, Any]) -> dict[str, Any]:
    kinds = {f.name: f.type for f in fields(Settings)}
    coerced: dict[str, Any] = {}
    for name, value in values.items():
        if name not in kinds:
            raise ValueError(f"unknown setting {name!r}")
        kind = str(kinds[name])
        try:
            if kind == "bool":
                coerced[name] = (
                    value
                    if isinstance(value, bool)
                    else str(value).strip().lower() in ("1", "true", "yes", "on")
                )
            elif kind == "int":
                coerced[name] = int(value)
            elif kind == "float":
                coerced[name] = float(value)
            elif kind == "Path":
                coerced[name] = Path(value)
            else:
                coerced[name] = str(value)
        except ValueError as exc:
            raise ValueError(f"setting {ENV_PREFIX}{name.upper()}: {exc}") from exc
    return coerced


def setting_names() -> list[str]:
    """Every environment variable facade reads, for the README and `facade --help`."""
    return [ENV_PREFIX + f.name.upper() for f in fields(Settings)]
