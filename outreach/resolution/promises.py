"""Promises to pay: made (by an agent's disposition, the console, the self-service page or an
import) within the limits of config/arrangements.yaml, then settled each day: kept when paid in
full, partly kept or broken once their date plus grace days has passed. While open and pausing,
the kernel's facts read a promise as the hold ``promise_open`` (core.promise_open).

What a promise has been paid is ``promise.paid_amount``, written by the payments' allocation
(outreach.resolution.payments); this module only judges it."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection, Date, DateTime, Table, func, insert, or_, select, update

from outreach.kernel.clock import today, utcnow
from outreach.resolution.events import Transition, record
from outreach.resolution.policy import Promises, resolution_policy
from outreach.storage.bulk import executemany
from outreach.storage.models import Promise

PROMISE: Table = Promise.__table__  # type: ignore[assignment]
CENT = Decimal("0.01")
SOURCES = ("agent", "console", "self_service", "import", "agency")
OPEN, KEPT, PARTLY_KEPT, BROKEN, CANCELLED = "open", "kept", "partly_kept", "broken", "cancelled"


class PromiseRefused(ValueError):
    """A promise not recorded, nothing changed. ``code``: ``promise_amount`` (not more than 0 or
    more than 2 decimals), ``promise_date`` (before the day), ``too_far_ahead`` (beyond
    promises.max_days_ahead), ``too_many_open`` (promises.max_open), ``ref_conflict`` (the ref or
    ledger key names another promise), ``source``. The message carries no personal data."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class PromiseMade:
    """The promise as recorded: its ref and status, whether it pauses collection (``reason``
    says why not: ``broken_limit``), and whether this call created it (False: the same promise
    was recorded before, nothing changed)."""

    ref: str
    status: str
    pauses: bool
    reason: str | None
    promise_id: int = 0
    pause_until: dt.date | None = None
    created: bool = True


def promise_ref_for(account_id: int, amount: Decimal, due_on: dt.date,
                    made_at: dt.datetime | None, source: str, day: dt.date) -> str:
    """A deterministic ref for a promise that came without one: the same promise made again (same
    account, amount, date, moment and source) gets the same ref, hence no second row."""
    blob = f"{account_id}|{amount}|{due_on.isoformat()}|{made_at.isoformat() if made_at else day}|{source}"
    return "p-" + hashlib.sha256(blob.encode()).hexdigest()[:20]


def _amount(value: Decimal) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PromiseRefused("promise_amount", "amount: not a number") from None
    if not amount.is_finite() or amount <= 0 or amount >= Decimal("1e12"):
        raise PromiseRefused("promise_amount", "amount: must be more than 0")
    if amount != amount.quantize(CENT):
        raise PromiseRefused("promise_amount", "amount: at most 2 decimals")
    return amount.quantize(CENT)


def _check_terms(amount: Decimal, due_on: dt.date, day: dt.date, limits: Promises) -> Decimal:
    value = _amount(amount)
    if not isinstance(due_on, dt.date) or isinstance(due_on, dt.datetime):
        raise PromiseRefused("promise_date", "due_on: not a date")
    if due_on < day:
        raise PromiseRefused("promise_date", f"due_on: before {day.isoformat()}")
    if (due_on - day).days > limits.max_days_ahead:
        raise PromiseRefused("too_far_ahead",
                             f"due_on: more than {limits.max_days_ahead} days after {day.isoformat()}"
                             " (promises.max_days_ahead)")  # fmt: skip
    return value


def _as_date(value: object) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value  # type: ignore[return-value]
    return dt.date.fromisoformat(str(value)[:10])


def _existing(conn: Connection, account_id: int, ref: str | None, ledger_key: str | None,
              amount: Decimal, due_on: dt.date) -> PromiseMade | None:
    """The promise this one repeats (same ref or ledger key), or None; a ref or key that names
    a promise with other terms is refused."""
    for column, value in ((PROMISE.c.promise_ref, ref), (PROMISE.c.ledger_key, ledger_key)):
        if value is None:
            continue
        row = conn.execute(
            select(PROMISE.c.id, PROMISE.c.account_id, PROMISE.c.promise_ref, PROMISE.c.amount,
                   PROMISE.c.due_on, PROMISE.c.status, PROMISE.c.pauses, PROMISE.c.pause_until)
            .where(column == value)
        ).first()
        if row is None:
            continue
        same = (row.account_id == account_id and Decimal(str(row.amount)) == amount
                and _as_date(row.due_on) == due_on)  # fmt: skip
        if not same:
            raise PromiseRefused("ref_conflict",
                                 f"{column.name} already names another promise")  # fmt: skip
        return PromiseMade(ref=row.promise_ref or f"promise-{row.id}", status=row.status,
                           pauses=bool(row.pauses),
                           reason=None if row.pauses else "broken_limit", promise_id=row.id,
                           pause_until=_as_date(row.pause_until), created=False)  # fmt: skip
    return None


