"""ISBT 128 UDIs: the carrier of human cells, tissues and cellular and tissue-based products
(HCT/Ps, e.g. a bone allograft) that ICCBBA issues, as DrChrono stores it in `udi`.

The human-readable form is a run of ISBT 128 data structures, each a data identifier and a
fixed-length value, e.g. FHIR's Device example-udi2 (also AccessGUDID's parse_udi example)
`=/A9999XYZ100T0474=,000025=A99971312345600=>014032=}013032&,1000000000000XYZ123`:

- `=/` Processor Product Identification Code (16): the device identifier;
- `=` and an alphanumeric Donation Identification Number (15, with its two flag characters):
  the distinct identification code 21 CFR 1271.290(c) requires, FHIR's distinctIdentifier;
- `=,` serial number (6), `&,1` lot number (18);
- `=>` expiration and `=}` production date (6 each, `cyyjjj`: century, year, day of year).

A string that is not wholly made of these is not ISBT 128 (GS1 UDIs start with `(01)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

#: Data identifier → (field, value length). The DIN's identifier is `=` followed by its first
#: character (A–N, P–Z or 1–9), so it is matched separately, last.
_STRUCTURES = {
    "=/": ("device_identifier", 16),
    "=,": ("serial_number", 6),
    "=>": ("expiration_date", 6),
    "=}": ("production_date", 6),
    "&,1": ("lot_number", 18),
}
_DIN = re.compile(r"=([A-NP-Z1-9][A-Z0-9]{14})")
_JULIAN = re.compile(r"\d{6}")


@dataclass(frozen=True)
class IsbtUdi:
    device_identifier: str
    donation_identification_number: str | None = None
    serial_number: str | None = None
    lot_number: str | None = None
    expiration_date: str | None = None
    production_date: str | None = None


def parse(udi: str) -> IsbtUdi | None:
    """The parts of an ISBT 128 UDI, or None if `udi` is not one (it needs the PPIC)."""
    fields: dict[str, str] = {}
    position = 0
    while position < len(udi):
        for identifier, (name, length) in _STRUCTURES.items():
            if udi.startswith(identifier, position):
                start = position + len(identifier)
                value = udi[start : start + length]
                if len(value) != length or name in fields:
                    return None
                fields[name] = value
                position = start + length
                break
        else:
            din = _DIN.match(udi, position)
            if din is None or "din" in fields:
                return None
            fields["din"] = din.group(1)
            position = din.end()
    if "device_identifier" not in fields:
        return None
    return IsbtUdi(
        device_identifier=fields["device_identifier"],
        donation_identification_number=fields.get("din"),
        serial_number=fields.get("serial_number"),
        lot_number=fields.get("lot_number"),
        expiration_date=julian_date(fields.get("expiration_date")),
        production_date=julian_date(fields.get("production_date")),
    )


def julian_date(value: str | None) -> str | None:
    """ISO date of an ISBT 128 `cyyjjj` date (c: century after 2000, jjj: day of the year)."""
    if value is None or not _JULIAN.fullmatch(value):
        return None
    year = 2000 + int(value[0]) * 100 + int(value[1:3])
    day = int(value[3:])
    start = date(year, 1, 1)
    moment = start + timedelta(days=day - 1)
    if day < 1 or moment.year != year:
        return None
    return moment.isoformat()
