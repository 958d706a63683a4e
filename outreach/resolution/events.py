"""The record of every change in the resolution loop: a promise made, kept or broken, an
arrangement offered, accepted, approved, missed, broken or completed, a payment posted, allocated
or reversed, a hold started or ended, a dispute verified. Explain and the timeline read it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Table, insert, select

from outreach.kernel.clock import utcnow
from outreach.storage.models import ResolutionEvent

EVENT: Table = ResolutionEvent.__table__  # type: ignore[assignment]

SUBJECTS = (
    "promise", "arrangement", "instalment", "payment", "hold", "dispute", "verification",
    "means", "cause",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of state: of what (``subject`` and its ref), from and to, by whom and why.
    ``reason`` is a code or a short text and never carries personal data."""

    account_id: int
    subject: str
    subject_ref: str | None
    from_state: str | None
    to_state: str
    actor: str
    reason: str


def record(conn: Connection, changes: Iterable[Transition], at: dt.datetime | None = None) -> int:
    """Write the transitions (one statement); returns how many."""
    when = at or utcnow()
    rows = []
    for t in changes:
        if t.subject not in SUBJECTS:
            raise ValueError(f"unknown resolution subject {t.subject!r}")
        rows.append({
            "account_id": t.account_id, "subject": t.subject, "subject_ref": t.subject_ref,
            "from_state": t.from_state, "to_state": t.to_state, "occurred_at": when,
            "actor": t.actor[:64], "reason": t.reason[:300],
        })  # fmt: skip
    if rows:
        conn.execute(insert(EVENT), rows)
    return len(rows)


def history(conn: Connection, account_id: int) -> list[dict[str, object]]:
    """The account's resolution events, oldest first (explain, the timeline, the console)."""
    cols = (EVENT.c.occurred_at, EVENT.c.subject, EVENT.c.subject_ref, EVENT.c.from_state,
            EVENT.c.to_state, EVENT.c.actor, EVENT.c.reason)  # fmt: skip
    rows = conn.execute(
        select(*cols).where(EVENT.c.account_id == account_id).order_by(EVENT.c.occurred_at,
                                                                        EVENT.c.id)
    )
    return [dict(r._mapping) for r in rows]
