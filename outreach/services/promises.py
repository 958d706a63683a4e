"""Promises to pay for the entry points (``outreach promises``, the console's account page):
record one for an account by its ref, list an account's promises. The rules are
``outreach.resolution.promises``'s; docs/resolution.md, "Promises to pay"."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select

from outreach.kernel.clock import utcnow
from outreach.resolution.promises import PromiseMade, PromiseRefused, promises_of
from outreach.resolution.promises import make_promise as _make_promise
from outreach.storage.db import get_engine
from outreach.storage.models import Account

__all__ = ["PromiseMade", "PromiseRefused", "UnknownAccount", "list_promises", "make_promise"]


class UnknownAccount(PromiseRefused):
    """No account has that ref (the ref is the lender's, never personal data)."""

    def __init__(self) -> None:
        super().__init__("unknown_account", "no such account")


def _account_id(conn: Connection, account_ref: str) -> int:
    found = conn.execute(select(Account.id).where(Account.account_ref == account_ref)).scalar()
    if found is None:
        raise UnknownAccount()
    return int(found)


def _utc(value: dt.datetime) -> dt.datetime:
    """Naive UTC, as every table stores instants (a naive value is taken as UTC)."""
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def make_promise(
    account_ref: str,
    amount: Decimal,
    due_on: dt.date,
    source: str,
    actor: str,
    made_at: dt.datetime | None = None,
    as_of: dt.date | None = None,
    *,
    engine: Engine | None = None,
) -> PromiseMade:
    """Record a promise for the account ``account_ref``, made on ``as_of`` (default today), in
    one transaction; PromiseRefused (with its code) when the limits refuse it. Recorded now;
    on a day other than today (a replay, the demo) at noon UTC of that day, so that the plan of
    the day after is the first it pauses, as for a promise made today."""
    now = utcnow()
    day = as_of or now.date()
    recorded_at = now if day == now.date() else dt.datetime.combine(day, dt.time(12))
    with (engine or get_engine()).begin() as conn:
        return _make_promise(
            conn, account_id=_account_id(conn, account_ref), amount=amount, due_on=due_on,
            made_at=_utc(made_at) if made_at else recorded_at, source=source, actor=actor,
            day=day, recorded_at=recorded_at,
        )  # fmt: skip


def list_promises(account_ref: str, *, engine: Engine | None = None) -> list[dict[str, Any]]:
    """The account's promises, newest due first; UnknownAccount when there is no such account."""
    with (engine or get_engine()).connect() as conn:
        return promises_of(conn, _account_id(conn, account_ref))
