"""facade's configuration: one immutable object, read from FACADE_* environment variables.

Every setting is declared once, below, with its type, default and description; pydantic-settings
reads the environment, and the README's settings table is generated from these declarations
(`python -m capability.readme`). A value of the wrong type stops facade at start with a message
naming the variable. Nothing else in facade reads the environment: the settings object is
passed to whatever needs it. `Settings(...)` takes only what it is given (tests and embedding
code are not affected by the environment); `Settings.from_env()` reads it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from cryptography.fernet import Fernet
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from facade.vendors import DEFAULT_VENDOR, VENDORS

ENV_PREFIX = "FACADE_"
LogLevel = Literal["critical", "error", "warning", "info", "debug"]
#: Settings whose values are never repeated in an error message.
SECRET_SETTINGS = frozenset({"secret_key", "webhook_secret"})
#: Bind addresses meaning "every interface": never advertised as the public base URL.
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
#: An origin as browsers send it: scheme, host, optional port; no path, no trailing slash.
_ORIGIN = re.compile(r"https?://[a-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")


def _setting(default: Any, description: str, *, shown: str | None = None, **rules: Any) -> Any:
    """A declared setting: its default, the README's description of it, and what the README
    shows as its default when the value itself would mislead (an empty string that means
    "derived from other settings")."""
    extra: JsonDict | None = {"shown_default": shown} if shown is not None else None
    return Field(default, description=description, json_schema_extra=extra, **rules)


class SettingsError(ValueError):
    """A setting with a value facade cannot use; the message names the variable."""


class Settings(BaseSettings):
    """What an operator can set. Defaults give a zero-set-up server on the embedded sandbox."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="forbid"
    )

    host: str = _setting("127.0.0.1", "address to listen on")
    port: int = _setting(8080, "port", ge=0, le=65535)
    data_dir: Path = _setting(
        Path(".facade"),
        "state directory (0700, every file in it 0600): SQLite database, secret key file, "
        "export files",
    )
    database_url: str = _setting(
        "",
        "SQLAlchemy URL, e.g. `postgresql+psycopg://user@host/db`",
        shown="SQLite in the data dir",
    )
    vendor: str = _setting(DEFAULT_VENDOR, "the EHR vendor")
    public_base_url: str = _setting(
        "",
        "the FHIR base URL clients see (set it behind a proxy or in a container); without it "
        "a wildcard HOST (0.0.0.0, ::) is advertised as localhost and serve warns",
        shown="`http://HOST:PORT/fhir`",
    )
    #: Fernet key (urlsafe base64 of 32 bytes); empty: a key file in data_dir.
    secret_key: str = _setting(
        "",
        "Fernet key for secrets at rest and paging cursors",
        shown="key file in the data dir",
        repr=False,
    )
    webhook_secret: str = _setting(
        "",
        "the secret registered with the vendor for its webhooks (at least 16 characters); "
        "set, facade records the vendor's change signals at `/webhooks/VENDOR` for the "
        "change-capture mirror, which refreshes the records they name (see "
        "`FACADE_MIRROR`); empty: that route answers 404 and the mirror relies on polling "
        "and reconciling alone",
        shown="empty (webhooks off)",
        repr=False,
    )
    # The change-capture mirror (see the README's "Change-capture mirror").
    mirror: bool = _setting(
        False,
        "`on`: keep a local, encrypted copy of the vendor's records (PHI at rest in the data "
        "dir or database), synced in the background within `FACADE_MIRROR_SHARE` of the "
        "vendor quota; `off`: facade stores no vendor record (`facade mirror purge` deletes "
        "what an earlier run kept)",
        shown="`off`",
    )
    mirror_share: float = _setting(
        0.5,
        "the share of `FACADE_UPSTREAM_HOURLY_LIMIT` the mirror's sync may spend; the rest is "
        "left to live reads",
        gt=0,
        le=1,
    )
    mirror_poll_seconds: float = _setting(
        60.0,
        "the shortest time between two polls for changes (polls are spaced further apart "
        "when the sync's share cannot pay for them)",
        gt=0,
    )
    mirror_reconcile_seconds: float = _setting(
        21600.0,
        "how often a round that re-reads every listing whole (to find records deleted at "
        "the vendor) starts (6 h); see the README for the deletion bound",
        gt=0,
    )
    mirror_hint_seconds: float = _setting(
        5.0,
        "how often the sync looks for records the vendor's webhooks announced and refreshes them",
        gt=0,
    )
    # Embedded sandbox (used when no vendor connection is stored).
    sandbox_patients: int = _setting(50, "synthetic patients in the embedded sandbox", ge=1)
    sandbox_seed: int = _setting(1, "seed of the sandbox generator")
    # Upstream client behaviour.
    upstream_hourly_limit: int = _setting(500, "vendor calls per hour facade allows itself", ge=1)
    upstream_burst_per_second: int = _setting(
        10,
        "the vendor's declared burst limit (calls in one second); facade sends 80% of it, at "
        "most this many calls in any 1.25 s (`0` disables pacing)",
        ge=0,
    )
    upstream_timeout_seconds: float = _setting(20.0, "time limit of one vendor call", gt=0)
    upstream_retries: int = _setting(3, "retries after a vendor 5xx or timeout", ge=0)
    upstream_max_wait_seconds: float = _setting(
        5.0, "the longest a request waits for the vendor's rate limit", ge=0
    )
    upstream_page_cache_seconds: float = _setting(
        120.0, "how long a fetched vendor page may be reused", ge=0
    )
    upstream_lookup_cache_seconds: float = _setting(
        900.0, "how long practice lists (doctors, offices) are reused", ge=0
    )
    # FHIR search.
    default_page_size: int = _setting(50, "`_count` when none is given", ge=1)
    max_page_size: int = _setting(250, "largest `_count`", ge=1)
    # Request limits on every route, checked before anything is parsed (413 / 414).
    # 2 MiB holds a Group of 20,000 members (1.6 MB pretty-printed) or a $export Parameters
    # naming 20,000 patients (1.4 MB compact); 8 KiB is the common request-line limit of proxies.
    max_body_bytes: int = _setting(
        2 * 1024 * 1024,
        "largest request body on any route (2 MiB: a Group of 20,000 members fits); larger: "
        "413 before the body is read",
        ge=1,
    )
    max_query_bytes: int = _setting(
        8 * 1024,
        "longest query string, and longest path, on any route; longer: 414 (send long "
        "searches as `POST _search`)",
        ge=1,
    )
    log_level: LogLevel = _setting("info", "log level")
    # Bulk $export (files live in data_dir/exports).
    bulk_max_running_exports: int = _setting(
        4, "running exports at once; a new kick-off beyond it gets 429 with `Retry-After`", ge=1
    )
    jobs: Literal["in-process", "queue"] = _setting(
        "in-process",
        "who runs exports: `in-process`, this server; `queue`, `facade worker` processes, from "
        "a job queue in the PostgreSQL database every process shares (see Running more than "
        "one process)",
    )
    export_store: str = _setting(
        "",
        "where completed export files go: empty, the data dir; `s3://BUCKET[/PREFIX]`, "
        "S3-compatible object storage (credentials from boto3's chain, e.g. "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; install `facade[s3]`), served to the "
        "export's client by any replica after the token check",
        shown="empty (the data dir)",
    )
    s3_endpoint_url: str = _setting(
        "",
        "an S3-compatible server's URL for `FACADE_EXPORT_STORE` (MinIO, Ceph, ...); empty: AWS",
    )
    bulk_worker_concurrency: int = _setting(
        2, "exports the in-process worker runs in parallel", ge=1
    )
    bulk_file_size_bytes: int = _setting(
        64 * 1024 * 1024,
        "each resource type's lines go to one NDJSON file until it would pass this size "
        "(64 MiB), then to the next",
        ge=1,
    )
    bulk_file_expiry_seconds: float = _setting(
        86400.0,
        "export files are deleted this long after the export completes (job records are kept)",
        ge=0,
    )
    bulk_per_patient_threshold: int = _setting(
        10,
        "Patient/Group exports of at most this many patients call per patient instead of "
        "listing practice-wide",
        ge=0,
    )
    registration: Literal["", "approval", "open"] = _setting(
        "",
        "dynamic client registration: `approval` holds every registered app until "
        "`facade client approve ID`; `open` starts user-facing apps with patient-level scopes "
        "at once (backend and `user/` apps still wait)",
        shown="`approval`",
    )
    registration_approval: str = _setting(
        "",
        "deprecated: `true` means `FACADE_REGISTRATION=approval`, `false` means `open`; "
        "ignored when `FACADE_REGISTRATION` is set",
    )
    registration_per_hour: int = _setting(
        10,
        "registration attempts per source address per hour (`0`: no limit); over it: 429 with "
        "`Retry-After`; registrations with an initial access token are not counted",
        ge=0,
    )
    client_requests_per_minute: int = _setting(
        600,
        "FHIR requests per minute one client may make (`0`: no limit); over it: 429 with "
        "`Retry-After`",
        ge=0,
    )
    allow_http: Literal["", "local-development"] = _setting(
        "",
        "`local-development` lets a server with a real vendor connection answer on plain "
        "HTTP; otherwise its public base URL must be https",
    )

    cors_origins: str = _setting(
        "*",
        "origins whose browser apps may call the FHIR, discovery and token routes: `*` for "
        "any, or a comma-separated list of `scheme://host[:port]`; never with cookies (see "
        "Browser apps)",
    )

    def __init__(self, **values: Any) -> None:
        """The settings given (defaults for the rest); SettingsError naming the variable of
        every value facade cannot use, however the settings are made."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None

    @model_validator(mode="after")
    def _queue_needs_postgresql(self) -> Settings:
        if self.jobs == "queue" and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "FACADE_JOBS=queue needs FACADE_DATABASE_URL=postgresql+psycopg://...: the "
                "job queue lives in the database every process shares"
            )
        return self

    @field_validator("export_store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^\s]*)?", value):
            raise ValueError("must be s3://BUCKET[/PREFIX] (a valid bucket name)")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        cors_origins(value)  # a malformed origin stops start-up, not a request
        return value

    @field_validator("vendor")
    @classmethod
    def _known_vendor(cls, value: str) -> str:
        if value not in VENDORS:
            raise ValueError(f"must be one of {', '.join(VENDORS)}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("webhook_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("must be at least 16 characters (a guessable secret signs forgeries)")
        return value

    @field_validator("secret_key")
    @classmethod
    def _fernet_key(cls, value: str) -> str:
        if value:
            try:
                Fernet(value.encode())
            except ValueError:
                raise ValueError(
                    "must be a Fernet key, 32 url-safe base64-encoded bytes (make one with "
                    "`python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`)"
                ) from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what the constructor is given: the environment is read by from_env alone.
        return (init_settings,)

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
        return type(self)(**{**self.model_dump(), **given})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment (or the given mapping) declares; SettingsError naming
        every variable whose value facade cannot use."""
        source = _Environment(cls, os.environ if environ is None else environ)
        return cls(**source())


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping, so tests can pass one."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        super().__init__(settings_cls)
        # The names as the source expects them: case-insensitive, empty means unset.
        self.env_vars = {key.lower(): value for key, value in environ.items() if value != ""}


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
                f"{name!r} is not an origin (scheme://host[:port], without a path) nor '*'"
            )
        origins.append(origin)
    return tuple(origins)


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        variable = ENV_PREFIX + name.upper()
        if not name:  # a rule across settings: its message names them
            problems.append(error["msg"].removeprefix("Value error, "))
            continue
        if name not in Settings.model_fields:
            problems.append(f"unknown setting {name!r}")
            continue
        message = error["msg"].removeprefix("Value error, ")
        if name not in SECRET_SETTINGS and repr(error["input"]) not in message:
            message += f" (got {error['input']!r})"
        problems.append(f"setting {variable}: {message}")
    return "; ".join(problems)


