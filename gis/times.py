"""Times: aware UTC datetimes everywhere inside; dates given by people mean China time.

Times are parsed once, where they enter (an HTTP parameter, a CLI option, a
file column), into *aware* UTC datetimes, and passed on as such. A text or
a date without an offset means China time (UTC+8), because that is what the
people who type them mean; an aware value is only converted to UTC, so
parsing a parsed value again changes nothing. The repository stores naive
UTC and hands back aware UTC (see ``gis.repository._types.UTCDateTime``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from gis.errors import InputError

__all__ = ["LOCAL_ZONE", "TimeLike", "isoformat_local", "isoformat_utc", "parse_time", "utc_now"]

LOCAL_ZONE = ZoneInfo("Asia/Shanghai")

#: What public functions accept as a time (parsed with :func:`parse_time`).
TimeLike = str | date | datetime | None


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime, to the second.

    Examples
    --------
    >>> utc_now().tzinfo
    datetime.timezone.utc
    """
    return datetime.now(UTC).replace(microsecond=0)


def parse_time(value: str | date | datetime | None, *, field: str = "valid_from") -> datetime:
    """Return an aware UTC datetime; dates and offset-less times mean China time.

    ``None`` means now. An aware datetime is only converted to UTC, so the
    function is idempotent: ``parse_time(parse_time(x)) == parse_time(x)``.

    Raises
    ------
    InputError
        When ``value`` is neither a date (YYYY-MM-DD) nor an ISO 8601 time,
        naming ``field``.

    Examples
    --------
    >>> parse_time("2026-01-01")
    datetime.datetime(2025, 12, 31, 16, 0, tzinfo=datetime.timezone.utc)
    >>> parse_time("2026-01-01T08:00:00+08:00")
    datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> parse_time(parse_time("2026-01-01")) == parse_time("2026-01-01")
    True
    """
    if value is None:
        return utc_now()
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise InputError(
                f"{field}: {text[:40]!r} is not a date (YYYY-MM-DD) or ISO 8601 time",
                field=field,
            ) from None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0, 0), tzinfo=LOCAL_ZONE)
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_ZONE)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InputError(f"{field}: {value.isoformat()} is out of range", field=field) from None


def isoformat_local(value: datetime | None) -> str | None:
    """Write an aware time in China time with its offset (what people read).

    Examples
    --------
    >>> isoformat_local(parse_time("2026-01-01"))
    '2026-01-01T00:00:00+08:00'
    """
    if value is None:
        return None
    if value.tzinfo is None:  # stored values are UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL_ZONE).isoformat()


def isoformat_utc(value: datetime) -> str:
    """Write a time in UTC with the ``Z`` designator (logs and records for machines).

    A naive value is a stored one, hence UTC.

    Examples
    --------
    >>> isoformat_utc(parse_time("2026-01-01"))
    '2025-12-31T16:00:00Z'
    >>> isoformat_utc(datetime(2026, 1, 1, 8, 30))
    '2026-01-01T08:30:00Z'
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
