"""The operator's commands that work on facade's state without serving: users, clients,
tokens for tools, EHR launches and the audit log (`facade user|client|token|launch|audit`).

Every command prints JSON (one object, or one line per audit record) so scripts can read it.
Passwords and client secrets are printed once, at creation, and never stored in clear.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from facade.auth.audit import AuditEntry, AuditLog
from facade.auth.client_keys import ALGORITHMS, KeyFileExists, generate_key
from facade.auth.keys import SigningKeys
from facade.auth.operator import Operator, describe_client
from facade.auth.passwords import WeakPassword, check_password
from facade.auth.server.initial_tokens import DEFAULT_LIFETIME as DEFAULT_INITIAL_TOKEN_LIFETIME
from facade.auth.tokens import TokenService
from facade.clock import Clock
from facade.patient_lookup import PatientUnknown, check_patient
from facade.secret_input import SecretNotGiven, SecretOption
from facade.settings import Settings
from facade.store.database import Database
from facade.store.models import LaunchContext
from facade.store.private_files import secure_data_dir
from facade.store.secrets import SecretBox
from facade.store.served_base import read_served_base, served_base_url

OPERATOR_CLIENT = "facade-operator"
LAUNCH_LIFETIME = timedelta(minutes=10)
#: A new login's password: from a file, stdin, FACADE_USER_PASSWORD or a prompt (twice).
USER_PASSWORD = SecretOption(
    name="password",
    env="FACADE_USER_PASSWORD",
    what="the password",
    confirm=True,
    note=" (on a terminal without either, facade asks twice)",
)


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    user = commands.add_parser("user", help="manage login accounts")
    user_commands = user.add_subparsers(dest="action", required=True)
    add = user_commands.add_parser(
        "add",
        help="create a patient or practitioner login",
        description="Create a login for the SMART authorization server. A --patient id is "
        "checked at the EHR first (one vendor call).",
    )
    add.add_argument("--username", required=True, help="the name the person logs in with")
    USER_PASSWORD.add_to(add)
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--patient", help="the Patient id this login is (must exist at the EHR)")
    who.add_argument("--practitioner", help="the Practitioner id this login is")
    add.add_argument("--totp", action="store_true", help="require a TOTP second factor")
    state_options(add)
    users = user_commands.add_parser("list", help="list logins, one JSON line each")
    state_options(users)
    disable = user_commands.add_parser(
        "disable", help="stop a login: it cannot log in, and its tokens are revoked at once"
    )
    disable.add_argument("username", help="the login to disable")
    state_options(disable)

    client = commands.add_parser("client", help="manage SMART apps and backend services")
    client_commands = client.add_subparsers(dest="action", required=True)
    create = client_commands.add_parser(
        "add",
        help="register an app",
        description="Register a SMART app (with --redirect-uri) or a backend service (with "
        "a key: --generate-key, --jwks or --jwks-uri). Prints the client id, and a secret "
        "for a confidential symmetric client, once.",
    )
    create.add_argument("--name", required=True, help="the app's name, shown at consent")
    create.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="where authorization answers go (repeat for several)",
    )
    create.add_argument("--public", action="store_true", help="no secret: PKCE only")
    keys = create.add_mutually_exclusive_group()
    keys.add_argument(
        "--jwks-uri", help="asymmetric client: where its public keys are (https, public host)"
    )
    keys.add_argument("--jwks", type=Path, help="asymmetric client: a JWK Set file")
    keys.add_argument(
        "--generate-key",
        choices=ALGORITHMS,
        help="asymmetric client: make a key pair, register its public key and write the "
        "private JWK to --private-key-out",
    )
    create.add_argument(
        "--private-key-out",
        type=Path,
        help="with --generate-key: the new private key file (created 0600, never overwritten)",
    )
    create.add_argument("--scope", default="", help="the most this client may be granted")
    create.add_argument(
        "--resource-server",
        action="store_true",
        help="may introspect tokens issued to other clients",
    )
    state_options(create)
    for action, what in (
        ("disable", "disable a client and revoke its tokens"),
        ("enable", "enable a disabled client"),
        ("approve", "approve a self-registered client held as pending"),
        ("show", "show one client in full"),
    ):
        change = client_commands.add_parser(action, help=what)
        change.add_argument("client_id", help="the client's id")
        state_options(change)
    listing = client_commands.add_parser("list", help="list clients, one JSON line each")
    listing.add_argument(
        "--status", choices=["active", "pending", "disabled"], help="only clients in this state"
    )
    state_options(listing)
    initial = client_commands.add_parser(
        "initial-token",
        help="mint a single-use initial access token for POST /auth/register (RFC 7591)",
    )
    initial.add_argument(
        "--expires-in",
        type=int,
        default=int(DEFAULT_INITIAL_TOKEN_LIFETIME.total_seconds()),
        help="seconds until it expires (default a day, at most 30 days)",
    )
    state_options(initial)

    token = commands.add_parser(
        "token",
        help="mint an access token for a tool",
        description="Mint an access token for the running server (its base is read from the "
        "data directory; --base overrides). System scopes make a 5-minute backend token; "
        "others last an hour.",
    )
    token.add_argument(
        "--scope", default="system/*.rs", help="scopes to grant (default: %(default)s)"
    )
    token.add_argument(
        "--client-id",
        default=OPERATOR_CLIENT,
        help="the client the token is issued to (default: %(default)s, made when missing)",
    )
    token.add_argument("--patient", default="", help="patient in context (patient/ scopes)")
    token.add_argument(
        "--fhir-user", default="", help="the user the token speaks for, e.g. Practitioner/1"
    )
    _base_option(token)
    state_options(token)

    launch = commands.add_parser(
        "launch",
        help="start an EHR launch for a patient",
        description="Start an EHR launch bound to a patient (checked at the EHR: one vendor "
        "call) and print the launch value, the iss and the app's launch URL.",
    )
    launch.add_argument("--patient", required=True, help="the Patient id the launch opens")
    launch.add_argument("--encounter", default="", help="the Encounter id in context, if any")
    launch.add_argument("--app-launch-uri", help="the app's launch URL, to print the full link")
    _base_option(launch)
    state_options(launch)

    audit = commands.add_parser("audit", help="read the audit log")
    audit.add_argument("--patient", help="only records about this Patient id")
    audit.add_argument("--client", help="only records of this client id")
    audit.add_argument(
        "--since", help="only records from then on: an ISO 8601 date or time (UTC if no offset)"
    )
    audit.add_argument(
        "--limit", type=int, default=1000, help="at most this many records (default: %(default)s)"
    )
    state_options(audit)


def state_options(parser: argparse.ArgumentParser) -> None:
    """Where an admin command finds facade's state: its data dir and database."""
    parser.add_argument(
        "--data-dir", type=Path, help="facade's state directory (FACADE_DATA_DIR, default .facade)"
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (FACADE_DATABASE_URL, default SQLite in the data dir)",
    )
    parser.add_argument("--tenant", help="a practice of this deployment (`facade tenant add`)")