def setting_names() -> list[str]:
    """Every environment variable facade reads, for the README and `facade --help`."""
    return [ENV_PREFIX + name.upper() for name in Settings.model_fields]


def settings_table() -> str:
    """The README's settings table, from the declarations above."""
    rows = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        rows.append(
            f"| `{ENV_PREFIX}{name.upper()}` | {_kind(info)} | {_shown_default(info)} "
            f"| {info.description} |"
        )
    return "\n".join(rows)


def _kind(info: FieldInfo) -> str:
    """What a value must be, as an operator reads it: "integer ≥ 0", "one of `a`, `b`"."""
    choices = [c for c in get_args(info.annotation) if c != ""]
    if choices:
        return "one of " + ", ".join(f"`{c}`" for c in choices)
    kinds: dict[object, str] = {int: "integer", float: "number", Path: "path", bool: "`on`/`off`"}
    kind = kinds.get(info.annotation, "text")
    bounds = {k: getattr(r, k) for r in info.metadata for k in ("ge", "gt", "le") if hasattr(r, k)}
    if "ge" in bounds and "le" in bounds:
        return f"{kind} {bounds['ge']}–{bounds['le']}"
    if "ge" in bounds:
        kind += f" ≥ {bounds['ge']}"
    if "gt" in bounds:
        kind += f" > {bounds['gt']}"
    if "le" in bounds:
        kind += f", ≤ {bounds['le']}"
    return kind


def _shown_default(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("shown_default"), str):
        return str(extra["shown_default"])
    default = info.default
    if default == "":
        return "empty"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"
