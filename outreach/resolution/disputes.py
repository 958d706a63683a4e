"""Disputes and their verification (12 CFR 1006.38; 15 U.S.C. 1692g(b)). A dispute starts (or
joins) the account's open ``dispute`` hold, which stops collection (core.dispute_open), and an
open verification task. The verification letter (purpose ``verification``, which the hold lets
through) closes the task when it is sent; for a US account the dispute hold then ends that day,
since collection may resume once verification is mailed. Elsewhere the hold stays until it is
ended otherwise (an import, a person): no law here says mailing verification ends a dispute."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, Table, insert, select, update

from outreach.kernel.clock import utcnow
from outreach.resolution.events import Transition, record
from outreach.storage.models import Account, AccountHold, VerificationTask

HOLD: Table = AccountHold.__table__  # type: ignore[assignment]
TASK: Table = VerificationTask.__table__  # type: ignore[assignment]
ACCOUNT: Table = Account.__table__  # type: ignore[assignment]

DISPUTE_HOLDS = ("dispute", "original_creditor_request")
# Where mailing the verification lets collection resume (15 U.S.C. 1692g(b)).
RESUMES_ON_VERIFICATION = frozenset({"US"})


@dataclass(frozen=True, slots=True)
class VerificationSent:
    """What sending a verification changed: the task, and the holds ended (none outside the
    US: ``hold_kept`` says why)."""

    task_id: int | None
    ended_holds: tuple[int, ...]
    hold_kept: str | None


def open_dispute(
    conn: Connection, *, account_id: int, source: str, actor: str, day: dt.date
) -> int:
    """Record a dispute on ``day``: the open dispute hold (a new one, or the one already open)
    and the account's open verification task (one at a time). Returns the task's id; a second
    dispute while the first waits for its verification returns the same task."""
    changes: list[Transition] = []
    hold = conn.execute(
        select(HOLD.c.id).where(HOLD.c.account_id == account_id, HOLD.c.kind == "dispute",
                                HOLD.c.ended_on.is_(None), HOLD.c.started_on <= day)
        .order_by(HOLD.c.started_on, HOLD.c.id).limit(1)
    ).scalar()  # fmt: skip
    if hold is None:
        # A dispute ended today (verification mailed this morning) and raised again: reopened.
        hold = conn.execute(
            select(HOLD.c.id).where(HOLD.c.account_id == account_id, HOLD.c.kind == "dispute",
                                    HOLD.c.started_on == day)
        ).scalar()  # fmt: skip
        if hold is not None:
            conn.execute(update(HOLD).where(HOLD.c.id == hold).values(ended_on=None))
        else:
            hold = conn.execute(
                insert(HOLD).values(account_id=account_id, kind="dispute", started_on=day,
                                    ended_on=None, source=source[:32])
            ).inserted_primary_key[0]  # type: ignore[index]
        changes.append(Transition(account_id, "hold", f"dispute-{hold}", None, "active", actor,
                                  f"dispute ({source}): collection stops until verification"))
    task = conn.execute(
        select(TASK.c.id).where(TASK.c.account_id == account_id, TASK.c.state == "open")
        .order_by(TASK.c.id).limit(1)
    ).scalar()  # fmt: skip
    if task is None:
        task = conn.execute(
            insert(TASK).values(account_id=account_id, hold_id=hold, state="open",
                                source=source[:32], created_at=utcnow())
        ).inserted_primary_key[0]  # type: ignore[index]
        changes += [
            Transition(account_id, "dispute", f"dispute-{hold}", None, "open", actor, source),
            Transition(account_id, "verification", f"verification-{task}", None, "open", actor,
                       "verification to send (12 CFR 1006.38)"),
        ]  # fmt: skip
    record(conn, changes)
    return int(task)


def verification_sent(
    conn: Connection, *, account_id: int, ledger_key: str | None, day: dt.date, actor: str
) -> VerificationSent:
    """The verification letter for the account went out on ``day`` (its print batch): the open
    task becomes ``sent``; on a US account every open dispute hold (and original-creditor
    request) started by then ends on ``day``, so the next plan resumes. Nothing open: nothing
    changes (a rerun of the day's dispatch)."""
    task = conn.execute(
        select(TASK.c.id).where(TASK.c.account_id == account_id, TASK.c.state == "open")
        .order_by(TASK.c.id).limit(1)
    ).scalar()  # fmt: skip
    if task is None:
        return VerificationSent(None, (), None)
    conn.execute(
        update(TASK).where(TASK.c.id == task)
        .values(state="sent", sent_at=utcnow(), ledger_key=ledger_key)
    )  # fmt: skip
    changes = [Transition(account_id, "verification", f"verification-{task}", "open", "sent",
                          actor, "verification letter sent")]  # fmt: skip
    country = conn.execute(
        select(ACCOUNT.c.jurisdiction_country).where(ACCOUNT.c.id == account_id)
    ).scalar()
    ended: tuple[int, ...] = ()
    kept: str | None = None
    holds = conn.execute(
        select(HOLD.c.id, HOLD.c.kind).where(
            HOLD.c.account_id == account_id, HOLD.c.kind.in_(DISPUTE_HOLDS),
            HOLD.c.ended_on.is_(None), HOLD.c.started_on <= day,
        ).order_by(HOLD.c.id)
    ).all()  # fmt: skip
    if country in RESUMES_ON_VERIFICATION:
        ended = tuple(int(h[0]) for h in holds)
        if ended:
            conn.execute(update(HOLD).where(HOLD.c.id.in_(ended)).values(ended_on=day))
        for hold_id, kind in holds:
            changes += [
                Transition(account_id, "hold", f"{kind}-{hold_id}", "active", "ended", actor,
                           "verification mailed: collection may resume (15 U.S.C. 1692g(b))"),
                Transition(account_id, "dispute", f"{kind}-{hold_id}", "open", "verified",
                           actor, "verification mailed"),
            ]  # fmt: skip
    else:
        kept = f"hold kept: no rule for {country or 'this jurisdiction'} ends a dispute on verification"
        changes += [
            Transition(account_id, "dispute", f"{kind}-{hold_id}", "open", "verified", actor, kept)
            for hold_id, kind in holds
        ]  # fmt: skip
    record(conn, changes)
    return VerificationSent(int(task), ended, kept)
