"""Import records of the resolution loop: ``promise`` (a promise to pay made in the lender's
systems), checked row by row and written through outreach.resolution, whose rules (limits,
idempotency, the resolution event) apply as to a promise made here (docs/import-format.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection

from outreach.portfolio.accounts import AccountRef
from outreach.portfolio.rows import (
    INSERTED,
    REJECTED,
    SUPERSEDED,
    UNCHANGED,
    Item,
    Reject,
    Row,
    choice,
    date,
    instant,
    money,
    required_text,
)
from outreach.resolution.promises import SOURCES, PromiseRefused, make_promise

# The refusal's code -> the field a reject names.
_REFUSED_FIELD = {
    "promise_amount": "amount", "promise_date": "due_on", "too_far_ahead": "due_on",
    "too_many_open": "account_ref", "ref_conflict": "promise_ref", "source": "source",
}  # fmt: skip


@dataclass(slots=True, eq=False, kw_only=True)
class PromiseIn(Item):
    account_ref: str
    promise_ref: str
    amount: Decimal
    due_on: dt.date
    made_at: dt.datetime  # naive UTC
    source: str


def parse_promise(row: Row) -> PromiseIn:
    d = row.data
    made_at = instant(d.get("made_at"), "made_at")
    due_on = date(d.get("due_on"), "due_on", required=True)
    assert due_on is not None
    if due_on < made_at.date():
        raise Reject("due_on", "before made_at")
    return PromiseIn(
        row=row,
        account_ref=required_text(d.get("account_ref"), "account_ref", 64),
        promise_ref=required_text(d.get("promise_ref"), "promise_ref", 64),
        amount=money(d.get("amount"), "amount", positive=True),
        due_on=due_on,
        made_at=made_at,
        source=choice(d.get("source"), "source", SOURCES, default="import"),
    )


def write_promises(
    conn: Connection,
    promises: list[tuple[PromiseIn, AccountRef]],
    rejects: list[tuple[Row, str | None, str]],
) -> None:
    """Each promise through ``make_promise``, made on the day of its ``made_at`` and known since
    then (``recorded_at``): inserted, unchanged (the same ref with the same terms again: a
    re-import) or rejected with the field and the limit that refused it."""
    for p, account in promises:
        if not p.final:
            p.status = SUPERSEDED
            continue
        try:
            made = make_promise(
                conn, account_id=account.id, amount=p.amount, due_on=p.due_on,
                made_at=p.made_at, source=p.source, actor="import", day=p.made_at.date(),
                promise_ref=p.promise_ref, recorded_at=p.made_at,
            )  # fmt: skip
        except PromiseRefused as exc:
            p.status = REJECTED
            rejects.append((p.row, _REFUSED_FIELD.get(exc.code), exc.message))
            continue
        p.status = INSERTED if made.created else UNCHANGED
