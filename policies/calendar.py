"""Business days and the Regulation F validation period (pure date arithmetic).

Legal public holidays are those of 5 U.S.C. 6103(a), on their own dates (Reg F's assumed
receipt excludes "legal public holidays identified in 5 U.S.C. 6103(a), Saturdays, and
Sundays"), from the ``holidays`` package's data.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays


@lru_cache(maxsize=64)
def us_legal_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("US", years=year, observed=False))


def is_business_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in us_legal_holidays(day.year)


@lru_cache(maxsize=65536)
def add_business_days(day: dt.date, n: int) -> dt.date:
    """The ``n``-th business day after ``day`` (``day`` itself is not counted)."""
    current = day
    while n > 0:
        current += dt.timedelta(days=1)
        if is_business_day(current):
            n -= 1
    return current


@lru_cache(maxsize=65536)
def validation_period(
    sent_on: dt.date, receipt_business_days: int, period_days: int
) -> tuple[dt.date, dt.date]:
    """(assumed receipt, last day of the validation period) for a notice sent on ``sent_on``:
    receipt is assumed ``receipt_business_days`` business days later (1006.34(b)(5)); the
    period ends ``period_days`` days after receipt, that day included."""
    receipt = add_business_days(sent_on, receipt_business_days)
    return receipt, receipt + dt.timedelta(days=period_days)
