"""The call queue's upkeep on the wall clock: tasks past their window expire, claims past their
lease go back to the queue, queued tasks are judged again. See docs/call-queue.md."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update

from outreach.dispatch.send_rules import send_rules
from outreach.media.calls.queue import (
    CLAIMED,
    EXPIRED,
    QUEUED,
    STATES,
    TaskRow,
    call_task,
    claim_lease,
    contact,
    contact_event,
    judge_task,
    placeholder_ref,
    record_decision,
    select_tasks,
    task_facts,
    task_fate,
    utc,
    withdraw_task,
)

log = logging.getLogger(__name__)


def expire_tasks(engine: Engine, now: dt.datetime, *, lease: dt.timedelta | None = None) -> int:
    """Expire tasks whose window has closed: queued ones, and claimed ones whose lease has also
    run out (an agent still on a call past the window's end may record its disposition)."""
    now = utc(now)
    stale_before = now - (lease or claim_lease())
    expired = 0
    with engine.begin() as conn:
        rows = conn.execute(
            select(call_task.c.key, call_task.c.state, call_task.c.claimed_at).where(
                call_task.c.due_end <= now,
                or_(call_task.c.state == QUEUED,
                    and_(call_task.c.state == CLAIMED, call_task.c.claimed_at <= stale_before)),
            )
        ).all()
        for key, state, claimed_at in rows:
            if conn.execute(
                update(call_task).where(call_task.c.key == key, call_task.c.state == state)
                .values(state=EXPIRED, updated_at=now)
            ).rowcount != 1:
                continue
            expired += 1
            conn.execute(
                update(contact).where(contact.c.key == key).values(outcome="expired",
                                                                   updated_at=now)
            )
            if claimed_at is None:  # never dialled: see settle_unworked
                conn.execute(
                    contact_event.delete().where(
                        contact_event.c.event_ref == placeholder_ref(key),
                        contact_event.c.source == "dispatch",
                        contact_event.c.outcome == "attempted",
                    )
                )
    return expired


def requeue_stale(engine: Engine, now: dt.datetime, *, lease: dt.timedelta | None = None) -> int:
    """Queue again the claimed tasks not completed within the lease whose window is still open.
    The task remembers its last holder, who may still record the call's disposition until
    another agent claims it."""
    now = utc(now)
    stale_before = now - (lease or claim_lease())
    with engine.begin() as conn:
        return int(
            conn.execute(
                update(call_task)
                .where(call_task.c.state == CLAIMED, call_task.c.claimed_at <= stale_before,
                       call_task.c.due_end > now)
                .values(state=QUEUED, updated_at=now)
            ).rowcount
        )


def _rejudge_queued(engine: Engine, day: dt.date, now: dt.datetime) -> tuple[int, int]:
    """Judge every queued task of ``day`` and earlier at the first instant it could be worked;
    withdraw those the gate now stops, reschedule those it defers within their window."""
    rules = send_rules(engine, day)
    withdrawn = rescheduled = 0
    with engine.connect() as conn:
        tasks = select_tasks(conn, call_task.c.state == QUEUED, call_task.c.due_end > now,
                       contact.c.plan_date <= day, order=(call_task.c.account_id, call_task.c.key))
    by_day: dict[dt.date, list[TaskRow]] = {}
    for t in tasks:
        by_day.setdefault(max(t.plan_date, now.date()), []).append(t)
    for facts_day, group in sorted(by_day.items()):
        with engine.connect() as conn:
            accounts = task_facts(conn, group, facts_day, now)
            changes = []
            for task in group:
                at = max(now, task.due_start)
                verdict = judge_task(conn, task, accounts[task.account_id], at, rules)
                fate = task_fate(verdict, task, at)
                if fate != "send":
                    changes.append((task, verdict, fate, at))
        for task, verdict, fate, at in changes:
            # Conditional on the task still being queued: an agent may claim it meanwhile,
            # and then the claim's own judgement decides.
            with engine.begin() as conn:
                if fate == "withdraw":
                    done = withdraw_task(conn, task, verdict, QUEUED, now)
                    withdrawn += done
                else:
                    done = conn.execute(
                        update(call_task)
                        .where(call_task.c.key == task.key, call_task.c.state == QUEUED)
                        .values(due_start=verdict.defer_until, updated_at=now)
                    ).rowcount == 1
                    rescheduled += done
                if done:
                    record_decision(conn, task, verdict, at)
    return withdrawn, rescheduled


def task_counts(engine: Engine, day: dt.date) -> dict[str, int]:
    """Call tasks of ``day``'s plan by state (every state, zeros included)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(call_task.c.state, func.count())
            .join(contact, contact.c.key == call_task.c.key)
            .where(contact.c.plan_date == day)
            .group_by(call_task.c.state)
        ).all()
    counts = Counter({state: 0 for state in STATES})
    counts.update({r[0]: int(r[1]) for r in rows})
    return dict(counts)


def refresh_call_queue(engine: Engine, day: dt.date, now: dt.datetime) -> dict[str, Any]:
    """Upkeep of the queue for the DAG: expire closed windows, queue stale claims again, withdraw
    queued tasks the gate now stops (and reschedule those it defers within their window).
    Returns counts only (XCom-safe): what changed, and ``day``'s tasks by state."""
    now = utc(now)
    expired = expire_tasks(engine, now)
    requeued = requeue_stale(engine, now)
    withdrawn, rescheduled = _rejudge_queued(engine, day, now)
    result: dict[str, Any] = {
        "expired": expired,
        "requeued": requeued,
        "withdrawn": withdrawn,
        "rescheduled": rescheduled,
        "by_state": task_counts(engine, day),
    }
    log.info("call queue %s: %s", day, result)
    return result
