"""What the resolution loop's messages say, read at send time from the tables the loop keeps:
the open promise, the arrangement's next and missed instalments, and the periodic statement of
an arrangement (what was due, what was paid, what remains). Money as the other templates show
it (``messages.money``), dates as ISO days."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from outreach.kernel.facts import as_date
from outreach.planning.messages import money

CENT = Decimal("0.01")
# What the messages of the loop read besides the account's figures (``loop_context``); every key
# is there for every loop message ('' when the account has no such thing).
LOOP_KEYS = (
    "promise_amount", "promise_due_on", "instalment_amount", "instalment_due_on",
    "missed_amount", "missed_due_on", "statement",
)  # fmt: skip


def _cents(value: object) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


@dataclass(frozen=True, slots=True)
class StatementLine:
    seq: int
    due_on: dt.date
    amount: Decimal
    paid: Decimal
    state: str  # due | paid | partly_paid | missed


@dataclass(frozen=True, slots=True)
class Statement:
    """An arrangement's statement on ``as_of``: its instalments due so far and the payments
    since it was accepted. ``remaining`` is what is left of the whole arrangement."""

    arrangement_ref: str
    as_of: dt.date
    total: Decimal
    instalments: tuple[StatementLine, ...]  # due on or before as_of, oldest first
    payments: tuple[tuple[dt.date, Decimal], ...]  # posted since acceptance, up to as_of
    paid_total: Decimal  # paid against the arrangement's instalments (allocated), all of them
    next_due_on: dt.date | None
    next_amount: Decimal | None

    @property
    def due_to_date(self) -> Decimal:
        return sum((i.amount for i in self.instalments), Decimal(0))

    @property
    def paid_to_date(self) -> Decimal:
        """Paid against the instalments due so far."""
        return sum((i.paid for i in self.instalments), Decimal(0))

    @property
    def arrears(self) -> Decimal:
        return self.due_to_date - self.paid_to_date

    @property
    def remaining(self) -> Decimal:
        return self.total - self.paid_total


def statement_of(conn: Connection, account_id: int, as_of: dt.date) -> Statement | None:
    """The statement of the account's arrangement in force (active, else the latest), or None."""
    row = conn.execute(
        text(
            "SELECT id, arrangement_ref, total, accepted_at, created_at FROM arrangement "
            "WHERE account_id = :a AND state NOT IN ('offered', 'pending_approval', 'cancelled') "
            "ORDER BY CASE WHEN state = 'active' THEN 0 ELSE 1 END, id DESC LIMIT 1"
        ),
        {"a": account_id},
    ).first()
    if row is None:
        return None
    lines = [
        StatementLine(r[0], as_date(r[1]), _cents(r[2]), _cents(r[3]), r[4])  # type: ignore[arg-type]
        for r in conn.execute(
            text(
                "SELECT seq, due_on, amount, paid_amount, state FROM arrangement_instalment "
                "WHERE arrangement_id = :ar ORDER BY seq"
            ),
            {"ar": row[0]},
        )
    ]
    since = as_date(str(row[3] or row[4])[:10])
    payments: tuple[tuple[dt.date, Decimal], ...] = tuple(
        (as_date(r[0]), _cents(r[1]))  # type: ignore[misc]
        for r in conn.execute(
            text(
                "SELECT paid_on, amount FROM payment WHERE account_id = :a "
                "AND status = 'posted' AND paid_on >= :since AND paid_on <= :day "
                "ORDER BY paid_on, id"
            ),
            {"a": account_id, "since": since, "day": as_of},
        )
    )
    upcoming = next((i for i in lines if i.due_on > as_of and i.state != "paid"), None)
    return Statement(
        arrangement_ref=row[1],
        as_of=as_of,
        total=_cents(row[2]),
        instalments=tuple(i for i in lines if i.due_on <= as_of),
        payments=payments,
        paid_total=sum((i.paid for i in lines), Decimal(0)),
        next_due_on=upcoming.due_on if upcoming else None,
        next_amount=(upcoming.amount - upcoming.paid) if upcoming else None,
    )