def _until(pause_until: object, due_on: object, grace: dt.timedelta) -> dt.date:
    """The last day a promise pauses (rows recorded before pause_until existed: due + grace)."""
    until = _as_date(pause_until)
    if until is not None:
        return until
    due = _as_date(due_on)
    assert due is not None  # due_on is NOT NULL
    return due + grace


def _pauses(conn: Connection, account_id: int, day: dt.date, limits: Promises) -> bool:
    """False once the account broke ``broken_limit.broken`` promises within ``within_days`` and
    the last of them less than ``no_pause_days`` ago (config/arrangements.yaml)."""
    rule = limits.broken_limit
    since = day - dt.timedelta(days=rule.within_days)
    count, last = conn.execute(
        select(func.count(), func.max(PROMISE.c.settled_on)).where(
            PROMISE.c.account_id == account_id, PROMISE.c.status == BROKEN,
            PROMISE.c.settled_on >= since, PROMISE.c.settled_on <= day)
    ).one()  # fmt: skip
    last_on = _as_date(last)
    if count < rule.broken or last_on is None:
        return True
    return (day - last_on).days >= rule.no_pause_days


def make_promise(
    conn: Connection,
    *,
    account_id: int,
    amount: Decimal,
    due_on: dt.date,
    made_at: dt.datetime | None,
    source: str,
    actor: str,
    day: dt.date,
    promise_ref: str | None = None,
    ledger_key: str | None = None,
    recorded_at: dt.datetime | None = None,
) -> PromiseMade:
    """Record a promise made on ``day`` (in ``conn``'s transaction) or raise PromiseRefused.

    The same promise again (its ``promise_ref`` or ``ledger_key`` already recorded with the same
    account, amount and date) returns it unchanged. Otherwise the amount is more than 0 with at
    most 2 decimals, ``due_on`` falls within promises.max_days_ahead of ``day`` and the account
    has fewer than promises.max_open open promises. It pauses collection until ``due_on`` plus
    promises.grace_days, unless the broken-promise limit says otherwise. ``recorded_at`` (naive
    UTC, default now) is when the system learnt of it: the gate reads it from the next plan."""
    if source not in SOURCES:
        raise PromiseRefused("source", f"source must be one of {', '.join(SOURCES)}")
    limits = resolution_policy().promises
    value = _amount(amount)
    if not isinstance(due_on, dt.date) or isinstance(due_on, dt.datetime):
        raise PromiseRefused("promise_date", "due_on: not a date")
    ref = promise_ref or promise_ref_for(account_id, value, due_on, made_at, source, day)
    again = _existing(conn, account_id, ref, ledger_key, value, due_on)
    if again is not None:
        return again
    _check_terms(value, due_on, day, limits)
    open_now = conn.execute(
        select(func.count()).where(PROMISE.c.account_id == account_id, PROMISE.c.status == OPEN)
    ).scalar_one()
    if open_now >= limits.max_open:
        raise PromiseRefused("too_many_open",
                             f"the account has {open_now} open promise(s); at most "
                             f"{limits.max_open} (promises.max_open)")  # fmt: skip
    pauses = _pauses(conn, account_id, day, limits)
    pause_until = due_on + dt.timedelta(days=limits.grace_days)
    now = utcnow()
    promise_id = conn.execute(
        insert(PROMISE).values(
            account_id=account_id, promise_ref=ref, ledger_key=ledger_key, amount=value,
            due_on=due_on, made_at=made_at, recorded_at=recorded_at or now, source=source,
            actor=actor[:64], status=OPEN, pauses=pauses, pause_until=pause_until,
            paid_amount=Decimal(0), updated_at=now)
    ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
    reason = None if pauses else "broken_limit"
    record(conn, [Transition(account_id, "promise", ref, None, OPEN, actor,
                             source if pauses else f"{source}; no pause: broken_limit")],
           at=recorded_at or now)  # fmt: skip
    return PromiseMade(ref=ref, status=OPEN, pauses=pauses, reason=reason,
                       promise_id=promise_id, pause_until=pause_until)


def _settled_at(day: dt.date, now: dt.datetime) -> dt.datetime:
    """When a settling happened: now, or the start of ``day`` when another day is settled (a
    replay, the demo), so that the events sort with that day's."""
    return now if now.date() == day else dt.datetime.combine(day, dt.time())


def _verdict(paid: Decimal, amount: Decimal, day: dt.date, pause_until: dt.date
             ) -> tuple[str, str] | None:  # fmt: skip
    if paid >= amount:
        return KEPT, "paid_in_full"
    if day <= pause_until:
        return None
    if paid > 0:
        return PARTLY_KEPT, "part_paid_by_grace"
    return BROKEN, "unpaid_by_grace"


def settle_promises(conn: Connection, day: dt.date, actor: str,
                    account_ids: Collection[int] | None) -> dict[str, int]:
    """The settler (outreach.resolution.settle): an open promise paid in full is kept at once;
    one still short the day after its date plus grace days is partly kept (something paid) or
    broken (nothing paid). Idempotent: a settled promise is never settled again."""
    grace = dt.timedelta(days=resolution_policy().promises.grace_days)
    # Only what may settle today: paid in full, or past its pause (the rest stays open).
    stmt = select(PROMISE.c.id, PROMISE.c.account_id, PROMISE.c.promise_ref, PROMISE.c.amount,
                  PROMISE.c.paid_amount, PROMISE.c.due_on, PROMISE.c.pause_until
                  ).where(PROMISE.c.status == OPEN,
                          or_(PROMISE.c.paid_amount >= PROMISE.c.amount,
                              PROMISE.c.pause_until < day, PROMISE.c.pause_until.is_(None)))  # fmt: skip
    if account_ids is not None:
        if not account_ids:
            return {KEPT: 0, PARTLY_KEPT: 0, BROKEN: 0}
        stmt = stmt.where(PROMISE.c.account_id.in_(sorted(account_ids)))
    # Locked where the database can (PostgreSQL): a payment allocated meanwhile waits.
    rows = conn.execute(stmt.order_by(PROMISE.c.id).with_for_update()).all()
    settled: dict[str, list[int]] = {KEPT: [], PARTLY_KEPT: [], BROKEN: []}
    changes: list[Transition] = []
    for row in rows:
        until = _until(row.pause_until, row.due_on, grace)
        verdict = _verdict(Decimal(str(row.paid_amount or 0)), Decimal(str(row.amount)), day,
                           until)  # fmt: skip
        if verdict is None:
            continue
        status, why = verdict
        settled[status].append(row.id)
        changes.append(Transition(row.account_id, "promise",
                                  row.promise_ref or f"promise-{row.id}", OPEN, status, actor,
                                  why))  # fmt: skip
    now = utcnow()
    # One statement, many rows, each by its primary key (outreach.storage.bulk: SQLAlchemy's
    # per-row processing would cost more than the database at a portfolio's scale).
    executemany(
        conn,
        "UPDATE promise SET status = ?, settled_on = ?, updated_at = ? "
        "WHERE id = ? AND status = 'open'",
        [(status, day, now, pid) for status, ids in settled.items() for pid in ids],
        (None, Date(), DateTime(), None),
    )
    record(conn, changes, at=_settled_at(day, now))
    return {status: len(ids) for status, ids in settled.items()}


def reopen(conn: Connection, promise_id: int, actor: str, reason: str,
           day: dt.date | None = None) -> str | None:
    """A payment that settled the promise was reversed (outreach.resolution.payments lowers
    ``paid_amount`` first): a kept or partly kept promise is open again while ``day`` (default
    today) is within its date plus grace days; past it, it is partly kept (something still paid)
    or broken. Returns the new status; None when nothing changed (no such promise, not settled
    as kept or partly kept, or still paid in full)."""
    day = day or today()
    row = conn.execute(
        select(PROMISE.c.account_id, PROMISE.c.promise_ref, PROMISE.c.status, PROMISE.c.amount,
               PROMISE.c.paid_amount, PROMISE.c.due_on, PROMISE.c.pause_until)
        .where(PROMISE.c.id == promise_id)
    ).first()  # fmt: skip
    if row is None or row.status not in (KEPT, PARTLY_KEPT):
        return None
    paid, amount = Decimal(str(row.paid_amount or 0)), Decimal(str(row.amount))
    if paid >= amount:
        return None
    grace = dt.timedelta(days=resolution_policy().promises.grace_days)
    until = _until(row.pause_until, row.due_on, grace)
    if day <= until:
        status, settled = OPEN, None
    else:
        status, settled = (PARTLY_KEPT if paid > 0 else BROKEN), day
    if status == row.status:
        return None
    now = utcnow()
    conn.execute(
        update(PROMISE).where(PROMISE.c.id == promise_id)
        .values(status=status, settled_on=settled, updated_at=now)
    )
    record(conn, [Transition(row.account_id, "promise", row.promise_ref or f"promise-{promise_id}",
                             row.status, status, actor, reason)],
           at=_settled_at(day, now))  # fmt: skip
    return str(status)


def promises_of(conn: Connection, account_id: int) -> list[dict[str, object]]:
    """The account's promises, newest due first (the console and ``outreach promises list``):
    refs, amounts, dates and states, no personal data."""
    cols = (PROMISE.c.promise_ref, PROMISE.c.amount, PROMISE.c.due_on, PROMISE.c.made_at,
            PROMISE.c.recorded_at, PROMISE.c.source, PROMISE.c.actor, PROMISE.c.status,
            PROMISE.c.pauses, PROMISE.c.pause_until, PROMISE.c.paid_amount, PROMISE.c.settled_on,
            PROMISE.c.id)  # fmt: skip
    rows = conn.execute(select(*cols).where(PROMISE.c.account_id == account_id)
                        .order_by(PROMISE.c.due_on.desc(), PROMISE.c.id.desc()))
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["promise_ref"] = d["promise_ref"] or f"promise-{d['id']}"
        del d["id"]
        out.append(d)
    return out
