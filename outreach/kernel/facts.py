"""Set-based loading of what the gates need for a range of accounts, as of a cutoff instant.

One query per table per batch, never one per account. The planner, the dispatcher (at send time)
and ``outreach explain`` all read facts through here, so they judge from the same inputs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Date, DateTime, bindparam, text

from outreach.storage.bulk import bind
from outreach.storage.bulk import fetchall as _fetchall
from policies.model import SELF, AccountFacts, HoldPeriod, PastContact, TimeBlock
from policies.timeblocks import parse as parse_times

# Contact history older than this cannot change any frequency rule (the longest reads 31 days).
HISTORY_LOOKBACK = dt.timedelta(days=31)
# Holds that ended longer ago than this are left out of hold_periods: no rule reads that far
# back (the longest-lived, a mental-health crisis moratorium, runs 30 days past its end).
HOLD_LOOKBACK = dt.timedelta(days=120)
# Broken promises and ended arrangements older than this no longer steer the ladder or the
# promise limits (outreach.resolution reads its own window from config/arrangements.yaml).
RESOLUTION_LOOKBACK = dt.timedelta(days=180)
COUNTED_STATES = ("sent", "sending", "uncertain")
# The ledger's stage of the ladder's resolution actions (reminders, notices and statements tied
# to a promise, an instalment or a verification: outreach.planning.ladder ``resolution_actions``).
LOOP_STAGE = "resolution"
# Loop actions taken longer ago than this cannot be due again (the longest window is 60 days
# after an anchor that is itself at most 60 days after its date).
LOOP_TAKEN_LOOKBACK = dt.timedelta(days=130)


@dataclass(slots=True)
class Destination:
    contact_point_id: int
    kind: str
    phone_type: str | None
    zones: tuple[str, ...]
    valid: bool
    is_workplace: bool
    sms_consent: bool
    call_consent: bool
    email_consent: bool
    used_by_consumer: bool  # the consumer used it to reach the lender, or agreed to its use
    no_calls_at_work: bool  # the employer forbids collection calls at this number
    relation: str  # self | emergency_contact | estate_representative


@dataclass(frozen=True, slots=True)
class PromiseState:
    """An open promise to pay that pauses collection (core.promise_open) until ``pause_until``."""

    ref: str
    amount: Decimal
    due_on: dt.date
    pause_until: dt.date


@dataclass(frozen=True, slots=True)
class ArrangementState:
    """The account's current arrangement (offered, pending approval or active), else the last
    one that ended (broken, completed or cancelled) within RESOLUTION_LOOKBACK."""

    ref: str
    kind: str  # instalment | settlement
    state: str  # offered | pending_approval | active | completed | broken | cancelled
    kept: bool
    missed: int
    # The earliest instalment not yet paid, and what is left of it (None: none left).
    next_due_on: dt.date | None
    next_amount: Decimal | None
    ended_on: dt.date | None


@dataclass(slots=True)
class LoopAnchors:
    """The dates the ladder's resolution actions are tied to, on the day: the active
    arrangement's first instalment date, its next instalment not yet due and the latest one
    missed (each with what is left of it), the open verification task, and the loop actions
    already taken, as (action, slot)."""

    first_due_on: dt.date | None = None
    upcoming_due_on: dt.date | None = None
    upcoming_amount: Decimal | None = None
    missed_due_on: dt.date | None = None
    missed_amount: Decimal | None = None
    verification_task: int | None = None
    verification_opened_on: dt.date | None = None
    taken: set[tuple[str, int]] = field(default_factory=set)


@dataclass(slots=True)
class AccountRecord:
    """An account with everything the planner reads, loaded for one batch."""

    id: int
    account_ref: str
    product: str
    balance: Decimal
    past_due: Decimal
    # The oldest unpaid due date on the day: days past due derive from it. Payments since the
    # snapshot move it (payments_move_due_date); ``episode_due_date`` then keeps the imported
    # one, which still names the delinquency episode (ledger keys, the episode's history).
    due_date: dt.date | None
    segment: str | None
    country: str
    region: str | None
    language: str
    address_zones: tuple[str, ...]
    city: str | None = None
    inconvenient_times: tuple[TimeBlock, ...] = ()
    validation_notice_sent_on: dt.date | None = None
    # The earliest of the imported date and the first outbound contact_event (any age).
    initial_communication_on: dt.date | None = None
    limitation_date: dt.date | None = None
    scra_checked_on: dt.date | None = None
    scra_active_duty: bool = False
    final_notice_sent_on: dt.date | None = None
    # The Regulation F itemization as imported (None: not imported), and the payments since
    # its date up to the judged day.
    itemization_date: dt.date | None = None
    itemization_kind: str | None = None
    itemization_amount: Decimal | None = None
    interest_since_itemization: Decimal | None = None
    fees_since_itemization: Decimal | None = None
    payments_since_itemization: Decimal = Decimal(0)
    destinations: list[Destination] = field(default_factory=list)
    holds: set[str] = field(default_factory=set)  # kinds active on the day
    # Active holds and those that ended within HOLD_LOOKBACK, by start date.
    hold_periods: list[HoldPeriod] = field(default_factory=list)
    opt_outs: set[tuple[str, str]] = field(default_factory=set)
    # Outbound contacts on every channel in the HISTORY_LOOKBACK before the cutoff, oldest first.
    history: list[PastContact] = field(default_factory=list)
    last_conversation: dt.datetime | None = None
    # (stage, action) -> (times counted, last plan date) in the current delinquency episode.
    ladder_history: dict[tuple[str, str], tuple[int, dt.date]] = field(default_factory=dict)
    # Outbound contacts a previous system made in the current episode (imported contact_event
    # rows, on or after the due date), as (UTC day, channel), oldest first: the planner counts
    # them toward the ladder's cadence like its own (outreach.planning.history.action_history).
    imported_contacts: list[tuple[dt.date, str]] = field(default_factory=list)
    # (stage, action) of our own contacts planned on or after ``history_before`` and taken (a
    # rerun of the same day): their notice dates must not change that day's plan.
    taken_since: set[tuple[str, str]] = field(default_factory=set)
    person_id: int | None = None
    # The same person's other accounts' contacts (AccountFacts.household_history), filled by
    # outreach.planning.household for a person with several accounts; empty otherwise.
    household: list[PastContact] = field(default_factory=list)
    householding: bool = False  # core.household_one_per_day in force (config/policy.yaml)
    # The resolution loop (outreach.resolution): the open promise that pauses collection, the
    # promises broken within RESOLUTION_LOOKBACK (and the latest one's day), the arrangement.
    open_promise: PromiseState | None = None
    broken_promises: int = 0
    last_broken_promise_on: dt.date | None = None
    arrangement: ArrangementState | None = None
    # Which promise or arrangement a derived hold stands for: the gate's evidence names it.
    hold_refs: dict[str, str] = field(default_factory=dict)
    # The imported due date when payments since the snapshot moved ``due_date`` (else None).
    episode_due_date: dt.date | None = None
    # The account's latest score band on or before the day from the active score model, and
    # that model's version (``_score_band``); None when no model is active or it has no score.
    score_band: str | None = None
    score_model: str | None = None

    @property
    def episode(self) -> dt.date | None:
        """The due date that began the delinquency episode: what names its contacts."""
        return self.episode_due_date or self.due_date
    # What the ladder's resolution actions are anchored on (``_loop_anchors``).
    loop: LoopAnchors = field(default_factory=LoopAnchors)

    def gate_facts(self, role: str) -> AccountFacts:
        """The gate's view of this account, for a system collecting as ``role``
        (policies.model.ROLES)."""
        reachable = sum(
            1
            for d in self.destinations
            if d.valid and d.relation == SELF and d.kind in ("phone", "email")
        )
        return AccountFacts(
            account_id=self.id,
            country=self.country,
            region=self.region,
            past_due=float(self.past_due),
            holds=frozenset(self.holds),
            opt_outs=frozenset(self.opt_outs),
            address_zones=self.address_zones,
            history=tuple(self.history),
            last_conversation=self.last_conversation,
            city=self.city,
            product=self.product,
            role=role,
            hold_periods=tuple(self.hold_periods),
            inconvenient_times=self.inconvenient_times,
            initial_communication=self.initial_communication_on,
            validation_notice_sent=self.validation_notice_sent_on,
            limitation_date=self.limitation_date,
            scra_checked_on=self.scra_checked_on,
            scra_active_duty=self.scra_active_duty,
            reachable_destinations=reachable,
            balance=float(self.balance),
            final_notice_sent=self.final_notice_sent_on,
            itemization_issue=self.itemization_issue(),
            household_history=tuple(self.household),
            householding=self.householding,
            hold_refs=tuple(sorted(self.hold_refs.items())),
        )

    def itemization_issue(self) -> str | None:
        """Why the validation notice's itemization cannot be stated correctly, or None.

        ``missing``: no reference date and amount imported (we do not guess one: the
        snapshot date is none of the dates 1006.34(b)(3) allows, and a charge-off balance
        cannot be rebuilt without the interest and fees since). ``does_not_add_up``: the
        amount then, plus interest and fees since, less the payments since, is not the
        current amount, so the notice would print figures that contradict each other."""
        if self.itemization_date is None or self.itemization_amount is None:
            return "missing"
        then = (
            self.itemization_amount
            + (self.interest_since_itemization or Decimal(0))
            + (self.fees_since_itemization or Decimal(0))
            - self.payments_since_itemization
        )
        return None if then == self.balance else "does_not_add_up"


def _months_between(start: dt.date, end: dt.date) -> int:
    """Whole calendar months from ``start`` to ``end`` (01-31 to 04-30 is three)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - 1 if _add_months(start, months) > end else months


