"""The facts a period's KPIs are counted from, read in a handful of set-based queries (account
snapshots, contacts and their attribution, payments, right-party contacts, promises,
arrangements, gate verdicts, causes), and how they group: the value of a dimension on a snapshot
and on a payment, and who entered each value. docs/kpis.md."""

from __future__ import annotations

import bisect
import datetime as dt
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Date, Engine, and_, bindparam, func, or_, select, text

from outreach.kernel.facts import as_date
from outreach.measurement.attribution import (
    UNATTRIBUTED,
    Attribution,
    Attributor,
    Touch,
    received_instant,
    touch_of,
)
from outreach.measurement.measurement_config import BUCKETS, MeasurementConfig
from outreach.storage.models import (
    Account,
    Arrangement,
    CallTask,
    Contact,
    ContactEvent,
    DelinquencyCause,
    Payment,
    PolicyDecision,
    Promise,
)

NONE_LABEL = "(none)"  # the value of a dimension an account has no value for
TIME_DIMENSIONS = ("day", "week", "month")
T = TypeVar("T")
CENT = Decimal("0.01")

# --- the period's facts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snap:
    as_of: dt.date
    account_id: int
    dpd: int
    bucket: str
    past_due: Decimal
    currency: str
    stage: str | None
    segment: str | None
    score_band: str | None
    jurisdiction: str | None
    ladder_version: str | None
    arm: str | None
    agency: str | None


@dataclass(frozen=True, slots=True)
class Paid:
    account_id: int
    paid_on: dt.date
    amount: Decimal
    currency: str
    attribution: Attribution


@dataclass(frozen=True, slots=True)
class Sent:
    """A contact made in the period (a call: one an agent completed), for counts and cost."""

    account_id: int
    day: dt.date
    channel: str
    stage: str
    arm: str | None


@dataclass
class Facts:
    date_from: dt.date
    date_to: dt.date
    snaps: dict[int, list[Snap]]  # account -> snapshots in the period, oldest first
    payments: list[Paid]
    sent: list[Sent]
    rpc: list[tuple[int, dt.date, str]]  # (account, day, channel) of right-party contacts
    promises_made: list[tuple[int, dt.date]]
    promises_settled: list[tuple[int, dt.date, str]]  # (account, settled_on, status)
    arrangements: list[tuple[int, dt.date, bool, dt.date | None, str]]
    # (account, offered on, accepted, ended on, state)
    decisions: list[tuple[dt.date, str, str]]  # (day, verdict, reasons) of blocks and defers
    causes: dict[int, str]  # account -> latest cause recorded by the period's end
    currencies: dict[int, str] = field(default_factory=dict)
    # entries() by dimension, worked out once per report.
    entered: dict[str, dict[str, Entry]] = field(default_factory=dict)


