"""The sandbox's stand-in for DrChrono's API management page: an app sets up its webhook.

On DrChrono this is a web form behind the developer's login; here it is `POST /sandbox/webhook`
(JSON `callback_url`, `secret_token`, `events`) and `POST /sandbox/webhook/ping`, authenticated
with the app's client id and secret (HTTP Basic). It never changes anything but the webhook.
"""

from __future__ import annotations

import base64
import binascii
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from facade.upstream.drchrono.sandbox.state import OAuthApp, SandboxState
from facade.upstream.drchrono.sandbox.webhooks import WebhookError


def _app_of(state: SandboxState, request: Request) -> OAuthApp | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return state.authenticate_client(client_id, secret)


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {"detail": "Invalid client credentials."},
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="sandbox"'},
    )


async def configure_webhook(state: SandboxState, request: Request) -> Response:
    """Create or change the app's webhook; the answer says whether its verification passed."""
    app = _app_of(state, request)
    if app is None:
        return _unauthorized()
    try:
        body = json.loads(await request.body())
        events = body["events"]
        if not isinstance(events, list):
            raise WebhookError("events must be a list")
        webhook = await state.webhooks.configure(
            app.client_id, str(body["callback_url"]), str(body["secret_token"]), tuple(events)
        )
    except WebhookError as refused:
        return JSONResponse({"detail": str(refused)}, status_code=400)
    except (ValueError, KeyError, TypeError):
        detail = "a JSON body with callback_url, secret_token and events is required"
        return JSONResponse({"detail": detail}, status_code=400)
    return JSONResponse(webhook.as_json())


async def ping_webhook(state: SandboxState, request: Request) -> Response:
    app = _app_of(state, request)
    if app is None:
        return _unauthorized()
    if app.client_id not in state.webhooks.webhooks:
        return JSONResponse({"detail": "Not found."}, status_code=404)
    delivery = await state.webhooks.ping(app.client_id)
    return JSONResponse({"delivery": delivery.id, "delivered": delivery.delivered})