def _add_months(day: dt.date, months: int) -> dt.date:
    """``day`` so many calendar months later (the 31st becomes the month's last day)."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def payments_move_due_date(
    due_date: dt.date | None, balance_as_of: dt.date | None, past_due: Decimal, paid: Decimal
) -> dt.date | None:
    """The oldest unpaid due date once ``paid`` is taken off ``past_due`` (as of the snapshot).

    The system of record sends the arrears as one amount, not per billing cycle, so they are
    aged in equal monthly cycles: n = the whole months from the due date to the snapshot (at
    least 1), each cycle past_due / n; each cycle paid in full moves the due date one calendar
    month later, oldest first. Paid in full, nothing is past due (the account is cured) and the
    date stays. An approximation, documented in docs/resolution.md (Payments)."""
    if due_date is None or balance_as_of is None or past_due <= 0 or paid <= 0:
        return due_date
    if paid >= past_due:
        return due_date
    cycles = max(1, _months_between(due_date, balance_as_of))
    return _add_months(due_date, int(paid * cycles // past_due))


def _zones(value: str | None) -> tuple[str, ...]:
    return tuple(value.split()) if value else ()


def account_ids_by_ref(conn: Connection, refs: Collection[str]) -> dict[str, int]:
    """The ids of the accounts whose refs are given, by ref; an unknown ref is simply absent."""
    if not refs:
        return {}
    rows = conn.execute(
        text("SELECT account_ref, id FROM account WHERE account_ref IN :refs").bindparams(
            bindparam("refs", expanding=True)
        ),
        {"refs": sorted(refs)},
    ).all()
    return {ref: int(account_id) for ref, account_id in rows}


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


def _known(day: dt.date | None, cutoff: dt.datetime) -> dt.date | None:
    """A recorded day as known at ``cutoff``: a day that begins after it (a notice the
    dispatcher sent today, seen by a rerun of today's plan) is not known yet, so a plan does not
    change with what its own day's dispatch recorded."""
    if day is None or dt.datetime(day.year, day.month, day.day) >= cutoff:
        return None
    return day


def _money(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


@lru_cache(maxsize=1024)
def _time_blocks(text: str | None) -> tuple[TimeBlock, ...]:
    # Stored text is canonical (the importer normalizes it) and a few texts recur across many
    # people: parse each once. A stored text that no longer parses raises: better a failed
    # batch than contacting someone at a time they said is inconvenient.
    return parse_times(text)


_RANGE = re.compile(r"(\b[\w.]+) BETWEEN \? AND \?")


def _restrict(
    sql: str, params: Sequence[Any], only: Sequence[int] | None
) -> tuple[str, Sequence[Any]]:
    """``sql`` with each ``col BETWEEN ? AND ?`` narrowed to ``col IN (only)`` as well (the
    range kept for the index), and ``only``'s values placed after each range's bounds."""
    if only is None:
        return sql, params
    marks = ", ".join("?" * len(only))
    out = list(params)
    added = 0
    for match in _RANGE.finditer(sql):
        at = sql.count("?", 0, match.start()) + 2 + added
        out[at:at] = only
        added += len(only)
    return _RANGE.sub(lambda m: f"{m.group(0)} AND {m.group(1)} IN ({marks})", sql), out


def load_accounts(
    conn: Connection,
    lo: int,
    hi: int,
    *,
    day: dt.date,
    cutoff: dt.datetime,
    history_before: dt.date | None = None,
    only: Collection[int] | None = None,
) -> dict[int, AccountRecord]:
    """Accounts ``lo..hi`` with their facts known before ``cutoff`` (naive UTC).

    ``history_before``: count ledger rows planned before this date (the planner passes its own
    day, so that a rerun of the same day sees the same history as the first run).

    ``only``: of the range, just these account ids. A dispatch group's 25 contacts can span
    thousands of accounts (they are due at the same instant, not neighbours); without it each
    group would read every account between its first and last.
    """
    if only is not None:
        only = sorted(set(only))
        if not only:
            return {}
        lo, hi = max(lo, only[0]), min(hi, only[-1])

    def fetchall(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return _fetchall(conn, *_restrict(sql, params, only))

    d = bind(conn, Date(), day)
    c = bind(conn, DateTime(), cutoff)
    since = bind(conn, DateTime(), cutoff - HISTORY_LOOKBACK)
    hold_since = bind(conn, Date(), day - HOLD_LOOKBACK)
    before = bind(conn, Date(), history_before or day)
    accounts: dict[int, AccountRecord] = {}
    for r in fetchall(
        conn,
        "SELECT a.id, a.account_ref, a.product, a.balance, a.amount_past_due, a.due_date, "
        "a.segment, a.jurisdiction_country, a.jurisdiction_region, p.language, p.time_zones, "
        "p.city, p.inconvenient_times, a.validation_notice_sent_on, a.initial_communication_on, "
        "a.limitation_date, a.scra_checked_on, a.scra_active_duty, a.final_notice_sent_on, "
        "a.itemization_date, a.itemization_kind, a.itemization_amount, "
        "a.interest_since_itemization, a.fees_since_itemization, a.person_id "
        "FROM account a JOIN person p ON p.id = a.person_id "
        "WHERE a.id BETWEEN ? AND ? ORDER BY a.id",
        (lo, hi),
    ):
        try:
            blocks = _time_blocks(r[12])
        except ValueError as exc:
            raise ValueError(f"account {r[0]}: stored inconvenient_times: {exc}") from exc
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
            city=r[11],
            inconvenient_times=blocks,
            validation_notice_sent_on=_known(as_date(r[13]), cutoff),
            initial_communication_on=_known(as_date(r[14]), cutoff),
            limitation_date=as_date(r[15]),
            scra_checked_on=_known(as_date(r[16]), cutoff),
            scra_active_duty=bool(r[17]),
            final_notice_sent_on=_known(as_date(r[18]), cutoff),
            itemization_date=as_date(r[19]),
            itemization_kind=r[20],
            itemization_amount=None if r[21] is None else _money(r[21]),
            interest_since_itemization=None if r[22] is None else _money(r[22]),
            fees_since_itemization=None if r[23] is None else _money(r[23]),
            person_id=r[24],
        )
    if not accounts:
        return accounts

    for r in fetchall(
        conn,
        "SELECT a.id, cp.id, cp.kind, cp.phone_type, cp.time_zones, cp.valid, cp.is_workplace, "
        "cp.sms_consent, cp.call_consent, cp.email_consent, cp.used_by_consumer, "
        "cp.no_calls_at_work, cp.relation "
        "FROM contact_point cp JOIN account a ON a.person_id = cp.person_id "
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
                call_consent=bool(r[8]),
                email_consent=bool(r[9]),
                used_by_consumer=bool(r[10]),
                no_calls_at_work=bool(r[11]),
                relation=r[12] or SELF,
            )
        )

    # Active holds, and those that ended lately (some rules outlive a hold): one query, the
    # active kinds picked out here.
    for r in fetchall(
        conn,
        "SELECT account_id, kind, started_on, ended_on FROM account_hold "
        "WHERE account_id BETWEEN ? AND ? AND started_on <= ? "
        "AND (ended_on IS NULL OR ended_on > ?) ORDER BY account_id, started_on, kind, id",
        (lo, hi, d, hold_since),
    ):
        acc = accounts[r[0]]
        started_on, ended_on = as_date(r[2]), as_date(r[3])
        acc.hold_periods.append(HoldPeriod(r[1], started_on, ended_on))  # type: ignore[arg-type]
        if ended_on is None or ended_on > day:
            acc.holds.add(r[1])

    # An open placement with an agency and a referral to counsel act as holds on every
    # channel (core.placed_with_agency, core.referred_to_counsel), from the day they are known.
    for r in fetchall(
        conn,
        "SELECT account_id, 'agency_placement', placed_on FROM placement "
        "WHERE account_id BETWEEN ? AND ? AND state = 'open' "
        "UNION ALL SELECT account_id, 'legal_referral', referred_on FROM legal_case "
        "WHERE account_id BETWEEN ? AND ? AND status = 'referred'",
        (lo, hi, lo, hi),
    ):
        if _known(as_date(r[2]), cutoff) is not None:
            accounts[r[0]].holds.add(r[1])

    _resolution(conn, fetchall, accounts, lo, hi, day, c)
    _score_band(conn, fetchall, accounts, lo, hi, d)
    _loop_anchors(conn, fetchall, accounts, lo, hi, day, before)

    for r in fetchall(
        conn,
        "SELECT a.id, o.channel, o.scope FROM opt_out o JOIN account a ON a.person_id = o.person_id "
        "WHERE a.id BETWEEN ? AND ? AND o.recorded_at < ?",
        (lo, hi, c),
    ):
        accounts[r[0]].opt_outs.add((r[1], r[2]))

    # Payments since the snapshot reduce what is owed and what is past due, and move the oldest
    # unpaid due date by the cycles they pay (payments_move_due_date); a payment reversed by the
    # day no longer counts.
    for r in fetchall(
        conn,
        "SELECT p.account_id, SUM(p.amount), a.balance_as_of FROM payment p "
        "JOIN account a ON a.id = p.account_id "
        "WHERE p.account_id BETWEEN ? AND ? AND p.paid_on > a.balance_as_of "
        "AND p.paid_on <= ? AND NOT (p.status = 'reversed' AND p.reversed_on <= ?) "
        "GROUP BY p.account_id, a.balance_as_of",
        (lo, hi, d, d),
    ):
        acc = accounts[r[0]]
        paid = _money(r[1])
        moved = payments_move_due_date(acc.due_date, as_date(r[2]), acc.past_due, paid)
        if moved != acc.due_date:
            acc.episode_due_date = acc.due_date
            acc.due_date = moved
        acc.past_due = max(Decimal(0), acc.past_due - paid)
        acc.balance = max(Decimal(0), acc.balance - paid)

    # Payments and credits since the itemization date (12 CFR 1006.34(c)(2)(viii)), for the
    # accounts that have one.
    for r in fetchall(
        conn,
        "SELECT p.account_id, SUM(p.amount) FROM payment p JOIN account a ON a.id = p.account_id "
        "WHERE p.account_id BETWEEN ? AND ? AND a.itemization_date IS NOT NULL "
        "AND p.paid_on > a.itemization_date AND p.paid_on <= ? "
        "AND NOT (p.status = 'reversed' AND p.reversed_on <= ?) GROUP BY p.account_id",
        (lo, hi, d, d),
    ):
        accounts[r[0]].payments_since_itemization = _money(r[1])

    # Outbound contacts on every channel, and conversations either way (an inbound call the
    # consumer made counts as talking to them), in the lookback window.
    for r in fetchall(
        conn,
        "SELECT e.account_id, e.occurred_at, e.channel, e.outcome, e.direction, "
        "e.contact_point_id, cp.phone_type, cp.is_workplace "
        "FROM contact_event e LEFT JOIN contact_point cp ON cp.id = e.contact_point_id "
        "WHERE e.account_id BETWEEN ? AND ? AND e.occurred_at >= ? AND e.occurred_at < ? "
        "AND (e.direction = 'outbound' OR (e.channel = 'call' AND e.outcome = 'conversation')) "
        "ORDER BY e.account_id, e.occurred_at, e.id",
        (lo, hi, since, c),
    ):
        acc = accounts[r[0]]
        when = as_instant(r[1])
        if r[4] == "outbound":
            acc.history.append(
                PastContact(
                    at=when,
                    channel=r[2],
                    outcome=r[3],
                    contact_point_id=r[5],
                    phone_type=r[6],
                    is_workplace=bool(r[7]),
                )
            )
        if r[2] == "call" and r[3] == "conversation":
            acc.last_conversation = when

    # The first communication about the debt: the first outbound contact on record, at any age,
    # unless the imported date (a previous system's) is earlier.
    for r in fetchall(
        conn,
        "SELECT account_id, MIN(occurred_at) FROM contact_event "
        "WHERE account_id BETWEEN ? AND ? AND direction = 'outbound' AND occurred_at < ? "
        "GROUP BY account_id",
        (lo, hi, c),
    ):
        acc = accounts[r[0]]
        first = as_instant(r[1]).date()
        if acc.initial_communication_on is None or first < acc.initial_communication_on:
            acc.initial_communication_on = first

    # A previous system's outbound contacts in this episode (ours are in the ledger, below).
    # A failed or bounced message reached no one, as a failed send of ours is not counted.
    for r in fetchall(
        conn,
        "SELECT e.account_id, e.occurred_at, e.channel FROM contact_event e "
        "JOIN account a ON a.id = e.account_id "
        "WHERE e.account_id BETWEEN ? AND ? AND e.source = 'import' "
        "AND e.direction = 'outbound' AND e.outcome NOT IN ('failed', 'bounced') "
        "AND e.occurred_at >= a.due_date AND e.occurred_at < ? "
        "ORDER BY e.account_id, e.occurred_at, e.id",
        (lo, hi, c),
    ):
        accounts[r[0]].imported_contacts.append((as_instant(r[1]).date(), r[2]))

    for r in fetchall(
        conn,
        "SELECT c.account_id, c.stage, c.action, COUNT(*), MAX(c.plan_date) FROM contact c "
        "JOIN account a ON a.id = c.account_id "
        "WHERE c.account_id BETWEEN ? AND ? AND c.plan_date < ? "
        "AND c.state IN ('sent', 'sending', 'uncertain') AND c.episode = a.due_date "
        "GROUP BY c.account_id, c.stage, c.action",
        (lo, hi, before),
    ):
        accounts[r[0]].ladder_history[(r[1], r[2])] = (int(r[3]), as_date(r[4]))  # type: ignore[assignment]

    # A notice our dispatch sent for this plan day records its date, which may fall before the
    # day (an evening window): the planner must not count that date as history for the day.
    for r in fetchall(
        conn,
        "SELECT DISTINCT c.account_id, c.stage, c.action FROM contact c "
        "WHERE c.account_id BETWEEN ? AND ? AND c.plan_date >= ? "
        "AND c.state IN ('sent', 'sending', 'uncertain')",
        (lo, hi, before),
    ):
        accounts[r[0]].taken_since.add((r[1], r[2]))
    return accounts


def _score_band(
    conn: Connection, fetchall: Any, accounts: dict[int, AccountRecord], lo: int, hi: int,
    day_param: Any,
) -> None:
    """The band of each account's latest score on or before the day by the active score model
    (``account_score``, written by the day's scoring before its plan): a fact the ladder's stage
    entry may read (``score_band``), never one a gate reads. No active model: nothing is read."""
    active = conn.execute(text("SELECT version FROM score_model WHERE state = 'active'")).scalar()
    if active is None:
        return
    for r in fetchall(
        conn,
        "SELECT s.account_id, s.band FROM account_score s "
        "WHERE s.account_id BETWEEN ? AND ? AND s.model_version = ? AND s.as_of = ("
        "SELECT MAX(t.as_of) FROM account_score t WHERE t.account_id = s.account_id "
        "AND t.model_version = ? AND t.as_of <= ?)",
        (lo, hi, active, active, day_param),
    ):
        acc = accounts.get(r[0])
        if acc is not None:
            acc.score_band = r[1]
            acc.score_model = active


def _resolution(
    conn: Connection,
    fetchall: Any,
    accounts: dict[int, AccountRecord],
    lo: int,
    hi: int,
    day: dt.date,
    cutoff_param: Any,
) -> None:
    """Promises and arrangements as outreach.resolution keeps them: an open promise that pauses
    is the hold ``promise_open`` until its due date plus grace days; an active arrangement that
    is kept is the hold ``instalment_plan``; a completed settlement is ``settlement_completed``;
    an open verification task is ``verification_due`` (the verification letter may go).
    Each derived hold names its promise or arrangement (``hold_refs``)."""
    d = bind(conn, Date(), day)
    since = bind(conn, Date(), day - RESOLUTION_LOOKBACK)
    for r in fetchall(
        conn,
        "SELECT account_id, promise_ref, amount, due_on, pause_until, status, settled_on, id "
        "FROM promise WHERE account_id BETWEEN ? AND ? AND recorded_at < ? "
        "AND ((status = 'open' AND pauses = ? AND pause_until >= ?) "
        "OR (status = 'broken' AND settled_on >= ?)) "
        "ORDER BY account_id, due_on, id",
        (lo, hi, cutoff_param, True, d, since),
    ):
        acc = accounts[r[0]]
        if r[5] == "open":
            if acc.open_promise is None:
                ref = r[1] or f"promise-{r[7]}"
                acc.open_promise = PromiseState(ref, _money(r[2]), as_date(r[3]),  # type: ignore[arg-type]
                                                as_date(r[4]))  # type: ignore[arg-type]
                acc.holds.add("promise_open")
                acc.hold_refs["promise_open"] = ref
        else:
            acc.broken_promises += 1
            settled = as_date(r[6])
            if settled is not None and (acc.last_broken_promise_on is None
                                        or settled > acc.last_broken_promise_on):
                acc.last_broken_promise_on = settled

    # The current arrangement, else the latest that ended in the lookback: by id, the last wins.
    rows = fetchall(
        conn,
        "SELECT ar.account_id, ar.arrangement_ref, ar.kind, ar.state, ar.kept, ar.missed, "
        "ar.ended_on, (SELECT MIN(i.due_on) FROM arrangement_instalment i "
        "WHERE i.arrangement_id = ar.id AND i.state IN ('due', 'partly_paid', 'missed')), ar.id "
        "FROM arrangement ar WHERE ar.account_id BETWEEN ? AND ? "
        "AND (ar.state IN ('offered', 'pending_approval', 'active') OR ar.ended_on >= ?) "
        "ORDER BY ar.account_id, ar.id",
        (lo, hi, since),
    )
    # A dispute waiting for its verification (outreach.resolution.disputes): the verification
    # letter may go (core.verification_not_due); the task names it.
    for r in fetchall(
        conn,
        "SELECT t.account_id, t.id FROM verification_task t "
        "LEFT JOIN account_hold h ON h.id = t.hold_id "
        "WHERE t.account_id BETWEEN ? AND ? AND t.state = 'open' "
        "AND (h.started_on IS NULL OR h.started_on <= ?) ORDER BY t.account_id, t.id",
        (lo, hi, d),
    ):
        acc = accounts.get(r[0])  # type: ignore[assignment]
        if acc is not None and "verification_due" not in acc.holds:
            acc.holds.add("verification_due")
            acc.hold_refs["verification_due"] = f"verification-{r[1]}"

    nexts: dict[int, int] = {}
    for r in rows:
        acc = accounts[r[0]]
        current = acc.arrangement
        if current is not None and current.state in ("offered", "pending_approval", "active") \
                and r[3] not in ("offered", "pending_approval", "active"):
            continue  # an ended arrangement does not hide the one in force
        acc.arrangement = ArrangementState(
            ref=r[1], kind=r[2], state=r[3], kept=bool(r[4]), missed=int(r[5] or 0),
            next_due_on=as_date(r[7]), next_amount=None, ended_on=as_date(r[6]),
        )
        nexts[r[8]] = r[0]
    for acc in accounts.values():
        a = acc.arrangement
        if a is None:
            continue
        if a.state == "active" and a.kept:
            acc.holds.add("instalment_plan")
            acc.hold_refs["instalment_plan"] = a.ref
        elif a.state == "completed" and a.kind == "settlement":
            acc.holds.add("settlement_completed")
            acc.hold_refs["settlement_completed"] = a.ref
    if nexts:
        for r in fetchall(
            conn,
            "SELECT ar.account_id, i.amount - i.paid_amount FROM arrangement_instalment i "
            "JOIN arrangement ar ON ar.id = i.arrangement_id "
            "WHERE ar.account_id BETWEEN ? AND ? AND i.state IN ('due', 'partly_paid', 'missed') "
            "AND i.due_on = (SELECT MIN(j.due_on) FROM arrangement_instalment j "
            "WHERE j.arrangement_id = ar.id AND j.state IN ('due', 'partly_paid', 'missed'))",
            (lo, hi),
        ):
            acc = accounts[r[0]]
            a = acc.arrangement
            if a is not None and a.next_due_on is not None and a.next_amount is None:
                acc.arrangement = ArrangementState(
                    a.ref, a.kind, a.state, a.kept, a.missed, a.next_due_on, _money(r[1]),
                    a.ended_on,
                )


def _loop_anchors(
    conn: Connection,
    fetchall: Any,
    accounts: dict[int, AccountRecord],
    lo: int,
    hi: int,
    day: dt.date,
    before: Any,
) -> None:
    """The resolution actions' anchors (``LoopAnchors``): the instalments of active
    arrangements, open verification tasks, and loop actions taken on earlier plan days."""
    d = bind(conn, Date(), day)
    for r in fetchall(
        conn,
        "SELECT ar.account_id, ar.first_due_on, i.due_on, i.amount, i.paid_amount, i.state "
        "FROM arrangement ar JOIN arrangement_instalment i ON i.arrangement_id = ar.id "
        "WHERE ar.account_id BETWEEN ? AND ? AND ar.state = 'active' "
        "ORDER BY ar.account_id, ar.id, i.due_on, i.seq",
        (lo, hi),
    ):
        anchors = accounts[r[0]].loop
        anchors.first_due_on = as_date(r[1])
        due_on, left = as_date(r[2]), _money(r[3]) - _money(r[4])
        assert due_on is not None
        if r[5] in ("due", "partly_paid") and due_on >= day and anchors.upcoming_due_on is None:
            anchors.upcoming_due_on, anchors.upcoming_amount = due_on, left
        elif r[5] == "missed":
            anchors.missed_due_on, anchors.missed_amount = due_on, left
    for r in fetchall(
        conn,
        "SELECT t.account_id, t.id, h.started_on, t.created_at FROM verification_task t "
        "LEFT JOIN account_hold h ON h.id = t.hold_id "
        "WHERE t.account_id BETWEEN ? AND ? AND t.state = 'open' "
        "AND (h.started_on IS NULL OR h.started_on <= ?) ORDER BY t.account_id, t.id",
        (lo, hi, d),
    ):
        # Dated by its dispute (the hold's start), as verification_due is.
        anchors = accounts[r[0]].loop
        if anchors.verification_task is None:
            anchors.verification_task = r[1]
            anchors.verification_opened_on = as_date(r[2]) or as_instant(r[3]).date()
    since = bind(conn, Date(), day - LOOP_TAKEN_LOOKBACK)
    for r in fetchall(
        conn,
        "SELECT account_id, action, slot FROM contact WHERE account_id BETWEEN ? AND ? "
        "AND stage = ? AND plan_date < ? AND plan_date >= ? "
        "AND state IN ('sent', 'sending', 'uncertain')",
        (lo, hi, LOOP_STAGE, before, since),
    ):
        accounts[r[0]].loop.taken.add((r[1], int(r[2])))
