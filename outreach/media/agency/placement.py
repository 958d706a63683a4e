"""Agency placement: what an agency gets about an account, the recall reasons, and allocation at
send time (the dispatcher's hooks, ``PlacementHooks``).

The agencies and law firms config is in ``config.py``; the daily placement and recall files in
``files.py``; what agencies report back in ``returns.py``. Details: docs/agency-and-legal.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Numeric, bindparam, text

from contact_channels.media_fields import PlacementFields, Refusal
from outreach.kernel.facts import AccountRecord, as_date
from outreach.kernel.policy_settings import policy_settings
from outreach.media.agency.config import Agency, agency_config, licensed
from outreach.planning.kinds import ChannelHooks, MessageContext
from policies.model import Step, Verdict

log = logging.getLogger(__name__)


# --- what an agency gets about an account -------------------------------------------------------

# The placement line: the least personal data an agency needs to work the account.
PLACEMENT_COLUMNS = (
    "account_ref",
    "full_name",
    "address_line1",
    "city",
    "region",
    "postal_code",
    "country",
    "phone1",
    "phone2",
    "phone3",
    "currency",
    "balance",
    "past_due",
    "charge_off_date",
    "last_payment_date",
    "placed_on",
    "recall_due_on",
)
RECALL_COLUMNS = ("account_ref", "placed_on", "recalled_on", "recall_reason")
MAX_PHONES = 3
CENT = Decimal("0.01")
MONEY = Numeric(14, 2)  # binds a Decimal on every driver (SQLite has no decimal type)


def _decimal(value: object) -> Decimal:
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return amount.quantize(CENT)


def _ids_param(sql: str) -> Any:
    return text(sql).bindparams(bindparam("ids", expanding=True))


IN_BATCH = 5000  # ids per IN (...) list: SQLite allows 32766 parameters a statement


def account_lines(
    conn: Connection, account_ids: Sequence[int], day: dt.date
) -> dict[int, dict[str, str]]:
    """Per account: ref, name, postal address, up to three valid phones of the debtor, currency,
    balance and past due after the payments known on ``day``, charge-off and last payment
    dates. Values as text ('' when unknown), ready for a CSV or a message's fields."""
    ids = sorted(set(account_ids))
    out: dict[int, dict[str, str]] = {}
    for i in range(0, len(ids), IN_BATCH):
        out.update(_account_lines(conn, ids[i : i + IN_BATCH], day))
    return out


def _account_lines(conn: Connection, ids: list[int], day: dt.date) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    balance_as_of: dict[int, dt.date] = {}
    amounts: dict[int, tuple[Decimal, Decimal]] = {}
    for r in conn.execute(
        _ids_param(
            "SELECT a.id, a.account_ref, p.full_name, p.address_line1, p.city, p.region, "
            "p.postal_code, p.country, a.currency, a.balance, a.amount_past_due, a.balance_as_of, "
            "a.charge_off_date FROM account a JOIN person p ON p.id = a.person_id "
            "WHERE a.id IN :ids"
        ),
        {"ids": ids},
    ):
        out[r[0]] = {
            "account_ref": r[1],
            "full_name": r[2] or "",
            "address_line1": r[3] or "",
            "city": r[4] or "",
            "region": r[5] or "",
            "postal_code": r[6] or "",
            "country": r[7] or "",
            "currency": r[8],
            "charge_off_date": str(as_date(r[12]) or ""),
            "last_payment_date": "",
            **{f"phone{i + 1}": "" for i in range(MAX_PHONES)},
        }
        amounts[r[0]] = (_decimal(r[9]), _decimal(r[10]))
        balance_as_of[r[0]] = as_date(r[11])  # type: ignore[assignment]
    phones: dict[int, list[str]] = {}
    for account_id, value in conn.execute(
        _ids_param(
            "SELECT a.id, cp.value FROM contact_point cp JOIN account a ON a.person_id = cp.person_id "
            "WHERE a.id IN :ids AND cp.kind = 'phone' AND cp.relation = 'self' AND cp.valid "
            "ORDER BY a.id, cp.priority, cp.id"
        ),
        {"ids": ids},
    ):
        phones.setdefault(account_id, []).append(value)
    for account_id, numbers in phones.items():
        for i, number in enumerate(numbers[:MAX_PHONES]):
            out[account_id][f"phone{i + 1}"] = number
    paid: dict[int, Decimal] = {}
    for account_id, paid_on, amount in conn.execute(
        _ids_param(
            "SELECT account_id, paid_on, amount FROM payment WHERE account_id IN :ids "
            "AND paid_on <= :day AND NOT (status = 'reversed' AND reversed_on <= :day) "
            "ORDER BY account_id, paid_on"
        ),
        {"ids": ids, "day": day},
    ):
        on = as_date(paid_on)
        assert on is not None
        out[account_id]["last_payment_date"] = str(on)
        # As the gate's facts do: payments after the balance's date reduce it.
        if on > balance_as_of[account_id]:
            paid[account_id] = paid.get(account_id, Decimal(0)) + _decimal(amount)
    for account_id, (balance, past_due) in amounts.items():
        p = paid.get(account_id, Decimal(0))
        out[account_id]["balance"] = str(max(Decimal(0), balance - p).quantize(CENT))
        out[account_id]["past_due"] = str(max(Decimal(0), past_due - p).quantize(CENT))
    return out