def _day(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def load_facts(engine: Engine, date_from: dt.date, date_to: dt.date,
               config: MeasurementConfig) -> Facts:  # fmt: skip
    """Everything the KPIs of ``date_from..date_to`` read, in a few set-based queries."""
    lo = dt.datetime.combine(date_from, dt.time())
    hi = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time())
    snaps: dict[int, list[Snap]] = defaultdict(list)
    with engine.connect() as conn:
        # The biggest read (accounts x days): raw values, each distinct day and amount converted
        # once (SQLite hands back text and numbers, PostgreSQL dates and Decimals).
        days: dict[Any, dt.date] = {}
        amounts: dict[Any, Decimal] = {}
        query = text(
            "SELECT as_of, account_id, dpd, bucket, past_due, currency, stage, segment, "
            "score_band, jurisdiction, ladder_version, arm, agency FROM account_snapshot "
            "WHERE as_of BETWEEN :lo AND :hi ORDER BY account_id, as_of"
        ).bindparams(bindparam("lo", type_=Date()), bindparam("hi", type_=Date()))
        for r in conn.execute(query, {"lo": date_from, "hi": date_to}):
            day = days.get(r[0])
            if day is None:
                day = days[r[0]] = as_date(r[0]) or date_from  # as_of is never null
            past_due = amounts.get(r[4])
            if past_due is None:
                past_due = amounts[r[4]] = Decimal(str(r[4])).quantize(CENT)
            snaps[r[1]].append(Snap(day, r[1], r[2], r[3], past_due, *r[5:]))

        a = Account.__table__.c
        currencies = dict(conn.execute(select(a.id, a.currency)).all())

        # Touches for attribution: from a window before the period to its end.
        c = Contact.__table__.c
        t = CallTask.__table__.c
        since = lo - dt.timedelta(days=config.attribution.window_days)
        touches: list[Touch] = []
        sent: list[Sent] = []
        for key, account_id, channel, stage, arm, sent_at, outcome, completed, task_state in (
            conn.execute(
                select(c.key, c.account_id, c.channel, c.stage, c.arm, c.sent_at, c.outcome,
                       t.completed_at, t.state)
                .select_from(Contact.__table__.outerjoin(CallTask.__table__, t.key == c.key))
                .where(c.state == "sent", c.sent_at >= since, c.sent_at < hi)
            )
        ):  # fmt: skip
            touch = touch_of(key, account_id, channel, stage, arm, sent_at, outcome, completed)
            if touch is not None:
                touches.append(touch)
            # A contact made: a call once an agent completed it, the rest once sent.
            at = (completed if task_state == "done" else None) if channel == "call" else sent_at
            if at is not None and lo <= at < hi:
                sent.append(Sent(account_id, at.date(), channel, stage, arm))
        attributor = Attributor(touches, config.attribution.window_days)

        p = Payment.__table__.c
        payments = [
            Paid(account_id, paid_on, Decimal(amount), currencies[account_id],
                 attributor.attribute(account_id, received_instant(paid_on, received_at)))
            for account_id, paid_on, amount, received_at in conn.execute(
                select(p.account_id, p.paid_on, p.amount, p.received_at).where(
                    p.paid_on.between(date_from, date_to),
                    or_(p.status != "reversed", p.reversed_on.is_(None),
                        p.reversed_on > date_to),
                ).order_by(p.id)
            )
        ]  # fmt: skip

        e = ContactEvent.__table__.c
        rpc = [
            (account_id, _day(at), channel)
            for account_id, at, channel in conn.execute(
                select(e.account_id, e.occurred_at, e.channel).where(
                    e.occurred_at >= lo, e.occurred_at < hi,
                    or_(e.outcome == "conversation", e.direction == "inbound"),
                )
            )
        ]  # fmt: skip

        pr = Promise.__table__.c
        made = func.coalesce(pr.made_at, pr.recorded_at)
        promises_made: list[tuple[int, dt.date]] = []
        promises_settled: list[tuple[int, dt.date, str]] = []
        for account_id, made_at, settled_on, status in conn.execute(
            select(pr.account_id, made, pr.settled_on, pr.status).where(
                or_(and_(made >= lo, made < hi), pr.settled_on.between(date_from, date_to))
            )
        ):
            made_on = _day(made_at) if made_at is not None else None
            if made_on is not None and date_from <= made_on <= date_to:
                promises_made.append((account_id, made_on))
            if settled_on is not None and date_from <= settled_on <= date_to and status in (
                "kept", "partly_kept", "broken"
            ):  # fmt: skip
                promises_settled.append((account_id, settled_on, status))

        ar = Arrangement.__table__.c
        arrangements = [
            (account_id, _day(created), accepted is not None, ended_on, state)
            for account_id, created, accepted, ended_on, state in conn.execute(
                select(ar.account_id, ar.created_at, ar.accepted_at, ar.ended_on, ar.state).where(
                    or_(and_(ar.created_at >= lo, ar.created_at < hi),
                        ar.ended_on.between(date_from, date_to))
                )
            )
        ]  # fmt: skip

        d = PolicyDecision.__table__.c
        decisions = [
            (as_of, verdict, reasons)
            for as_of, verdict, reasons in conn.execute(
                select(d.as_of, d.verdict, d.reasons).where(
                    d.as_of.between(date_from, date_to), d.verdict.in_(("block", "defer"))
                )
            )
        ]

        dc = DelinquencyCause.__table__.c
        causes: dict[int, str] = {}
        for account_id, cause in conn.execute(
            select(dc.account_id, dc.cause).where(dc.recorded_at < hi)
            .order_by(dc.account_id, dc.recorded_at, dc.id)
        ):  # fmt: skip
            causes[account_id] = cause
    return Facts(date_from, date_to, dict(snaps), payments, sent, rpc, promises_made,
                 promises_settled, arrangements, decisions, causes, currencies)  # fmt: skip


