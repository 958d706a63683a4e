"""The statistics of an experiment: intervals that cover, and a test that detects a planted
5-point uplift at the sample size docs/experiments.md gives, and rejects a null effect at about
the nominal rate. Synthetic per-account outcomes, many seeds, kept fast with numpy."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from outreach.measurement import experiment_stats as st
from outreach.measurement.experiment_stats import AccountOutcome

# The synthetic portfolio of docs/experiments.md ("Power"): past due at entry lognormal around
# 1,000; an account pays all it owes with probability q, else nothing; the champion's q is 0.30,
# so its recovery rate is about 30%, and a challenger with q + 0.05 recovers 5 points more.
CHAMPION_Q = 0.30
UPLIFT = 0.05


def portfolio(rng: np.random.Generator, n: int, q: float) -> tuple[np.ndarray, np.ndarray]:
    past_due = np.round(rng.lognormal(mean=math.log(1000), sigma=0.6, size=n), 2)
    paid = rng.random(n) < q
    return past_due * paid, past_due


def recovery_test(rng: np.random.Generator, n: int, q_b: float) -> float:
    ya, xa = portfolio(rng, n, CHAMPION_Q)
    yb, xb = portfolio(rng, n, q_b)
    _, p = st.ratio_difference(st.ratio(list(ya), list(xa)), st.ratio(list(yb), list(xb)))
    assert p is not None
    return p


def documented_n() -> int:
    """The accounts per arm docs/experiments.md gives: from the champion's variance."""
    y, x = portfolio(np.random.default_rng(2026), 50_000, CHAMPION_Q)
    return st.sample_size_ratio(st.linearised_sd(list(y), list(x)), UPLIFT)


def test_the_sample_size_matches_the_documented_figure() -> None:
    n = documented_n()
    # sd of the linearised residual ~ sqrt(q(1-q) E[x^2] + ...)/xbar ~ 0.54: about 1,800 a arm.
    assert 1500 <= n <= 2100, n


def test_a_planted_five_point_uplift_is_detected_at_the_documented_sample_size() -> None:
    n = documented_n()
    rng = np.random.default_rng(7)
    runs = 60
    detected = sum(recovery_test(rng, n, CHAMPION_Q + UPLIFT) < 0.05 for _ in range(runs))
    # Power 0.8 by design: at 60 runs, 4 binomial sigmas below is ~0.59.
    assert detected / runs >= 0.6, detected
    # Half the accounts: clearly less power (the sample size matters).
    half = sum(recovery_test(rng, n // 4, CHAMPION_Q + UPLIFT) < 0.05 for _ in range(runs))
    assert half < detected


def test_a_null_effect_is_rejected_at_about_the_nominal_rate() -> None:
    n = documented_n()
    rng = np.random.default_rng(11)
    runs = 200
    rejected = sum(recovery_test(rng, n, CHAMPION_Q) < 0.05 for _ in range(runs))
    # alpha 0.05: 10 of 200 expected; 4 sigmas above is ~22.
    assert rejected <= 22, rejected


def test_promise_kept_rate_uplift_is_detected_at_its_sample_size() -> None:
    p, n = 0.50, st.sample_size_proportion(0.50, UPLIFT)
    assert 1500 <= n <= 1600  # the classic figure for 50% -> 55%
    rng = np.random.default_rng(3)
    runs = 100
    hits = 0
    nulls = 0
    for _ in range(runs):
        a, b = int(rng.binomial(n, p)), int(rng.binomial(n, p + UPLIFT))
        c = int(rng.binomial(n, p))
        hits += (st.two_proportions(a, n, b, n)[1] or 1) < 0.05
        nulls += (st.two_proportions(a, n, c, n)[1] or 1) < 0.05
    assert hits / runs >= 0.65, hits
    assert nulls <= 14, nulls


def test_wilson_and_ratio_intervals_cover_the_truth() -> None:
    rng = np.random.default_rng(5)
    covered_w = covered_r = 0
    runs = 300
    for _ in range(runs):
        k = int(rng.binomial(200, 0.3))
        w = st.wilson(k, 200)
        assert w.low is not None and w.high is not None
        covered_w += w.low <= 0.3 <= w.high
        y, x = portfolio(rng, 400, 0.3)
        r = st.ratio(list(y), list(x)).interval()
        assert r.low is not None and r.high is not None
        covered_r += r.low <= 0.3 <= r.high
    assert covered_w / runs >= 0.91 and covered_r / runs >= 0.91
    assert st.wilson(0, 0).value is None and st.ratio([], []).value is None


def test_arm_results_compare_each_challenger_with_the_champion_per_currency() -> None:
    rng = np.random.default_rng(9)
    outcomes: list[AccountOutcome] = []
    for arm, q in (("champion", 0.2), ("challenger", 0.4)):
        y, x = portfolio(rng, 1500, q)
        for i, (paid, owed) in enumerate(zip(y, x, strict=True)):
            outcomes.append(AccountOutcome(
                arm, i, "USD", Decimal(str(owed)), Decimal(str(paid)), bool(i % 2), False,
                2, 2 if paid else 0))  # fmt: skip
    outcomes.append(AccountOutcome("champion", 10**6, "CNY", Decimal(500), Decimal(100), True,
                                   True, 0, 0))  # fmt: skip
    found = st.arm_results(outcomes, ["champion", "challenger"], "champion")
    assert [(r.currency, r.arm) for r in found] == [
        ("CNY", "champion"),
        ("USD", "champion"),
        ("USD", "challenger"),
    ]
    cny, champion, challenger = found
    assert cny.recovery_rate.value == 0.2 and cny.tests == {}
    assert champion.collected == sum((o.collected for o in outcomes[:1500]), Decimal(0))
    assert challenger.tests["recovery_rate"]["significant"] is True
    assert challenger.tests["recovery_per_account_welch"]["significant"] is True
    assert challenger.tests["contact_rate"]["significant"] is False
    assert challenger.tests["promise_kept_rate"]["significant"] is True


def test_a_recovery_interval_never_goes_below_zero():
    # Two accounts of ten paid everything, the rest nothing: a wide delta-method interval whose
    # symmetric lower end would fall below 0, which no recovery rate can.
    ys = [100.0, 100.0] + [0.0] * 8
    xs = [100.0] * 10
    r = st.ratio(ys, xs).interval()
    assert r.value == 0.2
    assert r.low == 0.0
    assert r.high is not None and r.high > 0.4