# --- recall reasons, shared by recall and by the placement itself -------------------------------

# Holds that end a placement at once, strongest first (the first found is the reason given).
RECALL_HOLDS = ("bankruptcy", "dispute", "cease_communication")
RECALL_REASONS = (*RECALL_HOLDS, "paid_in_full", "brought_current", "recall_due")


def recall_reason(
    holds: Iterable[str],
    balance: Decimal,
    past_due: Decimal,
    *,
    recall_due_on: dt.date | None = None,
    day: dt.date | None = None,
) -> str | None:
    """Why a placement must end (or must not start): a hold, nothing owed, nothing past due, or
    its recall date reached. None while it may stay with the agency."""
    active = set(holds)
    for kind in RECALL_HOLDS:
        if kind in active:
            return kind
    if balance <= 0:
        return "paid_in_full"
    if past_due <= 0:
        return "brought_current"
    if recall_due_on is not None and day is not None and recall_due_on <= day:
        return "recall_due"
    return None


# --- allocation (the dispatcher's hooks) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Allocated:
    agency: Agency | None
    band: int | None
    refusal: str | None = None


class PlacementHooks(ChannelHooks):
    """Allocates each placement's agency before the gate judges it, and gives the adapter the
    placement line. Built once per dispatch run: open placements per agency, the round-robin
    position and the agencies' performance are read once, then kept up to date in the run."""

    def __init__(self, engine: Engine | None = None, day: dt.date | None = None) -> None:
        super().__init__(engine, day)
        self.config = agency_config()
        self.allocation = self.config.allocation
        # The approved list of config/policy.yaml, when it names any agency, narrows the
        # agencies approved in agencies.yaml (the China rule needs an approved agency).
        self.policy_approved = policy_settings().approved_agencies
        self.open_counts: Counter[str] = Counter()
        self.last_allocated: dict[int, str] = {}  # band -> the agency that got the latest one
        self.performance: dict[str, Decimal] = {}
        self._pending: dict[str, _Allocated] = {}
        self._placed_accounts: set[int] = set()
        if engine is not None and self.allocation is not None:
            self._load(engine, day)

    def _load(self, engine: Engine, day: dt.date | None) -> None:
        assert self.allocation is not None
        with engine.connect() as conn:
            for agency, n in conn.execute(
                text("SELECT agency, COUNT(*) FROM placement WHERE state = 'open' GROUP BY agency")
            ):
                self.open_counts[agency] = int(n)
            for i, band in enumerate(self.allocation.bands):
                last = conn.execute(
                    text(
                        "SELECT agency FROM placement WHERE agency IN :ids ORDER BY id DESC LIMIT 1"
                    ).bindparams(bindparam("ids", expanding=True)),
                    {"ids": list(band.agencies)},
                ).scalar()
                if last is not None:
                    self.last_allocated[i] = last
            if self.allocation.strategy == "performance" and day is not None:
                self.performance = agency_performance(conn, day, self.allocation.performance_days)

    def approved(self, agency: Agency) -> bool:
        return agency.approved and (not self.policy_approved or agency.id in self.policy_approved)

    def allocate(self, balance: Decimal, country: str, region: str | None) -> _Allocated:
        """The agency for an account, by the rule: the balance's band, then the agencies of
        the band licensed for the account's jurisdiction, approved, with capacity left, then
        round robin in id order (after the one that got the latest placement) or the best
        recovered/placed ratio (ties by id)."""
        if self.allocation is None:
            return _Allocated(None, None)
        band_i = next((i for i, b in enumerate(self.allocation.bands) if b.holds(balance)), None)
        if band_i is None:
            return _Allocated(None, None)
        eligible = sorted(
            (
                a
                for a in (self.config.agency(x) for x in self.allocation.bands[band_i].agencies)
                if a is not None
                and licensed(a.jurisdictions, country, region)
                and self.approved(a)
                and self.open_counts[a.id] < a.capacity
            ),
            key=lambda a: a.id,
        )
        if not eligible:
            return _Allocated(None, band_i)
        if self.allocation.strategy == "performance":
            best = min(eligible, key=lambda a: (-self.performance.get(a.id, Decimal(0)), a.id))
            return _Allocated(best, band_i)
        last = self.last_allocated.get(band_i)
        following = [a for a in eligible if last is None or a.id > last]
        return _Allocated((following or eligible)[0], band_i)

    def preview(self, step: Step, account: AccountRecord) -> Step:
        """The step as the gate would see it at send time, for the planner (no side effect:
        nothing is counted against capacity or the round robin until a send)."""
        allocated = self.allocate(account.balance, account.country, account.region)
        if allocated.agency is None:
            return step
        return replace(step, agency=allocated.agency.id, agency_approved=True)

    def step(self, step: Step, ctx: MessageContext) -> Step:
        account = ctx.account
        open_placement = ctx.conn.execute(
            text("SELECT 1 FROM placement WHERE account_id = :a AND state = 'open'"),
            {"a": account.id},
        ).first()
        if open_placement is not None or account.id in self._placed_accounts:
            # Never a second open placement; the gate (core.placed_with_agency) or the
            # adapter refuses it.
            self._pending[ctx.contact.key] = _Allocated(None, None, "already_placed")
            return step
        allocated = self.allocate(account.balance, account.country, account.region)
        self._pending[ctx.contact.key] = allocated
        if allocated.agency is None:
            return step
        return replace(step, agency=allocated.agency.id, agency_approved=True)

    def fields(self, ctx: MessageContext, verdict: Verdict) -> PlacementFields | Refusal:
        account = ctx.account
        allocated = self._pending.pop(ctx.contact.key, None)
        if allocated is None:  # not seen by step (a caller that skipped it): allocate now
            self.step(Step("agency"), ctx)
            allocated = self._pending.pop(ctx.contact.key)
        if allocated.refusal is not None:
            return Refusal(allocated.refusal)
        # What would recall the placement at once must not start it either. The gates hold each
        # of these already (core.bankruptcy, core.dispute_before_referral,
        # core.cease_before_placement, core.not_delinquent); this keeps the recall's own
        # reading and the start in step if a pack changes.
        reason = recall_reason(account.holds, account.balance, account.past_due)
        if reason is not None:
            return Refusal(f"placement.{reason}")
        agency = allocated.agency
        if agency is None:
            return Refusal("no_agency")
        day = ctx.day
        self.open_counts[agency.id] += 1
        if allocated.band is not None:
            self.last_allocated[allocated.band] = agency.id
        self._placed_accounts.add(account.id)
        line = account_lines(ctx.conn, [account.id], day)[account.id]
        recall_due_on = day + dt.timedelta(days=agency.recall_after_days)
        return PlacementFields(
            account_ref=line["account_ref"],
            full_name=line["full_name"],
            address_line1=line["address_line1"],
            city=line["city"],
            region=line["region"],
            postal_code=line["postal_code"],
            country=line["country"],
            currency=line["currency"],
            charge_off_date=line["charge_off_date"],
            last_payment_date=line["last_payment_date"],
            phone1=line["phone1"],
            phone2=line["phone2"],
            phone3=line["phone3"],
            balance=line["balance"],
            past_due=line["past_due"],
            account_id=account.id,
            agency=agency.id,
            agency_capacity=agency.capacity,
            placed_on=day.isoformat(),
            recall_due_on=recall_due_on.isoformat(),
        )


def agency_performance(conn: Connection, day: dt.date, days: int) -> dict[str, Decimal]:
    """Recovered / placed per agency over the placements made in the ``days`` up to ``day``:
    payments the agencies reported (placement_return) over the balances placed."""
    since = day - dt.timedelta(days=days)
    out: dict[str, Decimal] = {}
    for agency, placed, recovered in conn.execute(
        text(
            "SELECT p.agency, SUM(p.balance_at_placement), SUM(COALESCE(r.recovered, 0)) "
            "FROM placement p LEFT JOIN (SELECT placement_id, SUM(amount) AS recovered "
            "FROM placement_return WHERE kind = 'payment' GROUP BY placement_id) r "
            "ON r.placement_id = p.id WHERE p.placed_on > :since AND p.placed_on <= :day "
            "GROUP BY p.agency"
        ),
        {"since": since, "day": day},
    ):
        placed_total = _decimal(placed or 0)
        if placed_total > 0:
            out[agency] = _decimal(recovered or 0) / placed_total
    return out


__all__ = [
    "PLACEMENT_COLUMNS",
    "RECALL_COLUMNS",
    "PlacementHooks",
]
