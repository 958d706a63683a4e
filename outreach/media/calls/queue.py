"""The agent call queue: how agents claim calls, and the queue's upkeep. What a queued call is
worth (priority) and the dispatcher's hooks are in ``hooks.py``; what each call's disposition
changes in ``dispositions.py``.

The dispatcher queues a ``call`` ledger row as a ``call_task`` (``outreach.media.calls.channel``)
with the fields ``CallQueueHooks`` (``outreach.media.calls.hooks``) computes. Agents claim tasks through ``outreach.entry.agent_api``;
before a task is handed out the gate judges it again on the facts known at that instant, so a
payment, a dispute, an opt-out or a cease request recorded since the plan withdraws it. A
disposition updates the task, the ledger row, the contact history the frequency rules read and
the account's holds in one transaction. Task states and the formulas: docs/call-queue.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from contact_channels.masking import mask_phone
from outreach import settings
from outreach.dispatch.send_rules import SendRules, send_rules
from outreach.kernel.facts import AccountRecord, as_instant, load_accounts
from outreach.kernel.ledger import DECISION_COLUMNS, DECISION_TYPES, decision_row
from outreach.planning.judging import step_for
from outreach.storage.bulk import insert_rows
from outreach.storage.models import (
    Account,
    AccountHold,
    CallTask,
    Contact,
    ContactEvent,
    ContactPoint,
    Promise,
)
from policies.gate import evaluate
from policies.model import SEND, Verdict

log = logging.getLogger(__name__)

call_task: Table = CallTask.__table__  # type: ignore[assignment]
contact: Table = Contact.__table__  # type: ignore[assignment]
contact_event: Table = ContactEvent.__table__  # type: ignore[assignment]
contact_point: Table = ContactPoint.__table__  # type: ignore[assignment]
account_hold: Table = AccountHold.__table__  # type: ignore[assignment]
promise: Table = Promise.__table__  # type: ignore[assignment]

# Task states (CallTask): queued -> claimed -> done; queued | claimed -> withdrawn | expired.
QUEUED, CLAIMED, DONE, WITHDRAWN, EXPIRED = "queued", "claimed", "done", "withdrawn", "expired"
STATES = (QUEUED, CLAIMED, DONE, WITHDRAWN, EXPIRED)

DEFAULT_LEASE = dt.timedelta(minutes=30)
# One call at a time: an agent records what came of a call before taking the next, so nobody
# collects a list of numbers by claiming in a row (OUTREACH_CALL_MAX_OPEN_TASKS).
DEFAULT_MAX_OPEN_TASKS = 1
# Candidates read per query when claiming; a withdrawn or raced one makes the loop read again.
CANDIDATES = 20
MAX_AGENT_LENGTH = 64  # call_task.agent


def claim_lease() -> dt.timedelta:
    """How long a claimed task is the agent's before it may be queued again for another agent:
    ``OUTREACH_CALL_LEASE_SECONDS`` (default 30 minutes)."""
    seconds = settings.call_lease_seconds()
    return dt.timedelta(seconds=seconds) if seconds is not None else DEFAULT_LEASE


def max_open_tasks() -> int:
    """How many claimed calls one agent may hold at once (claims older than the lease do not
    count): ``OUTREACH_CALL_MAX_OPEN_TASKS`` (default 1, at least 1)."""
    value = settings.call_max_open_tasks()
    return DEFAULT_MAX_OPEN_TASKS if value is None else value


class TooManyOpenTasks(Exception):
    """The agent already holds ``limit`` open calls (``open_keys``): record their dispositions
    first. Nothing was claimed or judged."""

    def __init__(self, agent_open: Sequence[str], limit: int) -> None:
        self.open_keys = list(agent_open)
        self.limit = limit
        super().__init__(
            f"agent holds {len(self.open_keys)} open call(s), at most {limit}: record their "
            "dispositions before claiming another"
        )


# --- Claiming ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A call handed to an agent. ``phone`` is masked for display; ``dial`` is the number the
    agent's phone dials (the only place the full number goes)."""

    key: str
    account_id: int
    account_ref: str
    contact_point_id: int | None
    phone: str
    dial: str
    priority: int
    due_start: dt.datetime
    due_end: dt.datetime
    stage: str
    action: str
    plan_date: dt.date

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "account_ref": self.account_ref,
            "phone": self.phone,
            "dial": self.dial,
            "priority": self.priority,
            "due_start": _iso(self.due_start),
            "due_end": _iso(self.due_end),
            "stage": self.stage,
            "action": self.action,
        }


