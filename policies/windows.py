"""Local-time arithmetic for the gates: allowed hours in each candidate zone, as UTC intervals.

Zones are IANA names resolved with zoneinfo, so daylight saving time is whatever the tz database
says for that date (Arizona and Hawaii have none). Never a fixed offset.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

UTC = dt.UTC


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=65536)
def local_to_utc(day: dt.date, hour: int, minute: int, zone_name: str) -> dt.datetime:
    """The naive-UTC instant of ``hour:minute`` on local ``day`` in ``zone_name``."""
    local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone(zone_name))
    return local.astimezone(UTC).replace(tzinfo=None)


def local_midnight_utc(day: dt.date, zone_name: str) -> dt.datetime:
    return local_to_utc(day, 0, 0, zone_name)


@lru_cache(maxsize=65536)
def local_date(instant: dt.datetime, zone_name: str) -> dt.date:
    """The local calendar date of a naive-UTC instant in ``zone_name``."""
    return instant.replace(tzinfo=UTC).astimezone(zone(zone_name)).date()


def local_time_text(instant: dt.datetime, zone_name: str) -> str:
    return instant.replace(tzinfo=UTC).astimezone(zone(zone_name)).strftime("%Y-%m-%d %H:%M:%S %Z")


@lru_cache(maxsize=65536)
def common_window(
    day: dt.date, zones: tuple[str, ...], start_hour: int, end_hour: int
) -> tuple[dt.datetime, dt.datetime] | None:
    """The UTC interval [start, end) inside ``start_hour``-``end_hour`` local on ``day`` in every
    zone, or None when no instant is allowed in all of them."""
    start = max(local_to_utc(day, start_hour, 0, z) for z in zones)
    end = min(local_to_utc(day, end_hour, 0, z) for z in zones)
    return (start, end) if start < end else None
