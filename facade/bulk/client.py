"""`facade export`: a Bulk Data 2.0 client for any FHIR server, and `facade group`.

The client only relies on the specifications: SMART Backend Services (discovery at
`.well-known/smart-configuration`, a private_key_jwt client assertion, client_credentials),
the Bulk Data kick-off (GET, or POST with a Parameters body when patients are named), status
polling that honours Retry-After and shows X-Progress, and downloads of every output and
error file (gzip accepted, resumed with Range when a transfer breaks), each checked against
the manifest's `count`. Files are written 0600 in a 0700 directory that holds this export
only. HTTP goes through an injected httpx.AsyncClient, so tests (and other transports) drive
it in-process.

`facade group add|list` manages operator-defined Groups on facade's own state: members must
be patients the vendor knows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from facade.bulk.export_dir import ExportDirectory, ExportDirectoryRefused, request_identity
from facade.store.private_files import open_private

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KICKOFF_HEADERS = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
#: Seconds between polls when the server sends no Retry-After (doubling up to the cap).
DEFAULT_POLL_SECONDS = 1.0
MAX_DEFAULT_POLL_SECONDS = 60.0
#: Attempts per file download (the first, then resumptions with Range).
DOWNLOAD_ATTEMPTS = 5
#: Kick-offs refused with 429 are retried this many times (honouring Retry-After).
KICKOFF_ATTEMPTS = 5
ASSERTION_LIFETIME = 300
CHUNK = 1 << 16
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")

Sleep = Callable[[float], Awaitable[None]]
Progress = Callable[[str, float | None], None]


class ExportError(Exception):
    """The export could not be done; the message says why (server diagnostics included)."""


# -- options and results -----------------------------------------------------------------


@dataclass(frozen=True)
class BackendCredentials:
    client_id: str
    key: RSAKey | ECKey
    alg: str
    kid: str


@dataclass(frozen=True)
class ExportOptions:
    base_url: str
    out: Path
    group: str | None = None
    patients: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    since: str | None = None
    credentials: BackendCredentials | None = None
    #: The scope to ask for; derived from the types when empty.
    scope: str = ""

    @property
    def base(self) -> str:
        return self.base_url.rstrip("/")

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same export (the output directory remembers it)."""
        return request_identity(self.base, self.group, self.patients, self.types, self.since)

    def requested_scope(self) -> str:
        if self.scope:
            return self.scope
        if not self.types:
            return "system/*.rs"
        types = list(self.types)
        if self.group and "Group" not in types:
            types.append("Group")
        return " ".join(f"system/{t}.rs" for t in types)


@dataclass
class DownloadedFile:
    kind: str  # "output" or "error"
    resource_type: str
    url: str
    path: Path
    count: int
    expected: int | None
    size: int
    resumed: int = 0

    @property
    def verified(self) -> bool:
        return self.expected is None or self.expected == self.count


@dataclass
class ExportResult:
    status_url: str
    manifest: dict[str, Any]
    files: list[DownloadedFile] = field(default_factory=list)
    polls: int = 0

    @property
    def outputs(self) -> list[DownloadedFile]:
        return [f for f in self.files if f.kind == "output"]

    @property
    def errors(self) -> list[DownloadedFile]:
        return [f for f in self.files if f.kind == "error"]

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for item in self.outputs:
            totals[item.resource_type] = totals.get(item.resource_type, 0) + item.count
        return totals


# -- keys and tokens -----------------------------------------------------------------------


def load_credentials(client_id: str, key_file: Path, kid: str = "") -> BackendCredentials:
    """A private key from a JWK, a JWK Set (its first private key) or a PEM file."""
    raw = key_file.read_bytes()
    key: RSAKey | ECKey
    text = raw.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        data = json.loads(text)
        if "keys" in data:
            private = [k for k in data["keys"] if "d" in k]
            if not private:
                raise ExportError(f"{key_file}: the JWK Set holds no private key.")
            data = private[0]
        if "d" not in data:
            raise ExportError(f"{key_file}: the JWK is not a private key.")
        kty = data.get("kty")
        if kty == "RSA":
            key = RSAKey.import_key(data)
        elif kty == "EC":
            key = ECKey.import_key(data)
        else:
            raise ExportError(f"{key_file}: key type {kty!r} is not RSA or EC.")
        kid = kid or str(data.get("kid") or "")
    else:
        try:
            key = RSAKey.import_key(raw)
        except Exception:
            try:
                key = ECKey.import_key(raw)
            except Exception:
                raise ExportError(f"{key_file}: not an RSA or EC private key.") from None
        if not key.is_private:
            raise ExportError(f"{key_file}: the PEM is not a private key.")
    if isinstance(key, RSAKey):
        alg = "RS384"
    else:
        if key.curve_name != "P-384":
            raise ExportError(f"{key_file}: ES384 needs a P-384 key, not {key.curve_name}.")
        alg = "ES384"
    return BackendCredentials(client_id, key, alg, kid or key.thumbprint())


