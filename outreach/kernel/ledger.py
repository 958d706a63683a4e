"""The ledger: one row per contact the day's plan decided on (table ``contact``), and its states.

Planning writes the rows; dispatch claims, sends and records them exactly once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(slots=True)
class DueContact:
    key: str
    account_id: int
    contact_point_id: int | None
    template: str | None
    stage: str
    action: str
    plan_date: dt.date
    window_start: dt.datetime
    window_end: dt.datetime
    defer_until: dt.datetime | None = None
