"""The score's features and label, as of a day, set-based: a handful of grouped queries over a
range of accounts (never one query per account), merged into one dict per account.

No future leakage: a feature as of day ``d`` reads only rows dated on or before ``d`` (payments
paid by ``d`` and not reversed by ``d``, events that occurred by the end of ``d``, promises and
arrangements settled or ended by ``d``). Where the account stood that day (days past due, balance,
past due) comes from that day's ``account_snapshot`` row; without one (today, before the plan has
written it) from the account itself. docs/model-card.md lists every feature.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from outreach.storage.models import (
    Account,
    AccountSnapshot,
    Arrangement,
    ContactEvent,
    DelinquencyCause,
    Payment,
    Promise,
    StatedMeans,
)


@dataclass(frozen=True)
class FeatureSpec:
    """One feature the score may use: its kind and its names in English and Chinese."""

    name: str
    type: str  # numeric | category
    label_en: str
    label_zh: str


CATALOG: dict[str, FeatureSpec] = {
    spec.name: spec
    for spec in (
        FeatureSpec("dpd", "numeric", "Days past due", "逾期天数"),
        FeatureSpec("balance", "numeric", "Balance", "余额"),
        FeatureSpec("past_due", "numeric", "Amount past due", "逾期金额"),
        FeatureSpec("payments_90d", "numeric", "Payments in the last 90 days", "近90天还款次数"),
        FeatureSpec("paid_share_90d", "numeric", "Paid in 90 days / past due",
                    "近90天还款额占逾期金额比例"),
        FeatureSpec("days_since_payment", "numeric", "Days since the last payment",
                    "距上次还款天数"),
        FeatureSpec("sent_30d", "numeric", "Contacts sent in 30 days", "近30天发出联系次数"),
        FeatureSpec("sent_90d", "numeric", "Contacts sent in 90 days", "近90天发出联系次数"),
        FeatureSpec("delivered_30d", "numeric", "Messages delivered in 30 days",
                    "近30天送达消息数"),
        FeatureSpec("delivered_90d", "numeric", "Messages delivered in 90 days",
                    "近90天送达消息数"),
        FeatureSpec("right_party_30d", "numeric", "Right-party conversations in 30 days",
                    "近30天本人通话次数"),
        FeatureSpec("right_party_90d", "numeric", "Right-party conversations in 90 days",
                    "近90天本人通话次数"),
        FeatureSpec("wrong_party_90d", "numeric", "Wrong-party contacts in 90 days",
                    "近90天非本人接听次数"),
        FeatureSpec("no_answer_90d", "numeric", "Unanswered calls in 90 days",
                    "近90天未接通次数"),
        FeatureSpec("promises_made", "numeric", "Promises to pay made", "承诺还款次数"),
        FeatureSpec("promises_kept", "numeric", "Promises kept", "已兑现承诺次数"),
        FeatureSpec("promises_broken", "numeric", "Promises broken", "违约承诺次数"),
        FeatureSpec("promises_kept_90d", "numeric", "Promises kept in 90 days",
                    "近90天兑现承诺次数"),
        FeatureSpec("promises_broken_90d", "numeric", "Promises broken in 90 days",
                    "近90天违约承诺次数"),
        FeatureSpec("arrangement_active", "numeric", "Arrangement active", "还款安排进行中"),
        FeatureSpec("arrangements_completed", "numeric", "Arrangements completed",
                    "已完成还款安排次数"),
        FeatureSpec("arrangements_broken", "numeric", "Arrangements broken",
                    "违约还款安排次数"),
        FeatureSpec("means_ratio", "numeric", "Stated disposable income / past due",
                    "自报可支配收入与逾期金额之比"),
        FeatureSpec("product", "category", "Product", "产品"),
        FeatureSpec("country", "category", "Country", "国家"),
        FeatureSpec("region", "category", "Region (state or province)", "地区（州或省）"),
        FeatureSpec("cause", "category", "Cause of delinquency", "逾期原因"),
    )
}  # fmt: skip

SENT = ("sent", "attempted")
RIGHT_PARTY = ("conversation",)
WRONG_PARTY = ("wrong_number", "third_party")
NO_ANSWER = ("no_answer", "voicemail", "busy")
EVENT_COUNTS = ("sent_30d", "sent_90d", "delivered_30d", "delivered_90d", "right_party_30d",
                "right_party_90d", "wrong_party_90d", "no_answer_90d")  # fmt: skip
PROMISE_COUNTS = ("promises_made", "promises_kept", "promises_broken", "promises_kept_90d",
                  "promises_broken_90d")  # fmt: skip
ARRANGEMENT_COUNTS = ("arrangement_active", "arrangements_completed", "arrangements_broken")


def _range(column: Any, lo: int | None, hi: int | None) -> list[Any]:
    where = []
    if lo is not None:
        where.append(column >= lo)
    if hi is not None:
        where.append(column < hi)
    return where


def _count(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _end_of(day: dt.date) -> dt.datetime:
    """The first instant after ``day`` (naive UTC, as instants are stored)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def _posted_by(day: dt.date) -> Any:
    """A payment that counted on ``day``: paid by then and not reversed by then."""
    p = Payment.__table__.c
    return and_(
        p.paid_on <= day,
        p.amount > 0,
        or_(p.status != "reversed", p.reversed_on.is_(None), p.reversed_on > day),
    )


