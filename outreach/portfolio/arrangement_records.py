"""The import records ``arrangement`` (a repayment arrangement the system of record made) and
``means`` (stated monthly income and expenses): their checks here, their writing by
outreach.resolution.arrangements (schedules from the offer calculator, a resolution event for
each change). Format: docs/import-format.md."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection

from outreach.portfolio.accounts import AccountRef
from outreach.portfolio.rows import (
    REJECTED,
    SUPERSEDED,
    Item,
    Reject,
    Row,
    choice,
    date,
    instant,
    money,
    required_text,
    shown_value,
)
from outreach.resolution.arrangements import (
    IMPORT_STATES,
    ArrangementRefused,
    import_arrangement,
    import_means,
)

KINDS = ("instalment", "settlement")
MAX_TERM = 120  # months: the longest plan any configured jurisdiction allows is shorter


@dataclass(slots=True, eq=False, kw_only=True)
class ArrangementIn(Item):
    account_ref: str
    arrangement_ref: str
    kind: str
    total: Decimal
    term_months: int
    first_due_on: dt.date
    accepted_at: dt.datetime
    state: str


@dataclass(slots=True, eq=False, kw_only=True)
class MeansIn(Item):
    account_ref: str
    monthly_income: Decimal
    monthly_expenses: Decimal
    stated_on: dt.date


def _months(value: Any, name: str) -> int:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) \
        else None  # fmt: skip
    if not text:
        raise Reject(name, "required")
    if not text.isdigit() or not 1 <= int(text) <= MAX_TERM:
        raise Reject(name, f"{shown_value(value)} is not a whole number of months from 1 to "
                           f"{MAX_TERM}")  # fmt: skip
    return int(text)


def parse_arrangement(row: Row) -> ArrangementIn:
    d = row.data
    return ArrangementIn(
        row=row,
        account_ref=required_text(d.get("account_ref"), "account_ref", 64),
        arrangement_ref=required_text(d.get("arrangement_ref"), "arrangement_ref", 64),
        kind=choice(d.get("kind"), "kind", KINDS),
        total=money(d.get("total"), "total", positive=True),
        term_months=_months(d.get("term_months"), "term_months"),
        first_due_on=cast(dt.date, date(d.get("first_due_on"), "first_due_on", required=True)),
        accepted_at=instant(d.get("accepted_at"), "accepted_at"),
        state=choice(d.get("state"), "state", IMPORT_STATES, default="active"),
    )


def parse_means(row: Row) -> MeansIn:
    d = row.data
    return MeansIn(
        row=row,
        account_ref=required_text(d.get("account_ref"), "account_ref", 64),
        monthly_income=money(d.get("monthly_income"), "monthly_income"),
        monthly_expenses=money(d.get("monthly_expenses"), "monthly_expenses"),
        stated_on=cast(dt.date, date(d.get("stated_on"), "stated_on", required=True)),
    )


def write_arrangement_records(
    conn: Connection,
    items: list[tuple[ArrangementIn | MeansIn, AccountRef]],
    day: dt.date,
    rejects: list[tuple[Row, str | None, str]],
) -> None:
    """Write each record through outreach.resolution (in file order: a later row of the same
    key decides); a record the rules refuse is a reject naming its field."""
    for item, account in sorted(items, key=lambda pair: pair[0].row.line):
        if not item.final:
            item.status = SUPERSEDED
            continue
        try:
            if isinstance(item, ArrangementIn):
                item.status = import_arrangement(
                    conn, account_id=account.id, arrangement_ref=item.arrangement_ref,
                    kind=item.kind, total=item.total, term_months=item.term_months,
                    first_due_on=item.first_due_on, accepted_at=item.accepted_at,
                    state=item.state, day=day,
                )  # fmt: skip
            else:
                item.status = import_means(
                    conn, account_id=account.id, income=item.monthly_income,
                    expenses=item.monthly_expenses, stated_on=item.stated_on,
                )  # fmt: skip
        except ArrangementRefused as refused:
            item.status = REJECTED
            rejects.append((item.row, refused.field, str(refused)))
