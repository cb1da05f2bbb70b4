"""Query and body parameters as CareCloud reads them: dates (`YYYY-MM-DD` or `YYYYMMDD`), the
93-day window, integer ids and ISO timestamps that must carry an offset.

Every rejection is a `BadRequest` whose message becomes the `{"error": ...}` body.
"""

from __future__ import annotations

from datetime import date, datetime

#: "A date range may not exceed 93 days" (start and end both count).
MAX_RANGE_DAYS = 93


class BadRequest(ValueError):
    """An invalid parameter: answered with `status` and `{"error": str(self)}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_day(name: str, raw: str) -> date:
    text = raw.strip()
    try:
        if len(text) == 8 and text.isdigit():
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"Invalid {name}: expected YYYY-MM-DD") from None


def date_range(
    params: dict[str, str], *, limit: int | None = MAX_RANGE_DAYS
) -> tuple[date, date] | None:
    """`start_date`/`end_date`; one alone means that single day; None when neither is given."""
    raw_start, raw_end = params.get("start_date"), params.get("end_date")
    if not raw_start and not raw_end:
        return None
    start = parse_day("start_date", raw_start) if raw_start else None
    end = parse_day("end_date", raw_end) if raw_end else None
    start = start or end
    end = end or start
    assert start is not None and end is not None
    if end < start:
        raise BadRequest("end_date may not be before start_date")
    if limit is not None and (end - start).days + 1 > limit:
        raise BadRequest(f"Date range may not exceed {limit} days")
    return start, end


def integer(name: str, raw: object, status: int = 400) -> int:
    if isinstance(raw, bool):
        raise BadRequest(f"Invalid {name}", status)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    raise BadRequest(f"Invalid {name}", status)


def timestamp(name: str, raw: object) -> datetime:
    """An ISO 8601 timestamp with its offset (422 otherwise: it is a body field)."""
    if not isinstance(raw, str) or not raw:
        raise BadRequest(f"{name} is required", 422)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"Invalid {name}: expected ISO 8601 with offset", 422) from None
    if moment.tzinfo is None:
        raise BadRequest(f"Invalid {name}: expected ISO 8601 with offset", 422)
    return moment