def _ratio(num: Decimal | None, den: Decimal | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return float(num) / float(den)


def _base(
    conn: Connection, as_of: dt.date, lo: int | None, hi: int | None
) -> dict[int, dict[str, Any]]:
    a = Account.__table__.c
    s = AccountSnapshot.__table__.c
    query = (
        select(a.id, a.product, a.balance, a.amount_past_due, a.due_date,
               a.jurisdiction_country, a.jurisdiction_region, s.dpd, s.past_due, s.balance)
        .select_from(Account.__table__.outerjoin(
            AccountSnapshot.__table__, and_(s.account_id == a.id, s.as_of == as_of)))
        .where(*_range(a.id, lo, hi))
        .order_by(a.id)
    )  # fmt: skip
    rows: dict[int, dict[str, Any]] = {}
    for (account_id, product, balance, past_due, due_date, country, region,
         snap_dpd, snap_past_due, snap_balance) in conn.execute(query):  # fmt: skip
        if snap_dpd is not None:
            dpd, past_due, balance = snap_dpd, snap_past_due, snap_balance
        else:
            dpd = max(0, (as_of - due_date).days) if due_date and past_due > 0 else 0
        rows[account_id] = {
            "account_id": account_id,
            "snapshot": snap_dpd is not None,
            "dpd": int(dpd),
            "balance": float(balance),
            "past_due": float(past_due),
            "_past_due": Decimal(past_due),
            "product": product,
            "country": country,
            "region": f"{country}-{region}" if region else None,
        }
    return rows


def _payments(conn: Connection, as_of: dt.date, lo: int | None, hi: int | None) -> Any:
    p = Payment.__table__.c
    since = as_of - dt.timedelta(days=90)
    recent = p.paid_on > since
    return conn.execute(
        select(p.account_id, _count(recent), func.sum(case((recent, p.amount), else_=0)),
               func.max(p.paid_on))
        .where(_posted_by(as_of), *_range(p.account_id, lo, hi))
        .group_by(p.account_id)
    )  # fmt: skip


def _events(conn: Connection, as_of: dt.date, lo: int | None, hi: int | None) -> Any:
    e = ContactEvent.__table__.c
    d30 = _end_of(as_of - dt.timedelta(days=30))
    d90 = _end_of(as_of - dt.timedelta(days=90))
    in30, in90 = e.occurred_at >= d30, e.occurred_at >= d90
    return conn.execute(
        select(
            e.account_id,
            _count(and_(in30, e.outcome.in_(SENT))), _count(and_(in90, e.outcome.in_(SENT))),
            _count(and_(in30, e.outcome == "delivered")),
            _count(and_(in90, e.outcome == "delivered")),
            _count(and_(in30, e.outcome.in_(RIGHT_PARTY))),
            _count(and_(in90, e.outcome.in_(RIGHT_PARTY))),
            _count(and_(in90, e.outcome.in_(WRONG_PARTY))),
            _count(and_(in90, e.outcome.in_(NO_ANSWER))),
        )
        .where(e.occurred_at < _end_of(as_of), e.occurred_at >= d90,
               *_range(e.account_id, lo, hi))
        .group_by(e.account_id)
    )  # fmt: skip


def _promises(conn: Connection, as_of: dt.date, lo: int | None, hi: int | None) -> Any:
    p = Promise.__table__.c
    settled = and_(p.settled_on.is_not(None), p.settled_on <= as_of)
    recent = p.settled_on > as_of - dt.timedelta(days=90)
    kept = and_(settled, p.status == "kept")
    broken = and_(settled, p.status.in_(("broken", "partly_kept")))
    return conn.execute(
        select(p.account_id, func.count(), _count(kept), _count(broken),
               _count(and_(kept, recent)), _count(and_(broken, recent)))
        .where(func.coalesce(p.made_at, p.recorded_at) < _end_of(as_of),
               *_range(p.account_id, lo, hi))
        .group_by(p.account_id)
    )  # fmt: skip


def _arrangements(conn: Connection, as_of: dt.date, lo: int | None, hi: int | None) -> Any:
    r = Arrangement.__table__.c
    ended = and_(r.ended_on.is_not(None), r.ended_on <= as_of)
    return conn.execute(
        select(r.account_id, _count(~ended), _count(and_(ended, r.state == "completed")),
               _count(and_(ended, r.state == "broken")))
        .where(r.accepted_at.is_not(None), r.accepted_at < _end_of(as_of),
               *_range(r.account_id, lo, hi))
        .group_by(r.account_id)
    )  # fmt: skip


def _latest_causes(conn: Connection, as_of: dt.date, lo: int | None, hi: int | None) -> Any:
    c = DelinquencyCause.__table__.c
    return conn.execute(
        select(c.account_id, c.cause)
        .where(c.recorded_at < _end_of(as_of), *_range(c.account_id, lo, hi))
        .order_by(c.account_id, c.recorded_at, c.id)
    )


def _latest_means(conn: Connection, as_of: dt.date, lo: int | None, hi: int | None) -> Any:
    m = StatedMeans.__table__.c
    return conn.execute(
        select(m.account_id, m.monthly_income, m.monthly_expenses)
        .where(m.stated_on <= as_of, *_range(m.account_id, lo, hi))
        .order_by(m.account_id, m.stated_on, m.id)
    )


def feature_rows(
    conn: Connection,
    as_of: dt.date,
    lo: int | None = None,
    hi: int | None = None,
    *,
    delinquent_only: bool = True,
) -> Iterator[dict[str, Any]]:
    """One dict per account with ``lo <= id < hi``: ``account_id``, ``snapshot`` (True when the
    day's account_snapshot gave dpd, balance and past due) and every feature of ``CATALOG`` as of
    the end of ``as_of`` (None where there is nothing to say: never paid, no stated means, no
    cause). With ``delinquent_only`` (the default), accounts with nothing past due are left out:
    the score is for accounts in collections."""
    rows = _base(conn, as_of, lo, hi)
    for row in rows.values():
        row.update(
            payments_90d=0, paid_share_90d=0.0, days_since_payment=None,
            sent_30d=0, sent_90d=0, delivered_30d=0, delivered_90d=0, right_party_30d=0,
            right_party_90d=0, wrong_party_90d=0, no_answer_90d=0,
            promises_made=0, promises_kept=0, promises_broken=0, promises_kept_90d=0,
            promises_broken_90d=0, arrangement_active=0, arrangements_completed=0,
            arrangements_broken=0, means_ratio=None, cause=None,
        )  # fmt: skip
    for account_id, count, amount, last in _payments(conn, as_of, lo, hi):
        if (found := rows.get(account_id)) is not None:
            found["payments_90d"] = int(count or 0)
            found["paid_share_90d"] = _ratio(Decimal(amount or 0), found["_past_due"]) or 0.0
            found["days_since_payment"] = (as_of - last).days if last else None
    counted = (
        (_events, EVENT_COUNTS),
        (_promises, PROMISE_COUNTS),
        (_arrangements, ARRANGEMENT_COUNTS),
    )
    for query, names in counted:
        for account_id, *counts in query(conn, as_of, lo, hi):
            if (found := rows.get(account_id)) is not None:
                found.update({n: int(c or 0) for n, c in zip(names, counts, strict=True)})
    for found in rows.values():
        found["arrangement_active"] = min(1, found["arrangement_active"])
    for account_id, cause in _latest_causes(conn, as_of, lo, hi):
        if (found := rows.get(account_id)) is not None:
            found["cause"] = cause  # ordered oldest first: the latest wins
    for account_id, income, expenses in _latest_means(conn, as_of, lo, hi):
        if (found := rows.get(account_id)) is not None:
            found["means_ratio"] = _ratio(Decimal(income) - Decimal(expenses), found["_past_due"])
    for row in rows.values():
        past_due = row.pop("_past_due")
        if delinquent_only and past_due <= 0:
            continue
        yield row


def label_rows(
    conn: Connection,
    as_of: dt.date,
    horizon_days: int,
    lo: int | None = None,
    hi: int | None = None,
) -> Iterator[dict[str, Any]]:
    """``{"account_id", "label"}`` for every account with ``lo <= id < hi``: label 1 when the
    account paid something after ``as_of`` and up to ``as_of + horizon_days`` that was not
    reversed by the end of that horizon, else 0."""
    a = Account.__table__.c
    p = Payment.__table__.c
    end = as_of + dt.timedelta(days=horizon_days)
    paid = set(
        conn.execute(
            select(p.account_id)
            .where(p.paid_on > as_of, _posted_by(end), *_range(p.account_id, lo, hi))
            .distinct()
        ).scalars()
    )
    for account_id in conn.execute(
        select(a.id).where(*_range(a.id, lo, hi)).order_by(a.id)
    ).scalars():
        yield {"account_id": account_id, "label": int(account_id in paid)}
