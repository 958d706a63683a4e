"""The statistics of a champion-challenger experiment, from per-account outcomes: for each arm
the recovery rate (collected / past due at entry, a ratio estimator with a delta-method 95%
interval), the contact rate and the promise-kept rate (Wilson 95% intervals); for each
challenger against the champion a two-sided test (delta-method z-test on the difference of
recovery rates, Welch's t-test on per-account recovery as a second opinion, two-proportion
z-tests on the rates); and the sample size that detects a given uplift. docs/experiments.md
gives the formulas and the sample sizes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from scipy import stats

Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    """One account's outcome in an experiment (``outreach.measurement.kpis.arm_outcomes``): its
    arm, what it owed when it entered, what it paid, whether it was contacted (a contact sent)
    and reached (a right-party contact), its promises made and kept. Money in the account's
    currency."""

    arm: str
    account_id: int
    currency: str
    past_due_at_entry: Decimal
    collected: Decimal
    contacted: bool
    right_party: bool
    promises: int
    promises_kept: int


@dataclass(frozen=True)
class Interval:
    value: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "low": self.low, "high": self.high}


NONE = Interval(None, None, None)


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """A proportion with its Wilson score interval (good at small counts and near 0 or 1)."""
    if trials <= 0:
        return NONE
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Ratio:
    """sum(y) / sum(x) over accounts, its delta-method standard error, and n."""

    value: float | None
    se: float | None
    n: int

    def interval(self, z: float = Z95) -> Interval:
        if self.value is None or self.se is None:
            return Interval(self.value, None, None)
        # Amounts collected and owed are never negative, so neither is the rate: the symmetric
        # interval is cut at 0 where a small or skewed arm would take it below.
        return Interval(self.value, max(0.0, self.value - z * self.se), self.value + z * self.se)


def ratio(ys: Sequence[float], xs: Sequence[float]) -> Ratio:
    """The ratio estimator R = sum(y)/sum(x) and its delta-method (linearised) standard error:
    Var(R) ~ sum((y_i - R x_i)^2) / ((n - 1) n xbar^2)."""
    n = len(xs)
    total_x = math.fsum(xs)
    if n == 0 or total_x <= 0:
        return Ratio(None, None, n)
    r = math.fsum(ys) / total_x
    if n < 2:
        return Ratio(r, None, n)
    xbar = total_x / n
    resid = math.fsum((y - r * x) ** 2 for y, x in zip(ys, xs, strict=True))
    return Ratio(r, math.sqrt(resid / ((n - 1) * n * xbar * xbar)), n)


def two_sided_p(z: float) -> float:
    return float(2 * stats.norm.sf(abs(z)))


def ratio_difference(a: Ratio, b: Ratio) -> tuple[float | None, float | None]:
    """z and two-sided p of b - a (independent arms)."""
    if a.value is None or b.value is None or a.se is None or b.se is None:
        return None, None
    se = math.hypot(a.se, b.se)
    if se == 0:
        return None, None
    z = (b.value - a.value) / se
    return z, two_sided_p(z)


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> tuple[float | None, float | None]:
    """Two-proportion z-test (pooled) of p2 - p1: z and two-sided p."""
    if n1 <= 0 or n2 <= 0:
        return None, None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None, None
    z = (k2 / n2 - k1 / n1) / se
    return z, two_sided_p(z)


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float | None, float | None]:
    """Welch's t-test of mean(b) - mean(a): t and two-sided p."""
    if len(a) < 2 or len(b) < 2:
        return None, None
    result = stats.ttest_ind(b, a, equal_var=False)
    t, p = float(result.statistic), float(result.pvalue)
    if math.isnan(t):
        return None, None
    return t, p


def sample_size_ratio(sd_linearised: float, uplift: float, *, alpha: float = 0.05,
                      power: float = 0.8) -> int:  # fmt: skip
    """Accounts per arm to detect ``uplift`` (e.g. 0.05) in a recovery rate whose per-account
    linearised residual (y_i - R x_i) / xbar has standard deviation ``sd_linearised``, two-sided
    at ``alpha`` with ``power``: n = 2 (z_a/2 + z_b)^2 sd^2 / uplift^2."""
    za, zb = stats.norm.isf(alpha / 2), stats.norm.isf(1 - power)
    return math.ceil(2 * (za + zb) ** 2 * sd_linearised**2 / uplift**2)


