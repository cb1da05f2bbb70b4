"""The server-rendered pages of the authorize flow (no JavaScript): login, TOTP, consent,
patient picker and errors. Autoescaped Jinja2; never echoes a password. An app that
registered itself is named as unverified wherever a page names it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from facade.auth.server.clients import RegisteredClient

_TEMPLATES = Path(__file__).parent / "templates"
#: Pages hold CSRF tokens and personal context: never cached, never framed.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self' http: https:; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


class ClientLabel(str):
    """An app's name as the pages show it, knowing whether the app registered itself (RFC
    7591), unvetted by the practice: templates mark it with `client_name.unverified`."""

    unverified: bool = False

    @classmethod
    def of(cls, client: RegisteredClient | None) -> ClientLabel:
        label = cls(client.row.name if client is not None else "An app")
        label.unverified = client is not None and client.row.self_registered
        return label


class Pages:
    def __init__(self) -> None:
        self._env = Environment(
            loader=FileSystemLoader(_TEMPLATES),
            autoescape=select_autoescape(["html"]),
            auto_reload=False,
        )

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self._env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def error(self, message: str, status: int = 400) -> HTMLResponse:
        return self.render("error.html", status, title="Authorization failed", message=message)
