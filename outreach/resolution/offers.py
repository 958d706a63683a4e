"""The offer calculator: which instalment plans and settlements an account may be offered, sized
to what the consumer can pay, within the bands of config/arrangements.yaml. Pure: figures and
the policy in, offers out (no database, no clock). docs/resolution.md, "Arrangements and
offers", states each rule."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from outreach.resolution.policy import ResolutionPolicy

CENT = Decimal("0.01")
# The smallest instalment in a currency config/arrangements.yaml gives no minimum for.
NO_MINIMUM = CENT

Schedule = tuple[tuple[dt.date, Decimal], ...]


@dataclass(frozen=True, slots=True)
class Offer:
    """One arrangement the account may accept. An instalment plan repays the whole balance
    (``total``) in ``term_months`` monthly instalments of ``instalment_amount`` (the last one
    carries the cents the division left over); a settlement is one payment of the discounted
    balance. ``affordable``: within the share of stated means the policy allows (None: no means
    stated)."""

    kind: str  # instalment | settlement
    term_months: int
    instalment_amount: Decimal
    total: Decimal
    first_due_on: dt.date
    needs_approval: bool
    band: str
    discount: Decimal
    schedule: Schedule
    affordable: bool | None = None


@dataclass(frozen=True, slots=True)
class Means:
    """Monthly income and expenses the consumer stated."""

    income: Decimal
    expenses: Decimal

    @property
    def disposable(self) -> Decimal:
        return max(Decimal(0), self.income - self.expenses)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, on the month's last day when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def split(total: Decimal, term_months: int) -> tuple[Decimal, Decimal]:
    """(every instalment but the last, the last): rounded down to the cent, the last carrying
    the remainder, so that the instalments add up to ``total`` and none is below the first."""
    regular = (total / term_months).quantize(CENT, rounding=ROUND_DOWN)
    return regular, total - regular * (term_months - 1)


def schedule(total: Decimal, term_months: int, first_due_on: dt.date) -> Schedule:
    """The dated instalments of a plan: one a month from ``first_due_on``, adding up to
    ``total`` to the cent (``split``)."""
    if term_months < 1:
        raise ValueError("a plan has at least one instalment")
    total = total.quantize(CENT)
    regular, last = split(total, term_months)
    return tuple(
        (add_months(first_due_on, i), last if i == term_months - 1 else regular)
        for i in range(term_months)
    )


def min_instalment(policy: ResolutionPolicy, currency: str) -> Decimal:
    return policy.arrangements.instalments.min_instalment.get(currency, NO_MINIMUM)


def instalment_offers(
    policy: ResolutionPolicy,
    *,
    balance: Decimal,
    product: str,
    country: str,
    currency: str,
    as_of: dt.date,
    means: Means | None = None,
    score_band: str | None = None,
) -> list[Offer]:
    """Monthly plans repaying the whole balance, one per configured term up to the product's,
    jurisdiction's and score band's longest (``max_term``), none with an instalment below the currency's
    minimum. With stated means, only the plans whose instalment fits the affordable share of
    income minus expenses, shortest first; when none fits, the longest allowed plan alone,
    marked ``affordable=False`` (an agent can still discuss it; it is never hidden that it
    does not fit)."""
    inst = policy.arrangements.instalments
    balance = balance.quantize(CENT)
    if balance <= 0:
        return []
    longest = policy.max_term(product, country, score_band)
    minimum = min_instalment(policy, currency)
    first_due = as_of + dt.timedelta(days=policy.arrangements.first_due_in_days)
    cap = None if means is None else (inst.affordability_share * means.disposable).quantize(
        CENT, rounding=ROUND_DOWN)  # fmt: skip
    offers: list[Offer] = []
    for term in sorted(set(inst.terms)):
        if term > longest:
            continue
        regular, _ = split(balance, term)
        if regular < minimum:
            continue
        last = balance - regular * (term - 1)
        affordable = None if cap is None else last <= cap
        offers.append(Offer(
            kind="instalment", term_months=term, instalment_amount=regular, total=balance,
            first_due_on=first_due,
            needs_approval=inst.approval_over_months is not None
            and term > inst.approval_over_months,
            band=f"instalment_{term}m", discount=Decimal(0),
            schedule=schedule(balance, term, first_due), affordable=affordable,
        ))  # fmt: skip
    if cap is not None:
        fitting = [o for o in offers if o.affordable]
        offers = fitting if fitting else offers[-1:]
    return offers


def settlement_offers(
    policy: ResolutionPolicy,
    *,
    balance: Decimal,
    days_past_due: int,
    country: str,
    as_of: dt.date,
    score_band: str | None = None,
) -> list[Offer]:
    """One offer per settlement band the account is in (days past due from ``dpd_min`` to
    ``dpd_max``, both inclusive; balance from ``min_balance`` inclusive to ``max_balance``
    exclusive; the band's countries and score bands): the balance less the band's discount,
    rounded to the cent, in one payment due ``pay_within_days`` from ``as_of``."""
    balance = balance.quantize(CENT)
    if balance <= 0:
        return []
    offers: list[Offer] = []
    for band in policy.arrangements.settlements:
        if days_past_due < band.dpd_min or (band.dpd_max is not None
                                            and days_past_due > band.dpd_max):  # fmt: skip
            continue
        if balance < band.min_balance or (band.max_balance is not None
                                          and balance >= band.max_balance):  # fmt: skip
            continue
        if band.countries is not None and country not in band.countries:
            continue
        if band.score_bands is not None and score_band not in band.score_bands:
            continue
        total = (balance * (1 - band.discount)).quantize(CENT, rounding=ROUND_HALF_UP)
        if total <= 0:
            continue
        due = as_of + dt.timedelta(days=band.pay_within_days)
        offers.append(Offer(
            kind="settlement", term_months=1, instalment_amount=total, total=total,
            first_due_on=due, needs_approval=band.needs_approval, band=band.id,
            discount=band.discount, schedule=((due, total),),
        ))  # fmt: skip
    return offers


def offers(
    policy: ResolutionPolicy,
    *,
    balance: Decimal,
    past_due: Decimal,
    days_past_due: int,
    product: str,
    country: str,
    currency: str,
    as_of: dt.date,
    means: Means | None = None,
    score_band: str | None = None,
) -> list[Offer]:
    """Every offer for an account: its instalment plans, then its settlements. An account with
    nothing past due is offered nothing (it is not in arrears). ``score_band`` (the account's
    band by the active score model, None without one) selects the terms given to a band."""
    if past_due <= 0 or days_past_due <= 0:
        return []
    return [
        *instalment_offers(policy, balance=balance, product=product, country=country,
                           currency=currency, as_of=as_of, means=means, score_band=score_band),
        *settlement_offers(policy, balance=balance, days_past_due=days_past_due,
                           country=country, as_of=as_of, score_band=score_band),
    ]  # fmt: skip