def statement_context(s: Statement | None) -> dict[str, Any]:
    """The statement as templates read it (``statement.instalments`` etc.); empty lists and ''
    without an arrangement."""
    if s is None:
        return {"instalments": [], "payments": [], "due_to_date": "", "paid_to_date": "",
                "arrears": "", "remaining": "", "total": "", "paid_total": "",
                "next_due_on": "", "next_amount": "", "as_of": ""}  # fmt: skip
    return {
        "instalments": [
            {"seq": i.seq, "due_on": i.due_on.isoformat(), "amount": money(i.amount),
             "paid": money(i.paid), "state": i.state}
            for i in s.instalments
        ],
        "payments": [{"paid_on": d.isoformat(), "amount": money(a)} for d, a in s.payments],
        "due_to_date": money(s.due_to_date),
        "paid_to_date": money(s.paid_to_date),
        "arrears": money(s.arrears),
        "total": money(s.total),
        "paid_total": money(s.paid_total),
        "remaining": money(s.remaining),
        "next_due_on": s.next_due_on.isoformat() if s.next_due_on else "",
        "next_amount": money(s.next_amount) if s.next_amount is not None else "",
        "as_of": s.as_of.isoformat(),
    }  # fmt: skip


def loop_context(conn: Connection, account_id: int, day: dt.date) -> dict[str, Any]:
    """What a loop message says of the account on ``day`` (LOOP_KEYS)."""
    promise = conn.execute(
        text(
            "SELECT amount, paid_amount, due_on FROM promise WHERE account_id = :a "
            "AND status = 'open' ORDER BY due_on, id LIMIT 1"
        ),
        {"a": account_id},
    ).first()
    statement = statement_of(conn, account_id, day)
    upcoming = missed = None
    if statement is not None:
        missed = next((i for i in reversed(statement.instalments) if i.state == "missed"), None)
        upcoming = next(
            (i for i in statement.instalments if i.due_on == day and i.state != "paid"), None
        )
    out: dict[str, Any] = dict.fromkeys(LOOP_KEYS, "")
    if promise is not None:
        out["promise_amount"] = money(_cents(promise[0]) - _cents(promise[1]))
        out["promise_due_on"] = str(as_date(promise[2]))
    if upcoming is not None:
        out["instalment_amount"] = money(upcoming.amount - upcoming.paid)
        out["instalment_due_on"] = upcoming.due_on.isoformat()
    elif statement is not None and statement.next_due_on is not None:
        assert statement.next_amount is not None
        out["instalment_amount"] = money(statement.next_amount)
        out["instalment_due_on"] = statement.next_due_on.isoformat()
    if missed is not None:
        out["missed_amount"] = money(missed.amount - missed.paid)
        out["missed_due_on"] = missed.due_on.isoformat()
    out["statement"] = statement_context(statement)
    return out


def sample_loop_context() -> dict[str, Any]:
    """Long, realistic loop figures for the template lint: five-digit amounts, a five-year plan
    whose statement lists every instalment and a payment for each."""
    first = dt.date(2026, 1, 31)
    lines = tuple(
        StatementLine(k + 1, first + dt.timedelta(days=30 * k), Decimal("12345.67"),
                      Decimal("12345.67") if k < 58 else Decimal(0), "paid" if k < 58 else "missed")
        for k in range(60)
    )  # fmt: skip
    statement = Statement(
        "ARR-SAMPLE-0000000000", first + dt.timedelta(days=30 * 59), Decimal("740740.20"),
        lines, tuple((i.due_on, i.paid) for i in lines if i.paid), sum(i.paid for i in lines),  # type: ignore[arg-type]
        None, None,
    )  # fmt: skip
    return {
        "promise_amount": "12,345.67", "promise_due_on": "2026-12-31",
        "instalment_amount": "12,345.67", "instalment_due_on": "2026-12-31",
        "missed_amount": "12,345.67", "missed_due_on": "2026-12-31",
        "statement": statement_context(statement),
    }  # fmt: skip
