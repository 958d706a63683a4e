"""The offer calculator (outreach.resolution.offers): property tests over random accounts and
the shipped policy, and the rules it documents, one by one."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.resolution.offers import CENT, Means, Offer, add_months, offers, schedule
from outreach.resolution.policy import ResolutionPolicy, parse_policy

SHIPPED = parse_policy(
    (Path(__file__).resolve().parent.parent / "config" / "arrangements.yaml").read_text(),
    "config/arrangements.yaml",
)
AS_OF = dt.date(2026, 12, 7)
COUNTRIES = ("US", "CN", "GB", "DE")
PRODUCTS = ("credit_card", "consumer_loan")
CURRENCY = {"US": "USD", "CN": "CNY", "GB": "GBP", "DE": "EUR"}

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("250000"), places=2)


def _offers(policy: ResolutionPolicy, balance: Decimal, dpd: int, country: str, product: str,
            means: Means | None = None) -> list[Offer]:  # fmt: skip
    return offers(policy, balance=balance, past_due=min(balance, Decimal(100)), days_past_due=dpd,
                  product=product, country=country, currency=CURRENCY[country], as_of=AS_OF,
                  means=means)  # fmt: skip


accounts = st.tuples(
    money, st.integers(min_value=1, max_value=900), st.sampled_from(COUNTRIES),
    st.sampled_from(PRODUCTS),
    st.none() | st.tuples(money, money).map(lambda p: Means(p[0], p[1])),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(accounts)
def test_instalments_add_up_to_the_total_to_the_cent(account: tuple) -> None:
    for offer in _offers(SHIPPED, *account):
        amounts = [amount for _, amount in offer.schedule]
        assert sum(amounts) == offer.total
        assert len(offer.schedule) == offer.term_months
        assert all(a == a.quantize(Decimal("0.01")) for a in amounts)
        assert amounts[0] == offer.instalment_amount
        assert offer.schedule[0][0] == offer.first_due_on
        dates = [d for d, _ in offer.schedule]
        assert dates == sorted(set(dates))


@settings(max_examples=300, deadline=None)
@given(accounts)
def test_no_term_beyond_the_jurisdictions_limit(account: tuple) -> None:
    balance, dpd, country, product, means = account
    for offer in _offers(SHIPPED, *account):
        assert offer.term_months <= SHIPPED.max_term(product, country)
        if country == "CN":
            assert offer.term_months <= 60
        if offer.kind == "instalment":
            assert offer.term_months in SHIPPED.arrangements.instalments.terms
            assert offer.total == balance  # the whole debt is repaid
            assert offer.needs_approval == (offer.term_months > 36)


@settings(max_examples=300, deadline=None)
@given(accounts)
def test_no_offer_outside_the_configured_bands(account: tuple) -> None:
    balance, dpd, country, product, means = account
    bands = {b.id: b for b in SHIPPED.arrangements.settlements}
    minimum = SHIPPED.arrangements.instalments.min_instalment.get(CURRENCY[country],
                                                                  Decimal("0.01"))  # fmt: skip
    for offer in _offers(SHIPPED, *account):
        if offer.kind == "instalment":
            assert min(a for _, a in offer.schedule) >= minimum
            assert offer.discount == 0
            if means is not None and offer.affordable:
                cap = SHIPPED.arrangements.instalments.affordability_share * means.disposable
                assert max(a for _, a in offer.schedule) <= cap
            continue
        band = bands[offer.band]
        assert band.dpd_min <= dpd and (band.dpd_max is None or dpd <= band.dpd_max)
        assert band.min_balance <= balance
        assert band.max_balance is None or balance < band.max_balance
        assert offer.discount == band.discount
        assert offer.total == (balance * (1 - band.discount)).quantize(CENT, ROUND_HALF_UP)
        assert offer.term_months == 1 and offer.schedule == ((offer.first_due_on, offer.total),)
        assert offer.first_due_on == AS_OF + dt.timedelta(days=band.pay_within_days)
        assert offer.needs_approval == band.needs_approval


def test_a_term_whose_instalment_is_below_the_minimum_is_not_offered() -> None:
    # 200 USD: 3 months is 66.66, 6 months 33.33, 12 months 16.66 < 25.
    terms = [o.term_months for o in _offers(SHIPPED, Decimal("200.00"), 40, "US", "credit_card")]
    assert terms == [3, 6]


def test_the_last_instalment_carries_the_remainder() -> None:
    plan = schedule(Decimal("100.00"), 3, dt.date(2027, 1, 31))
    assert plan == ((dt.date(2027, 1, 31), Decimal("33.33")), (dt.date(2027, 2, 28), Decimal("33.33")),
                    (dt.date(2027, 3, 31), Decimal("33.34")))  # fmt: skip
    assert add_months(dt.date(2027, 1, 31), 1) == dt.date(2027, 2, 28)


def test_china_offers_plans_up_to_five_years() -> None:
    terms = [o.term_months for o in _offers(SHIPPED, Decimal("60000.00"), 40, "CN", "credit_card")]
    assert terms == [3, 6, 12, 24, 36, 60]
    # A US credit card is capped at 24 months.
    us = [o.term_months for o in _offers(SHIPPED, Decimal("60000.00"), 40, "US", "credit_card")]
    assert us == [3, 6, 12, 24]


def test_stated_means_keep_the_affordable_plans_shortest_first() -> None:
    # 3000 at 6 months is 500, at 12 months 250: with 600 a month to spare, half is 300.
    got = _offers(SHIPPED, Decimal("3000.00"), 40, "US", "credit_card",
                  Means(Decimal("2600"), Decimal("2000")))  # fmt: skip
    assert [(o.term_months, o.affordable) for o in got] == [(12, True), (24, True)]


def test_no_affordable_plan_offers_the_longest_allowed_marked_unaffordable() -> None:
    got = _offers(SHIPPED, Decimal("30000.00"), 40, "US", "credit_card",
                  Means(Decimal("1000"), Decimal("990")))  # fmt: skip
    assert [(o.term_months, o.affordable) for o in got] == [(24, False)]


@pytest.mark.parametrize(("dpd", "balance", "bands"), [
    (90, "5000.00", []),
    (91, "5000.00", ["early_settlement"]),
    (180, "5000.00", ["early_settlement"]),
    (181, "9999.99", ["late_settlement"]),
    (181, "10000.00", ["large_late_settlement"]),
])  # fmt: skip
def test_settlement_bands_by_days_past_due_and_balance(dpd: int, balance: str,
                                                       bands: list[str]) -> None:  # fmt: skip
    got = [o for o in _offers(SHIPPED, Decimal(balance), dpd, "US", "credit_card")
           if o.kind == "settlement"]  # fmt: skip
    assert [o.band for o in got] == bands


def test_nothing_past_due_is_offered_nothing() -> None:
    assert offers(SHIPPED, balance=Decimal("500"), past_due=Decimal(0), days_past_due=0,
                  product="credit_card", country="US", currency="USD", as_of=AS_OF) == []  # fmt: skip
