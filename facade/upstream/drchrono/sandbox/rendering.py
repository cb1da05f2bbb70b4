"""Turns a stored record into what the API sends: verbose-only fields dropped, file paths signed.

It works on copies and must never mutate the dataset; what to drop comes from the endpoint's
declaration in `endpoints.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from facade.upstream.drchrono.sandbox.dataset import Record
from facade.upstream.drchrono.sandbox.endpoints import EndpointSpec
from facade.upstream.drchrono.sandbox.files import FILES_PREFIX, signed_url
from facade.upstream.drchrono.sandbox.state import SandboxState


def is_true(raw: str | None) -> bool:
    return raw is not None and raw.strip().lower() == "true"


def render_record(
    state: SandboxState,
    spec: EndpointSpec,
    record: Record,
    params: Mapping[str, str],
    base_url: str,
) -> Record:
    rendered: Record = dict(record)
    if not is_true(params.get("verbose")):
        for field in spec.verbose_only:
            if isinstance(field, str):
                rendered.pop(field, None)
            else:
                outer, inner = field
                items = rendered.get(outer)
                if isinstance(items, list):
                    rendered[outer] = [_without(item, inner) for item in items]
    for field_name, param in spec.fields_unless:
        if not is_true(params.get(param)):
            rendered.pop(field_name, None)
    signed = _sign_files(state, rendered, base_url)
    assert isinstance(signed, dict)
    return signed


def _without(item: Any, key: str) -> Any:
    if isinstance(item, dict):
        return {k: v for k, v in item.items() if k != key}
    return item


def _sign_files(state: SandboxState, value: Any, base_url: str) -> Any:
    """Any string starting with `/files/` is a stored-file reference; it leaves as a signed URL."""
    if isinstance(value, str):
        return signed_url(state, base_url, value) if value.startswith(FILES_PREFIX) else value
    if isinstance(value, dict):
        return {key: _sign_files(state, item, base_url) for key, item in value.items()}
    if isinstance(value, list):
        return [_sign_files(state, item, base_url) for item in value]
    return value