def _iso(at: dt.datetime) -> str:
    return at.isoformat() + "Z"


def utc(at: dt.datetime) -> dt.datetime:
    """``at`` as naive UTC, as the database stores instants."""
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo is not None else at


@dataclass(frozen=True, slots=True)
class TaskRow:
    key: str
    account_id: int
    contact_point_id: int | None
    priority: int
    due_start: dt.datetime
    due_end: dt.datetime
    agent: str | None  # the last agent it was handed to, if any
    claimed_at: dt.datetime | None  # when, if ever, it was last handed out
    stage: str
    action: str
    plan_date: dt.date
    config_version: str


_TASK_COLUMNS = (
    call_task.c.key,
    call_task.c.account_id,
    call_task.c.contact_point_id,
    call_task.c.priority,
    call_task.c.due_start,
    call_task.c.due_end,
    call_task.c.agent,
    call_task.c.claimed_at,
    contact.c.stage,
    contact.c.action,
    contact.c.plan_date,
    contact.c.config_version,
)


def select_tasks(conn: Connection, *where: Any, order: Iterable[Any] = (), limit: int | None = None
           ) -> list[TaskRow]:
    # Only tasks whose ledger row is recorded as sent: between the queue's insert and the
    # dispatcher's commit of the send, the ledger row is still `sending`, and a disposition
    # recorded then would be overwritten by the dispatcher's own record.
    query = (
        select(*_TASK_COLUMNS)
        .join(contact, contact.c.key == call_task.c.key)
        .where(contact.c.state == "sent", *where)
        .order_by(*order)
    )
    if limit is not None:
        query = query.limit(limit)
    return [TaskRow(*tuple(r)) for r in conn.execute(query)]


def placeholder_ref(key: str) -> str:
    """The contact_event the dispatcher wrote when it queued the task (``mark_sent``): an
    outbound call of unknown outcome (``attempted``). The disposition gives it its outcome."""
    return f"ledger:{key}"


def _lease_ref(key: str, claimed_at: dt.datetime) -> str:
    return f"lease:{key}:{claimed_at:%Y%m%dT%H%M%S}"


def task_facts(conn: Connection, tasks: list[TaskRow], day: dt.date, cutoff: dt.datetime
           ) -> dict[int, AccountRecord]:
    """The accounts of ``tasks`` with facts known before ``cutoff``: only those accounts,
    500 to a load (each of load_accounts' queries names them)."""
    ids = sorted({t.account_id for t in tasks})
    accounts: dict[int, AccountRecord] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        accounts.update(
            load_accounts(conn, chunk[0], chunk[-1], day=day, cutoff=cutoff, only=chunk)
        )
    return accounts


def judge_task(
    conn: Connection, task: TaskRow, account: AccountRecord, at: dt.datetime, rules: SendRules
) -> Verdict:
    """The gate's verdict on calling now: the same step the dispatcher judged, at ``at``."""
    if task.claimed_at is None:
        # The dispatcher's placeholder event stands for this very call, not yet made: the
        # frequency rules must not count the call against itself. Once the task was handed out,
        # the placeholder stands for a call that may have been made, and counts.
        placed = conn.execute(
            select(contact_event.c.occurred_at).where(
                contact_event.c.event_ref == placeholder_ref(task.key)
            )
        ).scalar_one_or_none()
        if placed is not None:
            placed = as_instant(placed)
            for i, h in enumerate(account.history):
                if (h.channel, h.outcome, h.at, h.contact_point_id) == (
                    "call", "attempted", placed, task.contact_point_id
                ):
                    account = replace(account, history=account.history[:i] + account.history[i + 1:])
                    break
    destination = next(
        (d for d in account.destinations if d.contact_point_id == task.contact_point_id), None
    )
    action = rules.actions.get((task.stage, task.action))
    return evaluate(
        step_for("call", destination, action),
        account.gate_facts(rules.role),
        day=task.plan_date,
        at=at,
    )


def record_decision(conn: Connection, task: TaskRow, verdict: Verdict, at: dt.datetime) -> None:
    insert_rows(
        conn,
        "policy_decision",
        DECISION_COLUMNS,
        [decision_row(task.key, task.account_id, "send", task.plan_date, at, verdict,
                      task.config_version)],
        DECISION_TYPES,
    )


def task_fate(verdict: Verdict, task: TaskRow, at: dt.datetime) -> str:
    """What a verdict does to a queued task: ``send`` (may be called now), ``reschedule`` (a
    defer that ends inside the window: the task waits until then) or ``withdraw``."""
    if verdict.verdict == SEND:
        return "send"
    until = verdict.defer_until
    if verdict.verdict != "block" and until is not None and at < until < task.due_end:
        return "reschedule"
    return "withdraw"