def _base_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base",
        help="the server's FHIR base URL (default: the running `facade serve` of this data "
        "directory, else FACADE_PUBLIC_BASE_URL or http://HOST:PORT/fhir)",
    )


class State:
    """facade's state opened for an operator command (no vendor, no server). Tokens are
    minted for `base_url`: the running server's FHIR base."""

    def __init__(self, settings: Settings, base_url: str | None = None):
        self.settings = settings
        self.base_url = base_url or settings.base_url
        self.clock = Clock()
        secure_data_dir(settings.data_dir)
        self.database = Database(settings.resolved_database_url)
        self.database.migrate()
        self.box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        self.keys = SigningKeys(self.database, self.box, self.clock)
        self.tokens = TokenService(self.database, self.keys, self.clock, self.base_url)
        self.operator = Operator(self.database, self.box, self.clock, self.tokens)
        self.audit = AuditLog(self.database, self.clock)


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.with_overrides(data_dir=args.data_dir, database_url=args.database_url)
    password = ""
    if args.command == "user" and args.action == "add":
        # Judged before any state is opened: a refused password leaves nothing behind.
        try:
            password = USER_PASSWORD.read(args) or ""
            check_password(password, args.username)
        except (SecretNotGiven, WeakPassword) as refused:
            return _fail(str(refused), code=2)
    refusal = _usage_refusal(args)
    if refusal:
        return _fail(refusal, code=2)
    vendor_calls = 0
    if (args.command == "user" and args.action == "add" and args.patient) or (
        args.command == "launch"
    ):
        # A login or launch for a patient the EHR does not hold would fail only later, at
        # the first FHIR request: ask the EHR now (one call).
        try:
            vendor_calls = check_patient(
                settings, read_served_base(settings.data_dir), args.patient
            )
        except PatientUnknown as unknown:
            return _fail(f"--patient: {unknown}", code=2)
    state = State(settings, served_base_url(settings, getattr(args, "base", None)))
    try:
        if args.command == "user":
            return _user_command(args, state, password)
        if args.command == "client":
            return _client_command(args, state)
        if args.command == "token":
            if args.client_id == OPERATOR_CLIENT and not _client_exists(state, OPERATOR_CLIENT):
                state.operator.add_client(
                    name="facade operator tools",
                    redirect_uris=[],
                    jwks='{"keys": []}',
                    client_id=OPERATOR_CLIENT,
                )
            minted = state.operator.mint_token(
                client_id=args.client_id,
                scope=args.scope,
                patient_id=args.patient,
                fhir_user=args.fhir_user,
            )
            return _print({"access_token": minted, "token_type": "Bearer", "scope": args.scope})
        if args.command == "launch":
            return _launch_command(args, state, vendor_calls)
        if args.command == "audit":
            since = _instant(args.since) if args.since else None
            for record in state.audit.query(
                patient_id=args.patient, client_id=args.client, since=since, limit=args.limit
            ):
                line = record.model_dump(exclude={"id"})
                line["recorded_at"] = record.recorded_at.isoformat()
                print(json.dumps(line), flush=True)
            return 0
    finally:
        state.database.dispose()
    return _fail("unknown command")


