"""What the self-service page reads about one account: what is owed, the open promise, the
arrangement, and whether the person already asked for no more texts or emails. Nothing here is
shown until the page's token has been verified (``outreach.services.self_service``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from outreach.kernel.facts import as_date

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Owed:
    """The account as the page shows it."""

    account_id: int
    account_ref: str
    balance: Decimal
    past_due: Decimal
    currency: str
    due_date: dt.date | None
    language: str
    country: str
    product: str

    def days_past_due(self, day: dt.date) -> int:
        return max((day - self.due_date).days, 0) if self.due_date else 0


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def owed(conn: Connection, account_id: int) -> Owed | None:
    """What the account owes, or None when there is no such account."""
    row = conn.execute(
        text(
            "SELECT a.id, a.account_ref, a.balance, a.amount_past_due, a.currency, a.due_date, "
            "p.language, a.jurisdiction_country, a.product "
            "FROM account a JOIN person p ON p.id = a.person_id WHERE a.id = :a"
        ),
        {"a": account_id},
    ).first()
    if row is None:
        return None
    return Owed(
        account_id=int(row[0]), account_ref=str(row[1]), balance=_money(row[2]),
        past_due=_money(row[3]), currency=str(row[4]), due_date=as_date(row[5]),
        language=str(row[6] or "en"), country=str(row[7]), product=str(row[8]),
    )  # fmt: skip


def open_promise(conn: Connection, account_id: int) -> dict[str, Any] | None:
    """The account's open promise (ref, amount, due date), the latest one first."""
    row = conn.execute(
        text(
            "SELECT promise_ref, amount, due_on FROM promise WHERE account_id = :a "
            "AND status = 'open' ORDER BY due_on DESC, id DESC LIMIT 1"
        ),
        {"a": account_id},
    ).first()
    if row is None:
        return None
    return {"ref": row[0], "amount": _money(row[1]), "due_on": as_date(row[2])}


def current_arrangement(conn: Connection, account_id: int) -> dict[str, Any] | None:
    """The account's arrangement that is still alive (offered, pending approval or active)."""
    row = conn.execute(
        text(
            "SELECT arrangement_ref, kind, state, total, term_months, instalment_amount, "
            "first_due_on FROM arrangement WHERE account_id = :a "
            "AND state IN ('offered', 'pending_approval', 'active') ORDER BY id DESC LIMIT 1"
        ),
        {"a": account_id},
    ).first()
    if row is None:
        return None
    return {
        "ref": row[0], "kind": row[1], "state": row[2], "total": _money(row[3]),
        "term_months": row[4], "instalment_amount": _money(row[5]),
        "first_due_on": as_date(row[6]),
    }  # fmt: skip


def opted_out_of(conn: Connection, account_id: int) -> list[str]:
    """The channels the account's person has opted out of everywhere (scope ``*``)."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT o.channel FROM opt_out o JOIN account a ON a.person_id = o.person_id "
            "WHERE a.id = :a AND o.scope = '*' ORDER BY o.channel"
        ),
        {"a": account_id},
    )
    return [str(r[0]) for r in rows]
