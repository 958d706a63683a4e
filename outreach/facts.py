"""Set-based loading of what the gates need for a range of accounts, as of a cutoff instant.

One query per table per batch, never one per account. The planner, the dispatcher (at send time)
and ``outreach explain`` all read facts through here, so they judge from the same inputs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection, Date, DateTime

from outreach.bulk import bind, fetchall
from policies.model import AccountFacts

# Call history older than this cannot change a 7-day rule.
CALL_LOOKBACK = dt.timedelta(days=15)
COUNTED_STATES = ("sent", "sending", "uncertain")


@dataclass(slots=True)
class Destination:
    contact_point_id: int
    kind: str
    phone_type: str | None
    zones: tuple[str, ...]
    valid: bool
    is_workplace: bool
    sms_consent: bool


@dataclass(slots=True)
class AccountRecord:
    """An account with everything the planner reads, loaded for one batch."""

    id: int
    account_ref: str
    product: str
    balance: Decimal
    past_due: Decimal
    due_date: dt.date | None
    segment: str | None
    country: str
    region: str | None
    language: str
    address_zones: tuple[str, ...]
    destinations: list[Destination] = field(default_factory=list)
    holds: set[str] = field(default_factory=set)
    opt_outs: set[tuple[str, str]] = field(default_factory=set)
    call_attempts: list[tuple[dt.datetime, str]] = field(default_factory=list)
    last_conversation: dt.datetime | None = None
    # (stage, action) -> (times counted, last plan date) in the current delinquency episode.
    history: dict[tuple[str, str], tuple[int, dt.date]] = field(default_factory=dict)

    def gate_facts(self) -> AccountFacts:
        return AccountFacts(
            account_id=self.id,
            country=self.country,
            region=self.region,
            past_due=float(self.past_due),
            holds=frozenset(self.holds),
            opt_outs=frozenset(self.opt_outs),
            address_zones=self.address_zones,
            call_attempts=tuple(self.call_attempts),
            last_conversation=self.last_conversation,
        )


def _zones(value: str | None) -> tuple[str, ...]:
    return tuple(value.split()) if value else ()


def as_date(value: object) -> dt.date | None:
    """A date from the driver: a date already (PostgreSQL) or ISO text (SQLite)."""
    if value is None or isinstance(value, dt.date):
        return value  # type: ignore[return-value]
    return dt.date.fromisoformat(str(value))


def as_instant(value: object) -> dt.datetime:
    """A naive-UTC instant from the driver: a datetime already or ISO text (SQLite)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    return dt.datetime.fromisoformat(str(value))


def _money(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def load_accounts(
    conn: Connection,
    lo: int,
    hi: int,
    *,
    day: dt.date,
    cutoff: dt.datetime,
    history_before: dt.date | None = None,
) -> dict[int, AccountRecord]:
    """Accounts ``lo..hi`` with their facts known before ``cutoff`` (naive UTC).

    ``history_before``: count ledger rows planned before this date (the planner passes its own
    day, so that a rerun of the same day sees the same history as the first run).
    """
    d = bind(conn, Date(), day)
    c = bind(conn, DateTime(), cutoff)
    since = bind(conn, DateTime(), cutoff - CALL_LOOKBACK)
    before = bind(conn, Date(), history_before or day)
    accounts: dict[int, AccountRecord] = {}
    for r in fetchall(
        conn,
        "SELECT a.id, a.account_ref, a.product, a.balance, a.amount_past_due, a.due_date, "
        "a.segment, a.jurisdiction_country, a.jurisdiction_region, p.language, p.time_zones "
        "FROM account a JOIN person p ON p.id = a.person_id "
        "WHERE a.id BETWEEN ? AND ? ORDER BY a.id",
        (lo, hi),
    ):
        accounts[r[0]] = AccountRecord(
            id=r[0],
            account_ref=r[1],
            product=r[2],
            balance=_money(r[3]),
            past_due=_money(r[4]),
            due_date=as_date(r[5]),
            segment=r[6],
            country=r[7],
            region=r[8],
            language=r[9] or "en",
            address_zones=_zones(r[10]),
        )
    if not accounts:
        return accounts

    for r in fetchall(
        conn,
        "SELECT a.id, cp.id, cp.kind, cp.phone_type, cp.time_zones, cp.valid, cp.is_workplace, "
        "cp.sms_consent FROM contact_point cp JOIN account a ON a.person_id = cp.person_id "
        "WHERE a.id BETWEEN ? AND ? ORDER BY a.id, cp.priority, cp.id",
        (lo, hi),
    ):
        accounts[r[0]].destinations.append(
            Destination(
                contact_point_id=r[1],
                kind=r[2],
                phone_type=r[3],
                zones=_zones(r[4]),
                valid=bool(r[5]),
                is_workplace=bool(r[6]),
                sms_consent=bool(r[7]),
            )
        )

    for r in fetchall(
        conn,
        "SELECT account_id, kind FROM account_hold WHERE account_id BETWEEN ? AND ? "
        "AND started_on <= ? AND (ended_on IS NULL OR ended_on > ?)",
        (lo, hi, d, d),
    ):
        accounts[r[0]].holds.add(r[1])

    for r in fetchall(
        conn,
        "SELECT a.id, o.channel, o.scope FROM opt_out o JOIN account a ON a.person_id = o.person_id "
        "WHERE a.id BETWEEN ? AND ? AND o.recorded_at < ?",
        (lo, hi, c),
    ):
        accounts[r[0]].opt_outs.add((r[1], r[2]))

    for r in fetchall(
        conn,
        "SELECT p.account_id, SUM(p.amount) FROM payment p JOIN account a ON a.id = p.account_id "
        "WHERE p.account_id BETWEEN ? AND ? AND p.paid_on > a.balance_as_of "
        "AND p.paid_on <= ? GROUP BY p.account_id",
        (lo, hi, d),
    ):
        acc = accounts[r[0]]
        paid = _money(r[1])
        acc.past_due = max(Decimal(0), acc.past_due - paid)
        acc.balance = max(Decimal(0), acc.balance - paid)

    for r in fetchall(
        conn,
        "SELECT account_id, occurred_at, outcome, direction FROM contact_event "
        "WHERE account_id BETWEEN ? AND ? AND channel = 'call' "
        "AND occurred_at >= ? AND occurred_at < ? ORDER BY account_id, occurred_at",
        (lo, hi, since, c),
    ):
        acc = accounts[r[0]]
        when = as_instant(r[1])
        if r[3] == "outbound":
            acc.call_attempts.append((when, r[2]))
        if r[2] == "conversation":
            acc.last_conversation = when

    for r in fetchall(
        conn,
        "SELECT c.account_id, c.stage, c.action, COUNT(*), MAX(c.plan_date) FROM contact c "
        "JOIN account a ON a.id = c.account_id "
        "WHERE c.account_id BETWEEN ? AND ? AND c.plan_date < ? "
        "AND c.state IN ('sent', 'sending', 'uncertain') AND c.episode = a.due_date "
        "GROUP BY c.account_id, c.stage, c.action",
        (lo, hi, before),
    ):
        accounts[r[0]].history[(r[1], r[2])] = (int(r[3]), as_date(r[4]))  # type: ignore[assignment]
    return accounts
