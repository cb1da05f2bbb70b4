"""The sandbox's file store: pre-signed, expiring URLs (like DrChrono's S3 links) and their files.

Records refer to stored files by path (`/files/documents/7.pdf`); responses carry absolute
URLs signed with an HMAC and `X-Amz-Expires=3600`. Serving a file must never require a Bearer
token, and never succeed for an expired or unsigned URL.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from facade.upstream.drchrono.sandbox.state import SandboxState

FILES_PREFIX = "/files/"
URL_LIFETIME_SECONDS = 3600
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


def _signature(key: bytes, path: str, amz_date: str, expires: str) -> str:
    message = f"{path}\n{amz_date}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_url(state: SandboxState, base_url: str, path: str) -> str:
    """An absolute URL for a stored file path, valid for an hour from now (by the state's clock)."""
    amz_date = state.clock().astimezone(UTC).strftime(_AMZ_DATE)
    expires = str(URL_LIFETIME_SECONDS)
    query = urlencode(
        {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": expires,
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": _signature(state.file_signing_key, path, amz_date, expires),
        }
    )
    return f"{base_url.rstrip('/')}{path}?{query}"


def _s3_error(code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status_code=403, media_type="application/xml")


async def serve_file(state: SandboxState, request: Request) -> Response:
    path = request.url.path
    amz_date = request.query_params.get("X-Amz-Date", "")
    expires = request.query_params.get("X-Amz-Expires", "")
    given = request.query_params.get("X-Amz-Signature", "")
    expected = _signature(state.file_signing_key, path, amz_date, expires)
    if not given or not hmac.compare_digest(given, expected):
        return _s3_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    try:
        signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
        lifetime = timedelta(seconds=int(expires))
    except ValueError:
        return _s3_error(
            "AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is invalid."
        )
    if state.clock() > signed_at + lifetime:
        return _s3_error("AccessDenied", "Request has expired")
    if path.lower().endswith(".png"):
        return Response(png_bytes(), media_type="image/png")
    return Response(pdf_bytes(path), media_type="application/pdf")


def png_bytes() -> bytes:
    """A valid 1x1 grey PNG (insurance card photos and other images)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def pdf_bytes(title: str) -> bytes:
    """A minimal, valid one-page PDF showing `title` (real xref offsets, so readers accept it)."""
    text = title.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)