def _usage_refusal(args: argparse.Namespace) -> str | None:
    """Why the command's options cannot be used, found before any state is written: a
    --since that is no time, key options that do not fit."""
    if args.command == "audit" and args.since and _instant(args.since) is None:
        return (
            f"--since {args.since!r} is not an ISO 8601 date or time "
            "(e.g. 2026-12-05 or 2026-12-05T14:30:00Z)"
        )
    if args.command == "client" and args.action == "add":
        return _key_options_refusal(args)
    return None


def _instant(text: str) -> datetime | None:
    """An ISO 8601 date or time as an aware UTC instant (a date is its midnight, UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _user_command(args: argparse.Namespace, state: State, password: str) -> int:
    """facade user add|list|disable."""
    if args.action == "list":
        for account in state.operator.users():
            print(json.dumps(account), flush=True)
        return 0
    if args.action == "disable":
        if not state.operator.disable_user(args.username):
            return _fail(f"no user {args.username!r}")
        return _print({"username": args.username, "status": "disabled"})
    fhir_user = f"Patient/{args.patient}" if args.patient else f"Practitioner/{args.practitioner}"
    if state.operator.has_user(args.username):
        return _fail(f"user {args.username!r} exists")
    secret = state.operator.add_user(
        username=args.username, password=password, fhir_user=fhir_user, totp=args.totp
    )
    out = {"username": args.username, "fhirUser": fhir_user}
    if secret:
        out["totp_secret"] = secret
        out["totp_uri"] = f"otpauth://totp/facade:{args.username}?secret={secret}&issuer=facade"
    return _print(out)


def _launch_command(args: argparse.Namespace, state: State, vendor_calls: int) -> int:
    value = secrets.token_urlsafe(24)
    with state.database.session() as session:
        session.add(
            LaunchContext(
                launch=value,
                patient_id=args.patient,
                encounter_id=args.encounter,
                created_by="operator",
                expires_at=state.clock.now() + LAUNCH_LIFETIME,
            )
        )
        session.commit()
    state.audit.record(
        AuditEntry(interaction="launch", username="operator", patient_ids=[args.patient]),
        outcome="success",
        vendor_calls=vendor_calls,
    )
    out = {"launch": value, "iss": state.base_url}
    if args.app_launch_uri:
        query = urlencode({"iss": state.base_url, "launch": value})
        out["url"] = f"{args.app_launch_uri}?{query}"
    return _print(out)


def _client_command(args: argparse.Namespace, state: State) -> int:
    """facade client add|list|show|approve|enable|disable|initial-token."""
    if args.action == "add":
        jwks = args.jwks.read_text() if args.jwks else ""
        refusal = _key_refusal(jwks, args.jwks_uri or "", state.settings)
        if refusal:
            return _fail(refusal, code=2)
        generated = None
        if args.generate_key:
            try:
                generated = generate_key(args.generate_key, args.private_key_out)
            except (KeyFileExists, OSError) as exc:
                return _fail(f"--private-key-out: {exc}", code=2)
            jwks = json.dumps(generated.public_jwks)
        registered = state.operator.add_client(
            name=args.name,
            redirect_uris=args.redirect_uri,
            public=args.public,
            jwks=jwks,
            jwks_uri=args.jwks_uri or "",
            scope=args.scope,
            resource_server=args.resource_server,
        )
        out = {"client_id": registered.client_id}
        if registered.client_secret:
            out["client_secret"] = registered.client_secret
        if generated is not None:
            out["kid"] = generated.kid
            out["private_key"] = str(args.private_key_out)
        return _print(out)
    if args.action == "list":
        for row in state.operator.clients(args.status):
            print(json.dumps(describe_client(row)), flush=True)
        return 0
    if args.action == "show":
        found = state.operator.client(args.client_id)
        if found is None:
            return _fail(f"no client {args.client_id!r}")
        print(json.dumps(describe_client(found, full=True)), flush=True)
        return 0
    if args.action == "initial-token":
        try:
            token, expires_at = state.operator.mint_initial_access_token(
                timedelta(seconds=args.expires_in)
            )
        except ValueError as exc:
            return _fail(str(exc), code=2)
        return _print(
            {"initial_access_token": token, "expires_at": expires_at.isoformat(), "uses": "1"}
        )
    status = {"disable": "disabled", "enable": "active", "approve": "active"}[args.action]
    if not state.operator.set_client_status(args.client_id, status):
        return _fail(f"no client {args.client_id!r}")
    return _print({"client_id": args.client_id, "status": status})


def _key_options_refusal(args: argparse.Namespace) -> str | None:
    """--generate-key and --private-key-out go together, and a key is never overwritten."""
    if bool(args.generate_key) != bool(args.private_key_out):
        return "--generate-key and --private-key-out go together"
    if args.private_key_out and args.private_key_out.exists():
        return f"--private-key-out: {args.private_key_out} exists; facade does not overwrite keys"
    return None


def _key_refusal(jwks: str, jwks_uri: str, settings: Settings) -> str | None:
    """Why `client add --jwks/--jwks-uri` is refused: the same rules as registration (public
    keys of RS384/ES384; a jwks_uri on a public https host, http only for a plain-http
    facade), so the operator learns now rather than at the client's first token request."""
    from facade.auth.server.jwks import SystemResolver, jwks_uri_refusal
    from facade.auth.server.registration_rules import MetadataRefused, check_jwks

    if jwks:
        try:
            check_jwks(json.loads(jwks))
        except ValueError as exc:  # MetadataRefused is one, and so is a JSON error
            return f"--jwks: {exc}" if isinstance(exc, MetadataRefused) else "--jwks: not JSON"
    if jwks_uri:
        allow_http = settings.base_url.startswith("http://")
        reason = asyncio.run(jwks_uri_refusal(jwks_uri, SystemResolver(), allow_http=allow_http))
        if reason:
            return f"--jwks-uri: {reason}"
    return None


def _client_exists(state: State, client_id: str) -> bool:
    from sqlmodel import select

    from facade.store.models import OAuthClient

    with state.database.session() as session:
        row = session.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()
    return row is not None


def _print(value: dict[str, str]) -> int:
    print(json.dumps(value), flush=True)
    return 0


def _fail(message: str, code: int = 1) -> int:
    print(f"facade: {message}", file=sys.stderr)
    return code
