"""FHIR JSON responses: application/fhir+json, serialized with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

FHIR_JSON = "application/fhir+json"


class FhirResponse(Response):
    media_type = FHIR_JSON

    def __init__(
        self, content: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None
    ):
        super().__init__(content=content, status_code=status_code, headers=headers)

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
