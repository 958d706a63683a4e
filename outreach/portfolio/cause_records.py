"""The import record ``cause``: why an account fell behind, as the system of record classified
it (``account_ref``, ``cause``: one of outreach.resolution.policy.CAUSES, ``recorded_at``: an
instant with its offset). Written through outreach.resolution.hardship.record_cause, so the
import records a resolution event like any other source; the same row again changes nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection

from outreach.portfolio.accounts import AccountRef
from outreach.portfolio.rows import INSERTED, UNCHANGED, Item, Row, choice, instant, required_text
from outreach.resolution.hardship import record_cause
from outreach.resolution.policy import CAUSES


@dataclass(slots=True, eq=False, kw_only=True)
class CauseIn(Item):
    account_ref: str
    cause: str
    recorded_at: dt.datetime


def parse_cause(row: Row) -> CauseIn:
    d = row.data
    return CauseIn(
        row=row,
        account_ref=required_text(d.get("account_ref"), "account_ref", 64),
        cause=choice(d.get("cause"), "cause", CAUSES, shown=", ".join(CAUSES)),
        recorded_at=instant(d.get("recorded_at"), "recorded_at"),
    )


def write_causes(conn: Connection, causes: list[tuple[CauseIn, AccountRef]]) -> None:
    for c, a in causes:
        new = record_cause(conn, account_id=a.id, cause=c.cause, source="import",
                           actor="import", recorded_at=c.recorded_at)  # fmt: skip
        c.status = INSERTED if new else UNCHANGED