def withdraw_task(conn: Connection, task: TaskRow, verdict: Verdict, from_state: str,
              now: dt.datetime, holder: str | None = None) -> bool:
    """Withdraw ``task`` (in ``from_state``, held by ``holder`` when claimed); False when
    someone else moved it first."""
    where = [call_task.c.key == task.key, call_task.c.state == from_state]
    if holder is not None:
        where.append(call_task.c.agent == holder)
    values: dict[str, Any] = {
        "state": WITHDRAWN,
        "reasons": " ".join(verdict.reasons)[:500],
        "updated_at": now,
    }
    if from_state == CLAIMED:
        # Put back who last really had it (the claim that judged it handed nothing out).
        values.update(agent=task.agent, claimed_at=task.claimed_at)
    if conn.execute(update(call_task).where(*where).values(**values)).rowcount != 1:
        return False
    settle_unworked(conn, task, "withdrawn", now)
    return True


def settle_unworked(conn: Connection, task: TaskRow, outcome: str, now: dt.datetime) -> None:
    """A task that ends without a disposition: the ledger says why; a task never handed out
    was never dialled, so the dispatcher's placeholder attempt leaves the history (it would
    count against the caps and as a first communication)."""
    conn.execute(
        update(contact).where(contact.c.key == task.key).values(outcome=outcome, updated_at=now)
    )
    if task.claimed_at is None:
        conn.execute(
            contact_event.delete().where(
                contact_event.c.event_ref == placeholder_ref(task.key),
                contact_event.c.source == "dispatch",
                contact_event.c.outcome == "attempted",
            )
        )


def check_agent(agent: str) -> str:
    if not isinstance(agent, str) or not agent.strip():
        raise ValueError("agent: required")
    agent = agent.strip()
    if len(agent) > MAX_AGENT_LENGTH:
        raise ValueError(f"agent: at most {MAX_AGENT_LENGTH} characters")
    return agent


def _held_by(agent: str, stale_before: dt.datetime) -> Any:
    """The agent's claims still inside their lease: a condition on an alias of call_task, so
    the claiming UPDATE can count them in a subquery of its own."""
    held = call_task.alias("held")
    return and_(held.c.state == CLAIMED, held.c.agent == agent,
                held.c.claimed_at > stale_before), held


def _open_keys(conn: Connection, agent: str, stale_before: dt.datetime) -> list[str]:
    where, held = _held_by(agent, stale_before)
    return list(conn.execute(select(held.c.key).where(where).order_by(held.c.key)).scalars())