def client_assertion(credentials: BackendCredentials, audience: str, now: float) -> str:
    claims = {
        "iss": credentials.client_id,
        "sub": credentials.client_id,
        "aud": audience,
        "exp": int(now) + ASSERTION_LIFETIME,
        "jti": secrets.token_urlsafe(32),
    }
    header = {"alg": credentials.alg, "kid": credentials.kid, "typ": "JWT"}
    return jwt.encode(header, claims, credentials.key, algorithms=[credentials.alg])


class Session:
    """Holds the access token; asks for a new one when it is about to expire or refused."""

    def __init__(
        self, http: httpx.AsyncClient, options: ExportOptions, now: Callable[[], float]
    ) -> None:
        self.http = http
        self.options = options
        self.now = now
        self.token = ""
        self.expires_at = math.inf
        self.token_endpoint = ""

    async def headers(self) -> dict[str, str]:
        if self.options.credentials is None:
            return {}
        if not self.token or self.now() >= self.expires_at - 10:
            await self.authenticate()
        return {"Authorization": f"Bearer {self.token}"}

    async def authenticate(self) -> None:
        credentials = self.options.credentials
        if credentials is None:
            return
        if not self.token_endpoint:
            self.token_endpoint = await self._discover()
        response = await self.http.post(
            self.token_endpoint,
            data={
                "grant_type": "client_credentials",
                "scope": self.options.requested_scope(),
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(credentials, self.token_endpoint, self.now()),
            },
            headers={"Accept": "application/json"},
        )
        body = _json(response)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            reason = body.get("error_description") or body.get("error") or response.text[:200]
            raise ExportError(f"the token endpoint refused ({response.status_code}): {reason}")
        self.token = body["access_token"]
        expires_in = body.get("expires_in")
        self.expires_at = (
            self.now() + float(expires_in) if isinstance(expires_in, int | float) else math.inf
        )

    async def _discover(self) -> str:
        url = f"{self.options.base}/.well-known/smart-configuration"
        response = await self.http.get(url, headers={"Accept": "application/json"})
        endpoint = _json(response).get("token_endpoint") if response.status_code == 200 else None
        if not isinstance(endpoint, str) or not endpoint:
            raise ExportError(f"{url} names no token_endpoint ({response.status_code}).")
        return endpoint

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request with the token; on 401 a new token is fetched and the request repeated."""
        extra = kwargs.pop("headers", {})
        response = await self.http.request(
            method, url, headers={**extra, **await self.headers()}, **kwargs
        )
        if response.status_code == 401 and self.options.credentials is not None:
            await self.authenticate()
            response = await self.http.request(
                method, url, headers={**extra, **await self.headers()}, **kwargs
            )
        return response


# -- the export ----------------------------------------------------------------------------


async def run_export(
    options: ExportOptions,
    http: httpx.AsyncClient,
    *,
    progress: Progress | None = None,
    sleep: Sleep = asyncio.sleep,
    now: Callable[[], float] = time.time,
) -> ExportResult:
    """Kick off, poll, download and verify. Raises ExportError when the export fails.

    The output directory is checked first (see facade.bulk.export_dir): one that holds
    anything but an earlier run of the same export is refused before any request is sent."""
    try:
        directory = ExportDirectory.claim(options.out, options.identity())
    except ExportDirectoryRefused as refused:
        raise ExportError(str(refused)) from None
    session = Session(http, options, now)
    status_url = await _kick_off(session, options, sleep)
    manifest, polls = await _poll(session, status_url, sleep, now, progress)
    result = ExportResult(status_url, manifest, polls=polls)
    with_token = bool(manifest.get("requiresAccessToken"))
    planned: list[tuple[str, str, dict[str, Any], Path]] = []
    seen: dict[str, int] = {}
    for kind in ("output", "error"):
        for item in manifest.get(kind) or []:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise ExportError(f"the manifest has a malformed {kind} entry: {item!r}")
            resource_type = str(item.get("type") or "unknown")
            stem = _SAFE_NAME.sub("_", resource_type)
            stem = stem if kind == "output" else f"error.{stem}"
            seen[stem] = seen.get(stem, 0) + 1
            planned.append((kind, resource_type, item, options.out / f"{stem}.{seen[stem]}.ndjson"))
    names = [path.name for *_, path in planned]
    directory.begin(names)
    for kind, resource_type, item, path in planned:
        expected = item.get("count")
        downloaded = await _download(session, item["url"], path, with_token)
        downloaded.kind, downloaded.resource_type = kind, resource_type
        downloaded.expected = expected if isinstance(expected, int) else None
        result.files.append(downloaded)
    wrong = [f for f in result.files if not f.verified]
    if wrong:
        listed = ", ".join(
            f"{f.path.name} has {f.count} lines, expected {f.expected}" for f in wrong
        )
        raise ExportError(f"downloaded files do not match the manifest: {listed}")
    directory.complete(names, manifest.get("transactionTime"))
    return result


def _kickoff_request(options: ExportOptions) -> tuple[str, str, dict[str, Any]]:
    """(method, url, httpx keyword arguments) of the kick-off."""
    if options.group:
        url = f"{options.base}/Group/{options.group}/$export"
    elif options.patients:
        url = f"{options.base}/Patient/$export"
    else:
        url = f"{options.base}/$export"
    if options.patients:
        parameter: list[dict[str, Any]] = []
        if options.types:
            parameter.append({"name": "_type", "valueString": ",".join(options.types)})
        if options.since:
            parameter.append({"name": "_since", "valueInstant": options.since})
        for patient in options.patients:
            reference = patient if "/" in patient else f"Patient/{patient}"
            parameter.append({"name": "patient", "valueReference": {"reference": reference}})
        body = {"resourceType": "Parameters", "parameter": parameter}
        return "POST", url, {"json": body}
    params: dict[str, str] = {}
    if options.types:
        params["_type"] = ",".join(options.types)
    if options.since:
        params["_since"] = options.since
    return "GET", url, {"params": params}


async def _kick_off(session: Session, options: ExportOptions, sleep: Sleep) -> str:
    method, url, kwargs = _kickoff_request(options)
    for _ in range(KICKOFF_ATTEMPTS):
        response = await session.send(method, url, headers=KICKOFF_HEADERS, **kwargs)
        if response.status_code == 429:
            await sleep(_retry_after(response, DEFAULT_POLL_SECONDS * 30))
            continue
        if response.status_code != 202:
            raise ExportError(f"kick-off refused ({response.status_code}): {_reason(response)}")
        location = response.headers.get("content-location")
        if not location:
            raise ExportError("the kick-off answered 202 without a Content-Location.")
        return str(httpx.URL(url).join(location))
    raise ExportError("the server kept refusing the kick-off (429 Too Many Requests).")


async def _poll(
    session: Session,
    status_url: str,
    sleep: Sleep,
    now: Callable[[], float],
    progress: Progress | None,
) -> tuple[dict[str, Any], int]:
    fallback = DEFAULT_POLL_SECONDS
    polls = 0
    while True:
        response = await session.send("GET", status_url, headers={"Accept": "application/json"})
        polls += 1
        if response.status_code == 200:
            manifest = _json(response)
            if not isinstance(manifest.get("output"), list):
                raise ExportError("the completed status carries no manifest output list.")
            if progress is not None:
                progress("complete", 100.0)
            return manifest, polls
        if response.status_code in (202, 429):
            text = response.headers.get("x-progress", "")
            if progress is not None and response.status_code == 202:
                match = _PERCENT.search(text)
                progress(text or "in progress", float(match.group(1)) if match else None)
            delay = _retry_after(response, fallback, now)
            if "retry-after" not in response.headers:
                fallback = min(fallback * 2, MAX_DEFAULT_POLL_SECONDS)
            await sleep(delay)
            continue
        raise ExportError(f"the export failed ({response.status_code}): {_reason(response)}")


async def _download(session: Session, url: str, path: Path, with_token: bool) -> DownloadedFile:
    """Streams the file to `path`; a broken transfer is resumed from where it stopped."""
    written = 0
    resumed = 0
    open_private(path, "wb").close()
    for _attempt in range(DOWNLOAD_ATTEMPTS):
        headers = {"Accept": "application/fhir+ndjson"}
        if written:
            # A range of the encoded (gzip) body is not a range of the file: ask for identity.
            headers.update({"Range": f"bytes={written}-", "Accept-Encoding": "identity"})
        else:
            headers["Accept-Encoding"] = "gzip"
        if with_token:
            headers.update(await session.headers())
        try:
            async with session.http.stream("GET", url, headers=headers) as response:
                if response.status_code == 401 and with_token:
                    await session.authenticate()
                    continue
                if written and response.status_code == 200:
                    written = 0  # the server ignored the range: start over
                    open_private(path, "wb").close()
                elif response.status_code not in (200, 206):
                    await response.aread()
                    raise ExportError(
                        f"downloading {url} failed ({response.status_code}): {_reason(response)}"
                    )
                elif response.status_code == 206 and not _range_starts_at(response, written):
                    raise ExportError(f"{url}: the server sent a range other than asked for.")
                expected_length = _plain_length(response)
                received = 0
                with open_private(path, "ab") as handle:
                    async for chunk in response.aiter_bytes(CHUNK):
                        handle.write(chunk)
                        received += len(chunk)
                written += received
                if expected_length is not None and received < expected_length:
                    resumed += 1
                    continue
        except httpx.TransportError:
            written = path.stat().st_size
            resumed += 1
            continue
        count, size = _count_lines(path)
        return DownloadedFile("output", "", url, path, count, None, size, resumed)
    raise ExportError(f"downloading {url} kept breaking off ({DOWNLOAD_ATTEMPTS} attempts).")


def _plain_length(response: httpx.Response) -> int | None:
    """Content-Length when it counts the bytes we write (no content encoding)."""
    if response.headers.get("content-encoding", "identity") not in ("", "identity"):
        return None
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def _range_starts_at(response: httpx.Response, start: int) -> bool:
    match = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
    return match is not None and int(match.group(1)) == start


def _count_lines(path: Path) -> tuple[int, int]:
    count = 0
    size = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            size += len(chunk)
            count += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        count += 1  # a last line without its newline
    return count, size


def _retry_after(
    response: httpx.Response, fallback: float, now: Callable[[], float] = time.time
) -> float:
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return fallback
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return max(0.0, moment.timestamp() - now())
    return fallback


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(response: httpx.Response) -> str:
    body = _json(response)
    if body.get("resourceType") == "OperationOutcome":
        texts = [
            str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code"))
            for i in body.get("issue", [])
            if isinstance(i, dict)
        ]
        if texts:
            return "; ".join(texts)
    return response.text[:300] or response.reason_phrase


# -- the command line ----------------------------------------------------------------------


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    export = commands.add_parser(
        "export", help="run a Bulk Data $export against a FHIR server and download it"
    )
    export.add_argument(
        "url",
        nargs="?",
        help="the FHIR base URL, e.g. https://ehr.example/fhir (default: the running "
        "`facade serve` of --data-dir)",
    )
    export.add_argument(
        "--data-dir",
        type=Path,
        help="without a URL: the data directory of the facade to export from "
        "(FACADE_DATA_DIR, default .facade)",
    )
    export.add_argument(
        "--tenant", help="without a URL: the practice (`facade tenant add`) to export from"
    )
    who = export.add_mutually_exclusive_group()
    who.add_argument("--group", help="export this Group's patients (Group/[id]/$export)")
    who.add_argument(
        "--patient", action="append", default=[], help="a patient id (repeat; POST kick-off)"
    )
    export.add_argument(
        "--type", action="append", default=[], help="a resource type (repeat or comma-separate)"
    )
    export.add_argument("--since", help="only resources changed after this FHIR instant")
    export.add_argument(
        "--out",
        type=Path,
        default=Path("export"),
        help="directory (./export), made owner-only; new, empty or this export's earlier run",
    )
    export.add_argument("--client-id", help="the backend service's client id")
    export.add_argument("--key", type=Path, help="its private key (JWK, JWK Set or PEM)")
    export.add_argument("--kid", default="", help="key id, when the key file has none")
    export.add_argument("--scope", default="", help="scope to ask for (default system/*.rs)")
    export.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    export.set_defaults(bulk_command=_export_command)

    group = commands.add_parser("group", help="manage operator-defined Groups for $export")
    group_commands = group.add_subparsers(dest="action", required=True)
    add = group_commands.add_parser("add", help="create or replace a Group of patients")
    add.add_argument("--name", required=True, help="the Group's name")
    add.add_argument("--id", dest="group_id", help="the Group id (default: from the name)")
    add.add_argument(
        "--member", action="append", required=True, help="a patient id (repeat for each)"
    )
    listing = group_commands.add_parser("list", help="list operator and vendor Groups")
    for sub in (add, listing):
        sub.add_argument("--data-dir", type=Path, help="facade's state directory (FACADE_DATA_DIR)")
        sub.add_argument("--database-url", help="SQLAlchemy URL (FACADE_DATABASE_URL)")
        sub.add_argument("--tenant", help="a practice of this deployment (`facade tenant add`)")
    group.set_defaults(bulk_command=_group_command)


def run(args: argparse.Namespace, settings: Any) -> int:
    command: Callable[[argparse.Namespace, Any], int] = args.bulk_command
    return command(args, settings)


class ProgressBar:
    """One line on stderr, redrawn in place: a bar when the server gives a percentage."""

    WIDTH = 30

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.drawn = False

    def __call__(self, text: str, percent: float | None) -> None:
        if percent is None:
            bar = "[" + "?" * self.WIDTH + "]"
        else:
            filled = round(self.WIDTH * max(0.0, min(percent, 100.0)) / 100)
            bar = "[" + "#" * filled + "-" * (self.WIDTH - filled) + f"] {percent:5.1f}%"
        self.stream.write(f"\r{bar} {text[:70]}\x1b[K")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def summary(result: ExportResult) -> list[str]:
    lines = [
        f"export complete: transactionTime {result.manifest.get('transactionTime', '?')}, "
        f"{len(result.outputs)} output file(s), {len(result.errors)} error file(s)"
    ]
    for item in result.files:
        flag = "" if item.expected is not None else " (no count in manifest)"
        lines.append(
            f"  {item.kind:6} {item.resource_type:24} {item.count:>9,} lines "
            f"{item.size:>12,} bytes  {item.path}{flag}"
        )
    total = sum(f.count for f in result.outputs)
    lines.append(f"{total:,} resources in {len(result.counts())} type(s); counts verified")
    return lines


def options_from_args(args: argparse.Namespace) -> ExportOptions:
    credentials = None
    if bool(args.client_id) != bool(args.key):
        raise ExportError("--client-id and --key go together.")
    if args.client_id and args.key:
        credentials = load_credentials(args.client_id, args.key, args.kid)
    types = tuple(t.strip() for value in args.type for t in value.split(",") if t.strip())
    return ExportOptions(
        base_url=args.url,
        out=args.out,
        group=args.group,
        patients=tuple(args.patient),
        types=types,
        since=args.since,
        credentials=credentials,
        scope=args.scope,
    )


def _export_command(args: argparse.Namespace, settings: Any) -> int:
    bar = ProgressBar()

    async def go() -> ExportResult:
        async with httpx.AsyncClient(timeout=args.timeout, follow_redirects=True) as http:
            return await run_export(options, http, progress=bar)

    try:
        if not args.url:
            from facade.store.served_base import served_base_url

            args.url = served_base_url(settings.with_overrides(data_dir=args.data_dir))
        options = options_from_args(args)
        result = asyncio.run(go())
    except (ExportError, OSError) as exc:
        bar.close()
        print(f"facade export: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        bar.close()
        print(f"facade export: HTTP failure ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    bar.close()
    print("\n".join(summary(result)))
    return 0


# -- operator groups -----------------------------------------------------------------------


async def add_group(
    runtime: Any, name: str, members: Sequence[str], group_id: str | None = None
) -> dict[str, Any]:
    """Defines an operator Group on a runtime; raises UnknownMembers listing strangers."""
    from facade.bulk.groups import group_resource

    exports = runtime.exports
    identifier = group_id or re.sub(r"[^A-Za-z0-9\-.]+", "-", name).strip("-.")[:64]
    references = [m if "/" in m else f"Patient/{m}" for m in members]
    info = await exports.groups.define(
        identifier, name, references, "facade-operator", exports.clock.now()
    )
    resource: dict[str, Any] = group_resource(info)
    return resource


async def list_groups(runtime: Any) -> list[dict[str, Any]]:
    from facade.bulk.groups import group_resource

    return [group_resource(g) for g in await runtime.exports.groups.all()]


def _group_command(args: argparse.Namespace, settings: Any) -> int:
    from facade.errors import FacadeError
    from facade.runtime import build_runtime

    settings = settings.with_overrides(data_dir=args.data_dir, database_url=args.database_url)

    async def go() -> list[dict[str, Any]]:
        runtime = await build_runtime(settings)
        try:
            if args.action == "add":
                return [await add_group(runtime, args.name, args.member, args.group_id)]
            return await list_groups(runtime)
        finally:
            await runtime.aclose()

    try:
        groups = asyncio.run(go())
    except FacadeError as exc:
        print(f"facade group: {exc.message}", file=sys.stderr)
        return 1
    for group in groups:
        members = [m["entity"]["reference"] for m in group["member"]]
        print(json.dumps({"id": group["id"], "name": group["name"], "members": members}))
    return 0
