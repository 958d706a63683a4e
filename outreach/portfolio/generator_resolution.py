"""The resolution loop in a generated portfolio: promises to pay, arrangements, stated means,
causes of delinquency, partial payments and returned payments, as import records
(docs/import-format.md, docs/resolution.md "The generator and the demo").

Drawn from a random generator of their own (seeded from the portfolio's seed), so that adding
them leaves every other record of the portfolio as it was.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from outreach.portfolio.generator_people import Person, offset_text

CENT = Decimal("0.01")
# The smallest instalment per currency (config/arrangements.yaml instalments.min_instalment).
MIN_INSTALMENT = {"USD": Decimal(25), "CNY": Decimal(100)}
# Why a payment came back: short codes, like a processor's return reasons.
RETURN_REASONS = ("insufficient_funds", "account_closed", "chargeback", "stopped")
_HARDSHIP_CAUSES = ("job_loss", "illness", "over_indebtedness")
_OTHER_CAUSES = ("job_loss", "illness", "over_indebtedness", "forgot", "unwilling", "other")


def money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Account:
    """What the resolution draws need to know of an account already drawn."""

    ref: str
    n: int
    person: Person
    product: str
    currency: str
    dpd: int
    balance: Decimal
    past_due: Decimal
    hold: str | None  # the kind of the account's generated hold, if any
    itemization_date: dt.date
    charged_off: bool
    # Payments drawn for it already (in the last two months, or today): such an account gets no
    # promise, plan or returned payment, whose allocations those payments would blur.
    has_payments: bool


@dataclass
class Drawn:
    """The account's resolution records, and the payments among them that the account's
    snapshot (``balance_as_of``) already includes since the itemization date."""

    records: list[dict[str, Any]] = field(default_factory=list)
    paid_since_itemization: Decimal = Decimal(0)


@dataclass
class Counts:
    promises: int = 0
    arrangements: int = 0
    settlements: int = 0
    means: int = 0
    causes: int = 0
    payments: int = 0
    partial_payments: int = 0
    payment_reversals: int = 0


def _add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, clamped to the month's end (a schedule's monthly step)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Resolution:
    """Draws each account's resolution records (most accounts have none)."""

    def __init__(self, seed: int, as_of: dt.date) -> None:
        # A generator of its own: the portfolio's other draws are not disturbed.
        self.rng = random.Random(f"resolution-loop:{seed}")
        self.as_of = as_of
        self.snapshot = as_of - dt.timedelta(days=1)
        self.counts = Counts()

    def draw(self, a: Account) -> Drawn:
        r = self.rng
        out = Drawn()
        x = r.random()
        y = r.random()
        z = r.random()
        engaged = False
        if a.dpd > 0 and a.hold is None and not a.has_payments:
            if x < 0.055:
                self._promise(a, out)
                engaged = True
            elif x < 0.080:
                engaged = self._instalment_plan(a, out)
            elif x < 0.089 and a.dpd > 90:
                self._settlement(a, out)
                engaged = True
            elif x < 0.110:
                self._partial_payment(a, out)
        if y < (0.5 if engaged else 0.03):
            self._means(a, out)
        cause_share = 0.8 if a.hold in ("hardship", "dispute") else 0.3 if engaged else 0.02
        if a.dpd > 0 and z < cause_share:
            self._cause(a, out)
        if a.dpd > 0 and not a.charged_off and not engaged and r.random() < 0.012:
            self._returned_payment(a, out)
        return out

    # --- the records -------------------------------------------------------------------------

    def _instant(self, a: Account, day: dt.date) -> str:
        r = self.rng
        at = f"{day.isoformat()}T{r.randint(8, 20):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}"
        return at + offset_text(a.person.zone, day)

    def _payment(self, a: Account, out: Drawn, ref: str, paid_on: dt.date, amount: Decimal) -> None:
        out.records.append({
            "record": "payment", "payment_ref": ref, "account_ref": a.ref,
            "paid_on": paid_on.isoformat(), "amount": f"{amount:.2f}",
        })  # fmt: skip
        if a.itemization_date < paid_on <= self.snapshot:
            out.paid_since_itemization += amount
        self.counts.payments += 1

    def _promise(self, a: Account, out: Drawn) -> None:
        """One promise, made days before the as-of day: due after the as-of day (open, pausing), due
        within its grace days (paid today in full or in part, or not yet), or past its grace
        unpaid (broken when the day is settled). Payments land on the as-of day, after the
        snapshot, so they reduce what is past due."""
        r = self.rng
        share = Decimal(1) if r.random() < 0.6 else money(r.uniform(0.3, 0.8))
        amount = max(money(a.past_due * share), CENT)
        x = r.random()
        if x < 0.5:
            due_on = self.as_of + dt.timedelta(days=r.randint(1, 14))
            made = self.as_of - dt.timedelta(days=r.randint(1, 7))
        elif x < 0.8:
            due_on = self.as_of - dt.timedelta(days=r.randint(1, 3))
            made = due_on - dt.timedelta(days=r.randint(1, 7))
        else:
            due_on = self.as_of - dt.timedelta(days=r.randint(4, 12))
            made = due_on - dt.timedelta(days=r.randint(1, 7))
        ref = f"PR{a.n:09d}"
        out.records.append({
            "record": "promise", "account_ref": a.ref, "promise_ref": ref,
            "amount": f"{amount:.2f}", "due_on": due_on.isoformat(),
            "made_at": self._instant(a, made),
            "source": r.choice(("agent", "agent", "self_service")),
        })  # fmt: skip
        self.counts.promises += 1
        if x >= 0.5 and x < 0.8:
            paid = r.random()
            if paid < 0.5:
                self._payment(a, out, f"PAY{a.n:09d}-P", self.as_of, amount)
            elif paid < 0.7:
                part = max(money(amount * Decimal(str(r.uniform(0.3, 0.8)))), CENT)
                self._payment(a, out, f"PAY{a.n:09d}-P", self.as_of, part)

    def _instalment_plan(self, a: Account, out: Drawn) -> bool:
        """An active instalment plan accepted 10 to 100 days ago over the balance then, the
        first instalment a week after acceptance, monthly after; the instalments due so far paid
        on their day (kept), or the latest one unpaid (missed once its grace has passed)."""
        r = self.rng
        minimum = MIN_INSTALMENT.get(a.currency, Decimal(25))
        accepted = self.as_of - dt.timedelta(days=r.randint(10, 100))
        first_due = accepted + dt.timedelta(days=7)
        for term in r.sample((6, 12, 24), 3):
            due = [d for i in range(term) if (d := _add_months(first_due, i)) <= self.snapshot]
            if len(due) >= term:
                continue
            paid = due if r.random() < 0.65 else due[:-1]
            # What is owed now is what the unpaid instalments come to: the total is that plus
            # the instalments paid, each the total over the term rounded down to the cent (the
            # last one takes the remainder: outreach.resolution.offers.split).
            instalment = (a.balance / (term - len(paid))).quantize(CENT, rounding=ROUND_DOWN)
            if instalment < minimum:
                continue
            total = a.balance + instalment * len(paid)
            break
        else:
            return False
        ref = f"AR{a.n:09d}"
        out.records.append({
            "record": "arrangement", "account_ref": a.ref, "arrangement_ref": ref,
            "kind": "instalment", "total": f"{total:.2f}", "term_months": term,
            "first_due_on": first_due.isoformat(), "accepted_at": self._instant(a, accepted),
            "state": "active",
        })  # fmt: skip
        self.counts.arrangements += 1
        for i, day in enumerate(paid, start=1):
            self._payment(a, out, f"PAY{a.n:09d}-I{i}", day, instalment)
        return True

    def _settlement(self, a: Account, out: Drawn) -> None:
        """A settlement of a late account accepted lately, paid in one sum after the as-of day
        at the discount of its band (config/arrangements.yaml settlements)."""
        r = self.rng
        discount = Decimal("0.10") if a.dpd <= 180 else (
            Decimal("0.25") if a.balance < 10_000 else Decimal("0.35")
        )  # fmt: skip
        accepted = self.as_of - dt.timedelta(days=r.randint(1, 10))
        out.records.append({
            "record": "arrangement", "account_ref": a.ref, "arrangement_ref": f"AS{a.n:09d}",
            "kind": "settlement", "total": f"{money(a.balance * (1 - discount)):.2f}",
            "term_months": 1,
            "first_due_on": (self.as_of + dt.timedelta(days=r.randint(3, 20))).isoformat(),
            "accepted_at": self._instant(a, accepted), "state": "active",
        })  # fmt: skip
        self.counts.arrangements += 1
        self.counts.settlements += 1

    def _partial_payment(self, a: Account, out: Drawn) -> None:
        """40% to 95% of what is past due, paid on the as-of day (after the snapshot)."""
        amount = max(money(a.past_due * Decimal(str(self.rng.uniform(0.40, 0.95)))), CENT)
        self._payment(a, out, f"PAY{a.n:09d}-R", self.as_of, amount)
        self.counts.partial_payments += 1

    def _returned_payment(self, a: Account, out: Drawn) -> None:
        """A payment that came back (insufficient funds, a chargeback...): paid and returned
        before the itemization date, so that neither the snapshot nor the itemization count it."""
        r = self.rng
        paid_on = a.itemization_date - dt.timedelta(days=r.randint(9, 30))
        reversed_on = paid_on + dt.timedelta(days=r.randint(2, 7))
        ref = f"PAY{a.n:09d}-X"
        amount = max(money(a.past_due * Decimal(str(r.uniform(0.2, 0.6)))), Decimal(5))
        self._payment(a, out, ref, paid_on, amount)
        out.records.append({
            "record": "payment_reversal", "payment_ref": ref,
            "reversed_on": reversed_on.isoformat(), "reason": r.choice(RETURN_REASONS),
        })  # fmt: skip
        self.counts.payment_reversals += 1

    def _means(self, a: Account, out: Drawn) -> None:
        """Monthly income and expenses the consumer stated, in the account's currency."""
        r = self.rng
        median = 3800.0 if a.currency == "USD" else 7500.0
        income = money(min(60_000.0, max(300.0, r.lognormvariate(0, 0.5) * median)))
        expenses = money(income * Decimal(str(r.uniform(0.55, 1.05))))
        out.records.append({
            "record": "means", "account_ref": a.ref, "monthly_income": f"{income:.2f}",
            "monthly_expenses": f"{expenses:.2f}",
            "stated_on": (self.as_of - dt.timedelta(days=r.randint(1, 120))).isoformat(),
        })  # fmt: skip
        self.counts.means += 1

    def _cause(self, a: Account, out: Drawn) -> None:
        """Why the account fell behind, as a collector classified it (policy.CAUSES)."""
        r = self.rng
        if a.hold == "hardship":
            cause = r.choice(_HARDSHIP_CAUSES)
        elif a.hold == "dispute":
            cause = "disputes_debt" if r.random() < 0.8 else "fraud"
        else:
            cause = r.choice(_OTHER_CAUSES)
        day = self.as_of - dt.timedelta(days=r.randint(1, min(60, a.dpd)))
        out.records.append({
            "record": "cause", "account_ref": a.ref, "cause": cause,
            "recorded_at": self._instant(a, day),
        })  # fmt: skip
        self.counts.causes += 1
