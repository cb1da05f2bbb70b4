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
from facade.auth.keys import SigningKeys
from facade.auth.operator import Operator, describe_client
from facade.auth.passwords import WeakPassword, check_password
from facade.auth.server.initial_tokens import DEFAULT_LIFETIME as DEFAULT_INITIAL_TOKEN_LIFETIME
from facade.auth.tokens import TokenService
from facade.clock import Clock
from facade.secret_input import SecretNotGiven, SecretOption
from facade.settings import Settings
from facade.store.database import Database
from facade.store.models import LaunchContext
from facade.store.private_files import secure_data_dir
from facade.store.secrets import SecretBox

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
    add = user_commands.add_parser("add", help="create a patient or practitioner login")
    add.add_argument("--username", required=True)
    USER_PASSWORD.add_to(add)
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--patient", help="the Patient id this login is")
    who.add_argument("--practitioner", help="the Practitioner id this login is")
    add.add_argument("--totp", action="store_true", help="require a TOTP second factor")
    _state_options(add)

    client = commands.add_parser("client", help="manage SMART apps and backend services")
    client_commands = client.add_subparsers(dest="action", required=True)
    create = client_commands.add_parser("add", help="register an app")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", action="append", default=[])
    create.add_argument("--public", action="store_true", help="no secret: PKCE only")
    keys = create.add_mutually_exclusive_group()
    keys.add_argument(
        "--jwks-uri", help="asymmetric client: where its public keys are (https, public host)"
    )
    keys.add_argument("--jwks", type=Path, help="asymmetric client: a JWK Set file")
    create.add_argument("--scope", default="", help="the most this client may be granted")
    create.add_argument(
        "--resource-server",
        action="store_true",
        help="may introspect tokens issued to other clients",
    )
    _state_options(create)
    for action in ("disable", "enable", "approve", "show"):
        change = client_commands.add_parser(action, help=f"{action} a client")
        change.add_argument("client_id")
        _state_options(change)
    listing = client_commands.add_parser("list", help="list clients, one JSON line each")
    listing.add_argument("--status", choices=["active", "pending", "disabled"])
    _state_options(listing)
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
    _state_options(initial)

    token = commands.add_parser("token", help="mint an access token for a tool")
    token.add_argument("--scope", default="system/*.rs")
    token.add_argument("--client-id", default=OPERATOR_CLIENT)
    token.add_argument("--patient", default="")
    token.add_argument("--fhir-user", default="")
    _state_options(token)

    launch = commands.add_parser("launch", help="start an EHR launch for a patient")
    launch.add_argument("--patient", required=True)
    launch.add_argument("--encounter", default="")
    launch.add_argument("--app-launch-uri", help="the app's launch URL, to print the full link")
    _state_options(launch)

    audit = commands.add_parser("audit", help="read the audit log")
    audit.add_argument("--patient")
    audit.add_argument("--client")
    audit.add_argument("--since", help="ISO 8601 date or time")
    audit.add_argument("--limit", type=int, default=1000)
    _state_options(audit)


def _state_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--database-url")


class State:
    """facade's state opened for an operator command (no vendor, no server)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.clock = Clock()
        secure_data_dir(settings.data_dir)
        self.database = Database(settings.resolved_database_url)
        self.database.migrate()
        self.box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        self.keys = SigningKeys(self.database, self.box, self.clock)
        self.tokens = TokenService(self.database, self.keys, self.clock, settings.base_url)
        self.operator = Operator(self.database, self.box, self.clock, self.tokens)
        self.audit = AuditLog(self.database, self.clock)


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.with_overrides(data_dir=args.data_dir, database_url=args.database_url)
    password = ""
    if args.command == "user":
        # Judged before any state is opened: a refused password leaves nothing behind.
        try:
            password = USER_PASSWORD.read(args) or ""
            check_password(password, args.username)
        except (SecretNotGiven, WeakPassword) as refusal:
            return _fail(str(refusal), code=2)
    state = State(settings)
    try:
        if args.command == "user":
            fhir_user = (
                f"Patient/{args.patient}" if args.patient else f"Practitioner/{args.practitioner}"
            )
            if state.operator.has_user(args.username):
                return _fail(f"user {args.username!r} exists")
            secret = state.operator.add_user(
                username=args.username, password=password, fhir_user=fhir_user, totp=args.totp
            )
            out = {"username": args.username, "fhirUser": fhir_user}
            if secret:
                out["totp_secret"] = secret
                out["totp_uri"] = (
                    f"otpauth://totp/facade:{args.username}?secret={secret}&issuer=facade"
                )
            return _print(out)
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
                vendor_calls=0,
            )
            out = {"launch": value, "iss": settings.base_url}
            if args.app_launch_uri:
                query = urlencode({"iss": settings.base_url, "launch": value})
                out["url"] = f"{args.app_launch_uri}?{query}"
            return _print(out)
        if args.command == "audit":
            since = datetime.fromisoformat(args.since) if args.since else None
            if since is not None and since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
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


def _client_command(args: argparse.Namespace, state: State) -> int:
    """facade client add|list|show|approve|enable|disable|initial-token."""
    if args.action == "add":
        jwks = args.jwks.read_text() if args.jwks else ""
        refusal = _key_refusal(jwks, args.jwks_uri or "", state.settings)
        if refusal:
            return _fail(refusal, code=2)
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
