"""Times: stored as naive UTC; dates given by people mean 00:00 China time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from gis.errors import InputError

__all__ = ["LOCAL_ZONE", "parse_time"]

LOCAL_ZONE = ZoneInfo("Asia/Shanghai")


def parse_time(value: str | date | datetime | None, *, field: str = "valid_from") -> datetime:
    """Return a naive UTC datetime; dates mean 00:00 China time; ``None`` means now.

    Examples
    --------
    >>> parse_time("2026-01-01")
    datetime.datetime(2025, 12, 31, 16, 0)
    >>> parse_time("2026-01-01T08:00:00+08:00")
    datetime.datetime(2026, 1, 1, 0, 0)
    """
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise InputError(
                f"{text!r} is not a date (YYYY-MM-DD) or ISO 8601 time", field=field
            ) from None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0, 0), tzinfo=LOCAL_ZONE)
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_ZONE)
    return value.astimezone(UTC).replace(tzinfo=None)