# --- dimensions ----------------------------------------------------------------------------------


def time_key(dimension: str, day: dt.date) -> str:
    """The label of ``day``'s day, ISO week (2026-W09) or month (2026-03)."""
    if dimension == "day":
        return day.isoformat()
    if dimension == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def _time_window(dimension: str, key: str, facts: Facts) -> tuple[dt.date, dt.date]:
    """The days of a day, week or month label, within the period."""
    if dimension == "day":
        lo = hi = dt.date.fromisoformat(key)
    elif dimension == "week":
        year, week = key.split("-W")
        lo = dt.date.fromisocalendar(int(year), int(week), 1)
        hi = lo + dt.timedelta(days=6)
    else:
        y, m = map(int, key.split("-"))
        lo = dt.date(y, m, 1)
        hi = dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1)
    return max(lo, facts.date_from), min(hi, facts.date_to)


def snap_key(dimension: str) -> Callable[[Snap], str]:
    """The value of ``dimension`` on a snapshot."""
    if dimension == "all":
        return lambda s: "all"
    if dimension in TIME_DIMENSIONS:
        memo: dict[dt.date, str] = {}  # a period has few days: label each once

        def of(s: Snap) -> str:
            label = memo.get(s.as_of)
            if label is None:
                label = memo[s.as_of] = time_key(dimension, s.as_of)
            return label

        return of
    attribute = operator.attrgetter(dimension)
    return lambda s: attribute(s) or NONE_LABEL


def sort_values(dimension: str, values: Iterable[str]) -> list[str]:
    last = (NONE_LABEL, UNATTRIBUTED)
    if dimension == "bucket":
        return sorted(values, key=lambda v: BUCKETS.index(v) if v in BUCKETS else len(BUCKETS))
    return sorted(values, key=lambda v: (v in last, v))


@dataclass
class Entry:
    """Who entered one value of a dimension: each account's first snapshot with that value, and
    the days its events count on."""

    lo: dt.date
    hi: dt.date
    accounts: dict[int, Snap] = field(default_factory=dict)


def entries(facts: Facts, dimension: str) -> dict[str, Entry]:
    """For each value of ``dimension``: the accounts that had it on a snapshot of the period,
    with the first such snapshot (the account's entry into it)."""
    if dimension in facts.entered:
        return facts.entered[dimension]
    key = snap_key(dimension)
    out: dict[str, Entry] = facts.entered.setdefault(dimension, {})
    for account_id, snaps in facts.snaps.items():
        seen: set[str] = set()
        for snap in snaps:
            value = key(snap)
            if value in seen:
                continue
            seen.add(value)
            entry = out.get(value)
            if entry is None:
                if dimension in TIME_DIMENSIONS:
                    lo, hi = _time_window(dimension, value, facts)
                else:
                    lo, hi = facts.date_from, facts.date_to
                entry = out[value] = Entry(lo, hi)
            entry.accounts[account_id] = snap
    return out


