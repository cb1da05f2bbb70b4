"""An in-process webhook callback for the DrChrono sandbox's tests: it answers verifications
with the secret it knows and records every hook, answering with the status a test sets."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CALLBACK_URL = "http://receiver.test/hooks/drchrono"


@dataclass
class ReceivedHook:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    #: The secret the receiver signs verifications with (a wrong one fails them).
    secret: str
    #: The status every POST is answered with.
    status: int = 200
    hooks: list[ReceivedHook] = field(default_factory=list)
    verifications: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def callback(request: Request) -> Response:
            if request.method == "GET":
                msg = request.query_params["msg"]
                self.verifications.append(msg)
                digest = hmac.new(self.secret.encode(), msg.encode(), hashlib.sha256).hexdigest()
                return JSONResponse({"secret_token": digest})
            self.hooks.append(ReceivedHook(dict(request.headers), json.loads(await request.body())))
            return Response(status_code=self.status)

        return Starlette(routes=[Route("/hooks/drchrono", callback, methods=["GET", "POST"])])

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app())
