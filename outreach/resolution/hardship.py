"""Hardship and the causes of delinquency. A hardship answer (an agent's disposition, the
self-service page, the console) starts a ``hardship`` hold that pauses automated collection for
``hardship.pause_days`` (rule core.hardship_pause; the offer and the notices the law requires
still go); the cause a collector or the consumer gives is kept for reporting and offers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Table, and_, insert, select

from outreach.kernel.clock import utcnow
from outreach.resolution.events import Transition, record
from outreach.resolution.policy import CAUSES, resolution_policy
from outreach.storage.models import AccountHold, DelinquencyCause

HOLD: Table = AccountHold.__table__  # type: ignore[assignment]
CAUSE: Table = DelinquencyCause.__table__  # type: ignore[assignment]


class UnknownCause(ValueError):
    """A cause that is not one of ``outreach.resolution.policy.CAUSES``."""

    def __init__(self, cause: object) -> None:
        shown = str(cause)[:40]
        super().__init__(f"cause {shown!r} is not one of: {', '.join(CAUSES)}")
        self.code = "unknown_cause"


def record_hardship(
    conn: Connection, *, account_id: int, source: str, actor: str, day: dt.date
) -> dt.date:
    """Start the account's hardship pause on ``day``: a ``hardship`` hold ending
    ``day + hardship.pause_days`` (the last paused day is the one before). Returns the day the
    pause ends; the same day's second answer changes nothing and returns the same end."""
    existing = conn.execute(
        select(HOLD.c.id, HOLD.c.ended_on).where(
            HOLD.c.account_id == account_id, HOLD.c.kind == "hardship", HOLD.c.started_on == day
        )
    ).first()
    ends = day + dt.timedelta(days=resolution_policy().hardship.pause_days)
    if existing is not None:
        # Recorded today already (or imported with its own end): that one stands.
        return existing[1] if existing[1] is not None else ends
    hold_id = conn.execute(
        insert(HOLD).values(account_id=account_id, kind="hardship", started_on=day,
                            ended_on=ends, source=source[:32])
    ).inserted_primary_key[0]  # type: ignore[index]
    record(conn, [Transition(account_id, "hold", f"hardship-{hold_id}", None, "active", actor,
                             f"hardship ({source}): automated collection paused until {ends}")])
    return ends


def record_cause(
    conn: Connection,
    *,
    account_id: int,
    cause: str,
    source: str,
    actor: str,
    recorded_at: dt.datetime | None = None,
) -> bool:
    """Record why the account fell behind (one of CAUSES; UnknownCause otherwise). The same
    cause at the same instant again (a re-imported row) changes nothing: returns False."""
    if cause not in CAUSES:
        raise UnknownCause(cause)
    at = recorded_at or utcnow()
    if conn.execute(
        select(CAUSE.c.id).where(
            and_(CAUSE.c.account_id == account_id, CAUSE.c.cause == cause,
                 CAUSE.c.recorded_at == at)
        )
    ).first() is not None:
        return False
    conn.execute(insert(CAUSE).values(account_id=account_id, cause=cause, source=source[:32],
                                      actor=actor[:64], recorded_at=at))  # fmt: skip
    record(conn, [Transition(account_id, "cause", None, None, cause, actor, source)], at=at)
    return True