def payment_key(dimension: str, facts: Facts) -> Callable[[Paid], str]:
    """The value of ``dimension`` a payment counts under: its day, week or month; the stage and
    channel of the contact it is attributed to; else the account's snapshot in effect on the
    payment's day (the latest on or before it, or the period's first when it came before any)."""
    if dimension == "all":
        return lambda p: "all"
    if dimension in TIME_DIMENSIONS:
        return lambda p: time_key(dimension, p.paid_on)
    if dimension == "channel":
        return lambda p: p.attribution.channel
    if dimension == "stage":
        return lambda p: p.attribution.stage
    key = snap_key(dimension)

    days: dict[int, list[dt.date]] = {}

    def of(p: Paid) -> str:
        snaps = facts.snaps.get(p.account_id)
        if not snaps:
            return NONE_LABEL
        on = days.get(p.account_id)
        if on is None:
            on = days[p.account_id] = [s.as_of for s in snaps]
        return key(snaps[max(0, bisect.bisect_right(on, p.paid_on) - 1)])

    return of


@dataclass
class Index:
    """The period's events by account, each list sorted by day, so that "any in these days" and
    "those in these days" are two binary searches whatever the number of values."""

    sent: dict[int, list[dt.date]]
    rpc: dict[int, list[dt.date]]
    made: dict[int, list[dt.date]]
    cured: dict[int, list[dt.date]]  # days of the account's snapshots at 0 days past due
    settled: dict[int, tuple[list[dt.date], list[str]]]  # days, statuses
    offered: dict[int, tuple[list[dt.date], list[bool]]]  # days, accepted
    ended: dict[int, tuple[list[dt.date], list[str]]]  # days, completed | broken

    @staticmethod
    def any_in(days: list[dt.date] | None, lo: dt.date, hi: dt.date) -> bool:
        if not days:
            return False
        i = bisect.bisect_left(days, lo)
        return i < len(days) and days[i] <= hi

    @staticmethod
    def within(pair: tuple[list[dt.date], list[T]] | None, lo: dt.date, hi: dt.date) -> list[T]:
        if not pair:
            return []
        days, items = pair
        return items[bisect.bisect_left(days, lo) : bisect.bisect_right(days, hi)]


def _sorted_pairs(
    rows: Iterable[tuple[int, dt.date, T]],
) -> dict[int, tuple[list[dt.date], list[T]]]:
    by_account: dict[int, list[tuple[dt.date, T]]] = defaultdict(list)
    for account_id, day, item in rows:
        by_account[account_id].append((day, item))
    out = {}
    for account_id, pairs in by_account.items():
        pairs.sort(key=lambda p: p[0])
        out[account_id] = ([d for d, _ in pairs], [i for _, i in pairs])
    return out


def _sorted_days(rows: Iterable[tuple[int, dt.date]]) -> dict[int, list[dt.date]]:
    out: dict[int, list[dt.date]] = defaultdict(list)
    for account_id, day in rows:
        out[account_id].append(day)
    for days in out.values():
        days.sort()
    return dict(out)


def index(facts: Facts) -> Index:
    return Index(
        sent=_sorted_days((s.account_id, s.day) for s in facts.sent),
        rpc=_sorted_days((a, day) for a, day, _ in facts.rpc),
        made=_sorted_days(facts.promises_made),
        cured=_sorted_days(
            (a, s.as_of) for a, snaps in facts.snaps.items() for s in snaps if s.dpd == 0
        ),  # fmt: skip
        settled=_sorted_pairs(facts.promises_settled),
        offered=_sorted_pairs(
            (a, offered, accepted) for a, offered, accepted, _, _ in facts.arrangements
        ),  # fmt: skip
        ended=_sorted_pairs(
            (a, ended, state)
            for a, _, _, ended, state in facts.arrangements
            if ended is not None and state in ("completed", "broken")
        ),  # fmt: skip
    )
