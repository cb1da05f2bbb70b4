"""FHIR values read from vendor values the same way for every vendor: text, dates, phone
numbers, references by vendor id and CodeableConcepts.

Each vendor's fields.py offers these next to its own readers (its timestamps, addresses and
ids, which differ by vendor). Pure functions: no I/O, no clock, no vendor names.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

_PHONE_DIGITS = re.compile(r"\d")


def text(value: Any) -> str | None:
    """A vendor string, or None for null, empty or blank."""
    # The hot path of every transform: most values are already clean strings.
    if value.__class__ is str:
        stripped = value.strip()
        return stripped if stripped else None
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped if stripped else None


def fhir_date(value: Any) -> str | None:
    """A "YYYY-MM-DD" date (or the date part of a timestamp), or None when not a date."""
    raw = text(value)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw[:10]).isoformat()
    except ValueError:
        return None


def phone(value: Any) -> str | None:
    """A phone number as the vendor wrote it, or None when it holds no digit."""
    raw = text(value)
    if raw is None or not _PHONE_DIGITS.search(raw):
        return None
    return raw


def reference(resource_type: str, vendor_id: Any) -> dict[str, str] | None:
    """A reference to a resource whose FHIR id is the vendor id (Patient, Practitioner,
    Location, Organization), or None when the id is absent."""
    raw = text(vendor_id)
    return {"reference": f"{resource_type}/{raw}"} if raw else None


def concept(system: str | None, code: str | None, display: str | None) -> dict[str, Any] | None:
    """A CodeableConcept with a coding when both system and code are known, and the display
    as its text; None when there is neither."""
    result: dict[str, Any] = {}
    if code and system:
        coding = {"system": system, "code": code}
        if display:
            coding["display"] = display
        result["coding"] = [coding]
    if display:
        result["text"] = display
    return result or None