def sample_size_proportion(p: float, uplift: float, *, alpha: float = 0.05,
                           power: float = 0.8) -> int:  # fmt: skip
    """Trials per arm to detect p -> p + uplift, two-sided at ``alpha`` with ``power``."""
    za, zb = stats.norm.isf(alpha / 2), stats.norm.isf(1 - power)
    p2 = p + uplift
    pbar = (p + p2) / 2
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p * (1 - p) + p2 * (1 - p2))
    return math.ceil(num**2 / uplift**2)


def linearised_sd(ys: Sequence[float], xs: Sequence[float]) -> float:
    """The standard deviation of (y_i - R x_i) / xbar: what ``sample_size_ratio`` needs."""
    r = ratio(ys, xs)
    if r.value is None or r.se is None:
        return 0.0
    return r.se * math.sqrt(r.n)


@dataclass
class ArmResult:
    arm: str
    accounts: int
    currency: str
    past_due_at_entry: Decimal
    collected: Decimal
    recovery_rate: Interval
    contact_rate: Interval
    promise_kept_rate: Interval
    promises: int
    # Against the champion (None for the champion itself).
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "accounts": self.accounts,
            "currency": self.currency,
            "past_due_at_entry": str(self.past_due_at_entry),
            "collected": str(self.collected),
            "recovery_rate": self.recovery_rate.as_dict(),
            "contact_rate": self.contact_rate.as_dict(),
            "promise_kept_rate": self.promise_kept_rate.as_dict(),
            "promises": self.promises,
            "tests": self.tests,
        }


def _floats(rows: Sequence[AccountOutcome]) -> tuple[list[float], list[float]]:
    return [float(r.collected) for r in rows], [float(r.past_due_at_entry) for r in rows]


def per_account_recovery(rows: Sequence[AccountOutcome]) -> list[float]:
    return [float(r.collected / r.past_due_at_entry) for r in rows if r.past_due_at_entry > 0]


def arm_results(
    outcomes: Iterable[AccountOutcome], arms: Sequence[str], champion: str,
    *, alpha: float = 0.05,
) -> list[ArmResult]:  # fmt: skip
    """Each arm's figures per currency (money is never pooled across currencies), in the order
    ``arms`` (then the holdout and any other arm found), each challenger tested against the
    champion in the same currency."""
    by: dict[tuple[str, str], list[AccountOutcome]] = {}
    for o in outcomes:
        by.setdefault((o.currency, o.arm), []).append(o)
    order = {name: i for i, name in enumerate(arms)}
    keys = sorted(by, key=lambda k: (k[0], order.get(k[1], len(order)), k[1]))
    results: list[ArmResult] = []
    for currency, arm in keys:
        rows = by[(currency, arm)]
        ys, xs = _floats(rows)
        rec = ratio(ys, xs)
        promises = sum(r.promises for r in rows)
        result = ArmResult(
            arm=arm,
            accounts=len(rows),
            currency=currency,
            past_due_at_entry=sum((r.past_due_at_entry for r in rows), Decimal(0)),
            collected=sum((r.collected for r in rows), Decimal(0)),
            recovery_rate=rec.interval(),
            contact_rate=wilson(sum(r.contacted for r in rows), len(rows)),
            promise_kept_rate=wilson(sum(r.promises_kept for r in rows), promises),
            promises=promises,
        )
        base = by.get((currency, champion))
        if arm != champion and base:
            bys, bxs = _floats(base)
            z, p = ratio_difference(ratio(bys, bxs), rec)
            t, pw = welch(per_account_recovery(base), per_account_recovery(rows))
            zc, pc = two_proportions(sum(r.contacted for r in base), len(base),
                                     sum(r.contacted for r in rows), len(rows))  # fmt: skip
            zk, pk = two_proportions(sum(r.promises_kept for r in base),
                                     sum(r.promises for r in base),
                                     sum(r.promises_kept for r in rows), promises)  # fmt: skip
            result.tests = {
                "recovery_rate": {"z": z, "p": p, "significant": _sig(p, alpha)},
                "recovery_per_account_welch": {"t": t, "p": pw, "significant": _sig(pw, alpha)},
                "contact_rate": {"z": zc, "p": pc, "significant": _sig(pc, alpha)},
                "promise_kept_rate": {"z": zk, "p": pk, "significant": _sig(pk, alpha)},
            }
        results.append(result)
    return results


def _sig(p: float | None, alpha: float) -> bool | None:
    return None if p is None else p < alpha