def _lock_agent(conn: Connection, agent: str) -> None:
    """Serialise one agent's claims until this transaction ends. PostgreSQL's READ COMMITTED
    lets two claims of the same agent (two tabs, a double click) each count the agent's open
    calls before the other commits; an advisory lock keyed on the agent makes the second count
    after the first's commit. SQLite serialises every write already."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            select(func.pg_advisory_xact_lock(
                func.hashtextextended("outreach.call_agent:" + agent, 0)))
        )


def claim_next(engine: Engine, agent: str, now: dt.datetime, *,
               max_open: int | None = None) -> ClaimedTask | None:
    """Hand ``agent`` the highest-priority queued task whose window holds ``now``, after the gate
    allowed the call on the facts known at ``now``; None when there is none.

    The task is claimed first (``UPDATE ... WHERE state = 'queued'``: of two agents, one wins),
    then judged; the decision is recorded as a send-phase policy_decision. A task the gate
    blocks (paid, disputed, opted out, cease request, ...) is withdrawn with the reason codes,
    one it defers to later in its window waits until then, and the next task is tried.

    An agent holds at most ``max_open`` claimed calls whose lease has not run out (default
    ``max_open_tasks()``); one more raises TooManyOpenTasks and claims nothing. The limit is
    part of the claiming UPDATE itself (and, on PostgreSQL, under a per-agent lock), so two
    claims of one agent at once cannot both pass it.
    """
    agent = check_agent(agent)
    now = utc(now)
    limit = max_open_tasks() if max_open is None else max_open
    stale_before = now - claim_lease()
    with engine.connect() as conn:
        held_now = _open_keys(conn, agent, stale_before)
    if len(held_now) >= limit:
        raise TooManyOpenTasks(held_now, limit)
    held_where, held = _held_by(agent, stale_before)
    under_limit = select(func.count()).select_from(held).where(held_where).scalar_subquery() < limit
    rules = send_rules(engine)
    judged: set[str] = set()
    while True:
        with engine.connect() as conn:
            candidates = [
                t
                for t in select_tasks(
                    conn,
                    call_task.c.state == QUEUED,
                    call_task.c.due_start <= now,
                    call_task.c.due_end > now,
                    order=(call_task.c.priority.desc(), call_task.c.due_end, call_task.c.key),
                    limit=CANDIDATES + len(judged),
                )
                if t.key not in judged
            ]
        if not candidates:
            return None
        for task in candidates:
            judged.add(task.key)
            with engine.begin() as conn:
                _lock_agent(conn, agent)
                taken = conn.execute(
                    update(call_task)
                    .where(
                        call_task.c.key == task.key,
                        call_task.c.state == QUEUED,
                        call_task.c.due_start <= now,
                        call_task.c.due_end > now,
                        under_limit,
                    )
                    .values(state=CLAIMED, agent=agent, claimed_at=now, updated_at=now)
                ).rowcount
                if taken != 1:
                    held_now = _open_keys(conn, agent, stale_before)
                    if len(held_now) >= limit:  # a claim of this agent's own got in first
                        raise TooManyOpenTasks(held_now, limit)
            if taken != 1:
                continue  # another agent (or a refresh) got there first
            try:
                handed = _judge_claimed(engine, task, agent, now, rules)
            except BaseException:
                # Nothing was handed out: give the task back as it was.
                with engine.begin() as conn:
                    conn.execute(
                        update(call_task)
                        .where(call_task.c.key == task.key, call_task.c.state == CLAIMED,
                               call_task.c.agent == agent, call_task.c.claimed_at == now)
                        .values(state=QUEUED, agent=task.agent, claimed_at=task.claimed_at)
                    )
                raise
            if handed is not None:
                return handed


def _judge_claimed(
    engine: Engine, task: TaskRow, agent: str, now: dt.datetime, rules: SendRules
) -> ClaimedTask | None:
    with engine.connect() as conn:
        day = max(task.plan_date, now.date())
        account = load_accounts(conn, task.account_id, task.account_id, day=day, cutoff=now)[
            task.account_id
        ]
        verdict = judge_task(conn, task, account, now, rules)
        fate = task_fate(verdict, task, now)
        handed: ClaimedTask | None = None
        if fate == "send":
            row = conn.execute(
                select(Account.account_ref, ContactPoint.value)
                .select_from(Account)
                .outerjoin(ContactPoint, ContactPoint.id == task.contact_point_id)
                .where(Account.id == task.account_id)
            ).one()
            dial = row[1] or ""
            handed = ClaimedTask(
                task.key, task.account_id, row[0], task.contact_point_id, mask_phone(dial),
                dial, task.priority, task.due_start, task.due_end, task.stage, task.action,
                task.plan_date,
            )
    with engine.begin() as conn:
        mine = and_(call_task.c.key == task.key, call_task.c.state == CLAIMED,
                    call_task.c.agent == agent, call_task.c.claimed_at == now)
        if fate == "send":
            if task.claimed_at is not None:
                # An earlier hand-out ended without a disposition (the lease ran out): that
                # agent may have dialled, so the call counts as an attempt of its own.
                insert_ignoring(conn, contact_event, {
                    "event_ref": _lease_ref(task.key, task.claimed_at),
                    "account_id": task.account_id,
                    "occurred_at": task.claimed_at,
                    "channel": "call",
                    "contact_point_id": task.contact_point_id,
                    "direction": "outbound",
                    "outcome": "attempted",
                    "source": "agent",
                    "ledger_key": task.key,
                }, ["event_ref"])
        elif fate == "reschedule":
            conn.execute(
                update(call_task).where(mine).values(
                    state=QUEUED, due_start=verdict.defer_until, agent=task.agent,
                    claimed_at=task.claimed_at, updated_at=now,
                )
            )
        else:
            withdraw_task(conn, task, verdict, CLAIMED, now, holder=agent)
        record_decision(conn, task, verdict, now)
    if handed is None:
        log.info("call task %s not handed out at claim: %s (%s)", task.key[:16], fate,
                 " ".join(verdict.reasons))
    else:
        log.info("call task %s claimed by %s", task.key[:16], agent)
    return handed


def insert_ignoring(conn: Connection, table: Table, values: Mapping[str, Any],
                     conflict: list[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL; True when a row was written."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(table).values(**values).on_conflict_do_nothing(
        index_elements=conflict
    )
    return bool(conn.execute(statement).rowcount)


# --- Upkeep: expiry, stale claims, re-judging the queue ----------------------------------------
