"""The browser side: /auth/authorize, login (with TOTP and lockout), consent, the patient
picker and EHR launch. Server-rendered forms, each with a CSRF token bound to the session.

An unknown client or a redirect_uri that is not exactly registered gets an error page and
never a redirect. Every other refusal (bad aud, no PKCE S256, bad launch, no scope the user
may hold) redirects with an `error` and never with a code. Scopes are bound to who logged in
(scopes.holdable): consent offers, and the code holds, nothing that user may not hold.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any, cast

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from facade.auth.audit import AuditEntry
from facade.auth.scopes import (
    PRACTITIONER_USER,
    ScopeSet,
    bind_to_user,
    bound_to_login,
    grants_data,
    user_kind,
)
from facade.auth.server import consent
from facade.auth.server.authority import Authority
from facade.auth.server.lockout import LOCKOUT
from facade.auth.server.oauth import FacadeOAuth2Request, Principal
from facade.auth.server.pages import ClientLabel
from facade.auth.server.sessions import COOKIE_NAME, Session
from facade.auth.server.token_endpoints import authority
from facade.auth.server.users import LoginOutcome, User

router = APIRouter()

#: The authorize parameters kept in the session while the user logs in and consents.
_KEPT = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "launch",
    "nonce",
)


# -- session plumbing -------------------------------------------------------------------------


def _session(request: Request, auth: Authority) -> Session:
    return auth.sessions.decode(request.cookies.get(COOKIE_NAME)) or Session()


def _with_session(response: Response, auth: Authority, session: Session) -> Response:
    response.set_cookie(
        COOKIE_NAME,
        auth.sessions.encode(session),
        max_age=int(auth.sessions.lifetime.total_seconds()),
        path=auth.endpoints.auth_path,
        httponly=True,
        samesite="lax",
        secure=auth.endpoints.issuer.startswith("https://"),
    )
    return response


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _csrf_ok(form: dict[str, str], session: Session) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters (a 500, not a 403).
    return hmac.compare_digest(form.get("csrf_token", "").encode(), session.csrf.encode())


def _error_redirect(params: dict[str, str], error: str, description: str) -> RedirectResponse:
    query = [("error", error), ("error_description", description)]
    if params.get("state"):
        query.append(("state", params["state"]))
    return RedirectResponse(add_params_to_uri(params["redirect_uri"], query), status_code=302)


# -- /auth/authorize --------------------------------------------------------------------------


@router.api_route("/auth/authorize", methods=["GET", "POST"])
async def authorize(request: Request) -> Response:
    auth = authority(request)
    if request.method == "POST":
        pairs = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    else:
        pairs = list(request.query_params.multi_items())
    params = dict(pairs)
    client = auth.clients.find(params.get("client_id", ""))
    if client is None or not client.active:
        return auth.pages.error("This app is not registered with this server.", 400)
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or not client.check_redirect_uri(redirect_uri):
        return auth.pages.error("The redirect address does not match the app's registration.")
    oauth = FacadeOAuth2Request(request.method, str(request.url), request.headers, pairs)
    try:
        auth.server.get_consent_grant(oauth)  # type: ignore[no-untyped-call]
    except OAuth2Error as error:
        code = str(error.error or "invalid_request")
        return _error_redirect(params, code, str(error.description or code))
    if params.get("aud", "").rstrip("/") != auth.endpoints.issuer:
        return _error_redirect(params, "invalid_request", "aud must be this server's FHIR base.")
    if params.get("launch") and auth.launches.resolve(params["launch"]) is None:
        return _error_redirect(params, "invalid_request", "The launch is unknown or expired.")
    # Before anyone logs in, refuse what no login could hold: system/ scopes, and scopes the
    # app is not registered for. Who logs in narrows it further at consent.
    reachable = bind_to_user(
        [s for s in params.get("scope", "").split() if client.allows(s)],
        PRACTITIONER_USER,
        patient_context=True,
    )
    if not grants_data(reachable):
        return _error_redirect(params, "invalid_scope", _NO_DATA_SCOPE)
    session = _session(request, auth)
    session.request = {k: params[k] for k in _KEPT if params.get(k)}
    next_page = auth.endpoints.page("consent" if session.username else "login")
    return _with_session(_see_other(next_page), auth, session)


_NO_DATA_SCOPE = (
    "Request at least one patient/ or user/ scope that this app is registered for and "
    "the user may hold; launch, openid, fhirUser and offline_access alone grant no data."
)


# -- login ------------------------------------------------------------------------------------


def _client_name(auth: Authority, session: Session) -> ClientLabel:
    return ClientLabel.of(auth.clients.find(session.request.get("client_id", "")))


@router.get("/auth/login")
async def login_page(request: Request) -> Response:
    auth = authority(request)
    session = _session(request, auth)
    page = auth.pages.render(
        "login.html",
        title="Log in",
        action=auth.endpoints.page("login"),
        csrf=session.csrf,
        client_name=_client_name(auth, session),
    )
    return _with_session(page, auth, session)


#: One answer for every refused login, whether or not the username has an account.
_WRONG_LOGIN = "The username or password is not right."
_WRONG_CODE = "That code is not right."
_LOCKED = (
    "Too many failed attempts with this username. "
    f"Try again in {int(LOCKOUT.total_seconds()) // 60} minutes."
)


def _refusal(outcome: LoginOutcome, wrong: str) -> tuple[int, str]:
    """Status and message of a refused login: 401 for a wrong secret, 403 while locked. An
    unknown username gets exactly these too, lockout included (users.py counts it)."""
    return (403, _LOCKED) if outcome is LoginOutcome.LOCKED else (401, wrong)


@router.post("/auth/login")
async def login(request: Request) -> Response:
    auth = authority(request)
    session = _session(request, auth)
    form = await _form(request)
    if not _csrf_ok(form, session):
        return auth.pages.error("This form has expired. Start again from the app.", 403)
    username = form.get("username", "").strip()
    # argon2 verification is deliberately slow: it runs off the event loop.
    outcome = await run_in_threadpool(auth.users.check_password, username, form.get("password", ""))
    if outcome is LoginOutcome.NEEDS_TOTP:
        session.totp_pending = username
        return _with_session(_see_other(auth.endpoints.page("login/totp")), auth, session)
    if outcome is LoginOutcome.OK:
        return _logged_in(auth, session, username)
    status, message = _refusal(outcome, _WRONG_LOGIN)
    page = auth.pages.render(
        "login.html",
        status=status,
        title="Log in",
        action=auth.endpoints.page("login"),
        csrf=session.csrf,
        client_name=_client_name(auth, session),
        error=message,
    )
    return _with_session(page, auth, session)


@router.get("/auth/login/totp")
async def totp_page(request: Request) -> Response:
    auth = authority(request)
    session = _session(request, auth)
    if not session.totp_pending:
        return _see_other(auth.endpoints.page("login"))
    page = auth.pages.render(
        "totp.html",
        title="Verify it is you",
        action=auth.endpoints.page("login/totp"),
        csrf=session.csrf,
    )
    return _with_session(page, auth, session)


@router.post("/auth/login/totp")
async def totp(request: Request) -> Response:
    auth = authority(request)
    session = _session(request, auth)
    form = await _form(request)
    if not _csrf_ok(form, session) or not session.totp_pending:
        return auth.pages.error("This form has expired. Start again from the app.", 403)
    username = session.totp_pending
    # The code counts on the same lockout as the password (a database write): off the loop.
    outcome = await run_in_threadpool(auth.users.check_totp, username, form.get("code", ""))
    if outcome is LoginOutcome.OK:
        session.totp_pending = ""
        return _logged_in(auth, session, username)
    if outcome is LoginOutcome.LOCKED:
        session.totp_pending = ""
    status, message = _refusal(outcome, _WRONG_CODE)
    page = auth.pages.render(
        "totp.html",
        status=status,
        title="Verify it is you",
        action=auth.endpoints.page("login/totp"),
        csrf=session.csrf,
        error=message,
    )
    return _with_session(page, auth, session)


def _logged_in(auth: Authority, session: Session, username: str) -> Response:
    fresh = Session(
        username=username,
        auth_time=int(auth.server.clock.now().timestamp()),
        request=session.request,
    )
    if not fresh.request:
        page = auth.pages.render("error.html", title="Logged in", message="You are logged in.")
        return _with_session(page, auth, fresh)
    return _with_session(_see_other(auth.endpoints.page("consent")), auth, fresh)


# -- consent ----------------------------------------------------------------------------------


def _pending(auth: Authority, session: Session) -> tuple[User, dict[str, str]] | None:
    user = auth.users.find(session.username) if session.username else None
    if user is None or not session.request.get("redirect_uri"):
        return None
    return user, session.request


def _patient_in_context(auth: Authority, user: User, params: dict[str, str], scopes: str) -> bool:
    """Whether the authorization will carry a patient: a patient's own, an EHR launch's, or
    one a practitioner picks (standalone, when launch/patient is asked for)."""
    if user.is_patient:
        return True
    launch = auth.launches.resolve(params.get("launch", ""))
    return (launch is not None and bool(launch.patient_id)) or "launch/patient" in scopes.split()


def _offered(auth: Authority, user: User, params: dict[str, str]) -> list[str]:
    """The requested scopes the app is registered for and this user may hold."""
    client = auth.clients.find(params.get("client_id", ""))
    if client is None:
        return []
    asked = [s for s in params.get("scope", "").split() if client.allows(s)]
    context = _patient_in_context(auth, user, params, " ".join(asked))
    return bind_to_user(asked, user_kind(user.fhir_user), patient_context=context)


def _refuse(
    auth: Authority, session: Session, params: dict[str, str], error: str, description: str
) -> Response:
    """End the authorization in progress with an error redirect to the app."""
    session.request = {}
    return _with_session(_error_redirect(params, error, description), auth, session)


@router.get("/auth/consent")
async def consent_page(request: Request) -> Response:
    auth = authority(request)
    session = _session(request, auth)
    pending = _pending(auth, session)
    if pending is None:
        return auth.pages.error("There is no authorization in progress. Start again from the app.")
    user, params = pending
    client = auth.clients.find(params["client_id"])
    if client is None:
        return auth.pages.error("This app is not registered with this server.")
    offered = _offered(auth, user, params)
    if not grants_data(offered):
        return _refuse(auth, session, params, "invalid_scope", _NO_DATA_SCOPE)
    kind = user_kind(user.fhir_user)
    page = auth.pages.render(
        "consent.html",
        title="Allow access?",
        action=auth.endpoints.page("consent"),
        csrf=session.csrf,
        client_name=ClientLabel.of(client),
        username=user.username,
        user_kind=consent.KIND_LABELS.get(kind, "user"),
        is_patient=user.is_patient,
        scopes=consent.choices(offered, kind),
        offline="offline_access" in offered,
    )
    return _with_session(page, auth, session)


@router.post("/auth/consent")
async def decide(request: Request) -> Response:
    auth = authority(request)
    session = _session(request, auth)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    pending = _pending(auth, session)
    if not _csrf_ok(fields, session) or pending is None:
        return auth.pages.error("This form has expired. Start again from the app.", 403)
    user, params = pending
    if fields.get("decision") != "allow":
        return _refuse(auth, session, params, "access_denied", "The user did not allow access.")
    offered = _offered(auth, user, params)
    if not grants_data(offered):
        return _refuse(auth, session, params, "invalid_scope", _NO_DATA_SCOPE)
    ticked = [v for v in form.getlist("scope") if isinstance(v, str)]
    chosen = consent.granted(offered, ticked)
    # Unticking launch/patient leaves a practitioner's patient/ scopes without a patient.
    context = _patient_in_context(auth, user, params, " ".join(chosen))
    granted = bind_to_user(chosen, user_kind(user.fhir_user), patient_context=context)
    if not grants_data(granted):
        return _refuse(auth, session, params, "access_denied", "The user allowed no data.")
    session.request = {**params, "scope": " ".join(granted)}
    launch = auth.launches.resolve(params.get("launch", ""))
    needs_picker = (
        not user.is_patient
        and launch is None
        and "launch/patient" in ScopeSet.parse(" ".join(granted))
    )
    if needs_picker:
        return _with_session(_see_other(auth.endpoints.page("patient")), auth, session)
    return _finish(request, auth, session, user, patient_id="")


# -- patient picker ---------------------------------------------------------------------------


@router.get("/auth/patient")
async def picker_page(request: Request) -> Response:
    auth = authority(request)
    session = _session(request, auth)
    if _pending(auth, session) is None:
        return auth.pages.error("There is no authorization in progress. Start again from the app.")
    query = request.query_params.get("q", "").strip()
    patients = await auth.patients.search(query) if query else []
    page = auth.pages.render(
        "patient.html",
        title="Choose a patient",
        action=auth.endpoints.page("patient"),
        csrf=session.csrf,
        client_name=_client_name(auth, session),
        query=query,
        patients=patients,
    )
    return _with_session(page, auth, session)


@router.post("/auth/patient")
async def pick(request: Request) -> Response:
    auth = authority(request)
    session = _session(request, auth)
    form = await _form(request)
    pending = _pending(auth, session)
    if not _csrf_ok(form, session) or pending is None:
        return auth.pages.error("This form has expired. Start again from the app.", 403)
    user, _params = pending
    patient_id = form.get("patient", "").strip()
    if not patient_id or not await auth.patients.exists(patient_id):
        page = auth.pages.render(
            "patient.html",
            status=400,
            title="Choose a patient",
            action=auth.endpoints.page("patient"),
            csrf=session.csrf,
            client_name=_client_name(auth, session),
            query="",
            patients=[],
            error="There is no patient with that id.",
        )
        return _with_session(page, auth, session)
    return _finish(request, auth, session, user, patient_id=patient_id)


def _finish(
    request: Request, auth: Authority, session: Session, user: User, *, patient_id: str
) -> Response:
    """Issue the code through authlib (which validates the request once more) and redirect."""
    launch = auth.launches.resolve(session.request.get("launch", ""))
    encounter_id = ""
    if user.is_patient:
        patient_id = user.patient_id
    elif launch is not None:
        patient_id, encounter_id = launch.patient_id, launch.encounter_id
    principal = Principal(
        username=user.username,
        fhir_user=user.fhir_user,
        patient_id=patient_id,
        encounter_id=encounter_id,
        nonce=session.request.get("nonce", ""),
        auth_time=_moment(session.auth_time),
    )
    # The final word on scope, now that the patient in context is known.
    scope = bound_to_login(session.request.get("scope", ""), user.fhir_user, patient_id)
    if not grants_data(scope.split()):
        return _refuse(auth, session, session.request, "invalid_scope", _NO_DATA_SCOPE)
    params = {**session.request, "scope": scope}
    oauth = FacadeOAuth2Request("GET", str(request.url), request.headers, list(params.items()))
    try:
        grant = auth.server.get_authorization_grant(oauth)
    except OAuth2Error:
        return auth.pages.error("The authorization could not be completed.")
    status, _body, headers = cast(Any, auth.server).create_authorization_response(
        oauth, grant_user=principal, grant=grant
    )
    session.request = {}
    location = dict(headers or []).get("Location")
    # The authorization (a code for this client, user and patient) is an audited event.
    request.state.audit = AuditEntry(
        interaction="authorize",
        client_id=str(params.get("client_id", "")),
        username=user.username,
        patient_ids=[patient_id] if patient_id else [],
    )
    if status != 302 or not location:
        return _with_session(
            auth.pages.error("The authorization could not be completed."), auth, session
        )
    return _with_session(RedirectResponse(location, status_code=302), auth, session)


def _moment(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


# -- EHR launch -------------------------------------------------------------------------------


@router.get("/auth/launch")
async def launch_page(request: Request) -> Response:
    auth = authority(request)
    session = _session(request, auth)
    user = auth.users.find(session.username) if session.username else None
    if user is None or user.is_patient:
        return auth.pages.error("Log in as a practitioner to launch an app.", 401)
    page = auth.pages.render(
        "launch.html",
        title="Launch an app",
        action=auth.endpoints.page("launch"),
        csrf=session.csrf,
    )
    return _with_session(page, auth, session)


@router.post("/auth/launch")
async def create_launch(request: Request) -> Response:
    """Mint a `launch` for a patient (and encounter); with `launch_uri`, the app's URL too."""
    auth = authority(request)
    session = _session(request, auth)
    form = await _form(request)
    user = auth.users.find(session.username) if session.username else None
    if user is None or user.is_patient:
        return JSONResponse({"error": "login_required"}, status_code=401)
    if not _csrf_ok(form, session):
        return JSONResponse({"error": "invalid_request", "error_description": "csrf"}, 403)
    patient_id = form.get("patient", "").strip()
    if not patient_id or not await auth.patients.exists(patient_id):
        return JSONResponse({"error": "invalid_request", "error_description": "patient"}, 400)
    launch = auth.launches.create(patient_id, form.get("encounter", "").strip(), user.username)
    request.state.audit = AuditEntry(
        interaction="launch", username=user.username, patient_ids=[patient_id]
    )
    body: dict[str, str] = {"launch": launch.launch, "iss": auth.endpoints.issuer}
    if form.get("launch_uri"):
        body["launch_url"] = auth.launches.app_launch_url(form["launch_uri"], launch)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
