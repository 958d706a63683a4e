"""The simulated consumer: hidden ability and willingness to pay drawn from the generated
profile, and how that consumer answers each contact (by channel, local hour, stage and offer),
keeps or breaks promises, pays instalments and cures without contact. Pure and deterministic:
every random draw comes from a generator seeded by a sha256 of (seed, account, day, channel,
kind), never from call order, so two arms that contact a consumer the same way get the same
answer. docs/simulation-model.md states every equation; config/simulation.yaml holds every
parameter."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from outreach.simulation.behaviour_config import (
    CHANNELS,
    HARDSHIP_CAUSES,
    Channel,
    SimParams,
    SimParamsError,
    load_params,
    params_path,
)

__all__ = [
    "CHANNELS",
    "Consumer",
    "Contact",
    "HashRandom",
    "Profile",
    "Response",
    "SimParams",
    "SimParamsError",
    "draw",
    "instalment_payment",
    "load_params",
    "outcome_probabilities",
    "params_path",
    "promise_payment",
    "respond",
    "self_cure",
]

RESPONSE_KINDS = (
    "none", "read", "answer", "wrong_party", "stop", "dispute", "promise", "accept_offer", "pay",
    "hardship",
)  # fmt: skip
# What a right-party contact can lead to, in the order the outcome draw lays them out. Pay comes
# first so that a stronger effect only widens its interval: with common random numbers, every
# consumer who paid under a weaker treatment also pays under a stronger one.
OUTCOMES = ("pay", "accept_offer", "promise", "hardship", "dispute", "stop")
# Channels where someone answers (and may be someone else); the others are read.
ANSWERED = ("call", "agency")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Profile:
    """What the generated portfolio says about an account, as the simulator sees it at the start.
    ``income`` is the stated monthly income (None when none was stated); ``region`` the state or
    province; ``cause`` the recorded cause of delinquency (None when none was recorded)."""

    account_id: int
    balance: Decimal
    past_due: Decimal
    dpd: int
    income: Decimal | None
    product: str
    country: str
    region: str | None
    cause: str | None
    segment: str | None
    currency: str = "USD"


@dataclass(frozen=True)
class Consumer:
    """The hidden state of one simulated consumer, fixed at the start of a simulation.

    ``p_true`` is the probability, under this model, that the consumer pays something on one of
    the ``params.horizon_days`` days from the start (the start day included) under the default
    treatment (``params.default_treatment``), self-cure included; docs/simulation-model.md gives
    the exact computation. It is the score's label ("pays within H days") as the best possible
    model would predict it."""

    account_id: int
    ability: float
    willingness: float
    reach: dict[str, float]
    stop_propensity: float
    dispute_propensity: float
    p_true: float
    hardship_propensity: float = 0.0
    self_cure_hazard: float = 0.0
    owed: Decimal = Decimal(0)  # past due at the start (the balance when nothing is past due)
    cause: str | None = None


@dataclass(frozen=True)
class Contact:
    """One contact the simulation made. ``kind`` is the template or action id; ``local_hour`` the
    consumer's local hour (None: no hour, e.g. a letter); ``offer`` whether it carried a repayment
    offer or self-service link; ``stage`` the ladder stage (its effect multiplier);
    ``recent_contacts`` how many contacts the account had in the 7 days before this one (fatigue)."""

    account_id: int
    channel: str
    kind: str
    day: dt.date
    local_hour: int | None = None
    offer: bool = False
    stage: str | None = None
    recent_contacts: int = 0


@dataclass(frozen=True)
class Response:
    """What the consumer does, on ``day`` (never before the contact's day). ``amount`` is what is
    paid (pay) or promised (promise); ``promise_due`` the day a promise falls due."""

    kind: str
    day: dt.date
    amount: Decimal | None = None
    promise_due: dt.date | None = None
    note: str = field(default="")


# --- randomness ------------------------------------------------------------------------------


_WORDS = struct.Struct(">4Q")
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53: 53 random bits to a float in [0, 1)


class HashRandom(random.Random):
    """A ``random.Random`` whose basic generator is sha256 in counter mode over a key (the way
    the random module documents subclassing: ``random`` and ``getrandbits`` replaced). Seeding is
    one hash instead of a Mersenne Twister's 2.5 KB state, which matters at a draw per account
    per day; the stream depends on the key alone."""

    def __init__(self, key: bytes) -> None:
        """``key``: a sha256 digest (32 bytes) naming the draw."""
        self._key = key
        self._counter = 0
        self._words: list[int] = []
        self._last = 0
        self.gauss_next = None  # random.Random.gauss keeps its spare value here

    def seed(self, a: object = None, version: int = 2) -> None:  # the key is the seed
        self._counter, self._words, self.gauss_next = 0, [], None

    def getstate(self) -> Any:
        return (self._key, self._counter, tuple(self._words))

    def setstate(self, state: Any) -> None:
        key, counter, words = state
        self._key, self._counter, self._words = key, counter, list(words)  # type: ignore[assignment,call-overload]

    def _word(self) -> int:
        """The next 64 random bits: four per sha256 block."""
        if not self._words:
            block = (
                self._key  # already a sha256: the first block
                if self._counter == 0
                else hashlib.sha256(self._key + self._counter.to_bytes(8, "big")).digest()
            )
            self._counter += 1
            self._words = list(_WORDS.unpack(block))[::-1]
        self._last = self._words.pop()
        return self._last

    def random(self) -> float:
        return (self._word() >> 11) * _TO_UNIT

    def uniforms(self, n: int) -> list[float]:
        """The next ``n`` values of ``random()`` at once (the hot path: a draw per contact)."""
        words: list[int] = []
        while len(words) < n:
            if not self._words:
                self._word()  # refills four words and takes one
                words.append(self._last)
                continue
            take = min(n - len(words), len(self._words))
            words += self._words[: -take - 1 : -1]
            del self._words[-take:]
        return [(w >> 11) * _TO_UNIT for w in words]

    def pick(self, u: float, low: int, high: int) -> int:
        """The whole number in [low, high] (inclusive) that the uniform ``u`` falls on."""
        return low + min(high - low, int(u * (high - low + 1)))

    def getrandbits(self, k: int) -> int:
        if k <= 0:
            return 0
        bits, got = 0, 0
        while got < k:
            bits, got = (bits << 64) | self._word(), got + 64
        return bits >> (got - k)


def _key(seed: int, account_id: int, day: object, channel: str, kind: str) -> bytes:
    return hashlib.sha256(f"{seed}:{account_id}:{day}:{channel}:{kind}".encode()).digest()


def _rng(seed: int, account_id: int, day: object, channel: str, kind: str) -> HashRandom:
    """A generator for one draw, seeded by a sha256 of what the draw is about (seed, account,
    day, channel, kind), never by call order."""
    return HashRandom(_key(seed, account_id, day, channel, kind))


def _first_uniform(key: bytes) -> float:
    """``HashRandom(key).random()`` without building the generator (a draw per account per day
    that is almost always "nothing happens")."""
    return (int.from_bytes(key[:8], "big") >> 11) * _TO_UNIT


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- the hidden state --------------------------------------------------------------------------


def _place(table: dict[str, float], country: str, region: str | None) -> float:
    if region is not None and f"{country}-{region}" in table:
        return table[f"{country}-{region}"]
    return table.get(country, 0.0)


def _owed(profile: Profile) -> Decimal:
    return profile.past_due if profile.past_due > 0 else profile.balance


def ability_logit(profile: Profile, params: SimParams) -> float:
    """The observable part of the ability's logit (the hidden noise comes on top)."""
    a = params.hidden.ability
    income = profile.income
    if income is None or income <= 0:
        income = a.reference_income.get(profile.currency) or next(
            iter(a.reference_income.values()), Decimal(1)
        )
    owed = max(_owed(profile), Decimal(1))
    burden = min(5.0, max(-5.0, math.log(float(owed) / float(income))))
    return (
        a.intercept
        + a.burden * burden
        + a.dpd_per_30 * profile.dpd / 30
        + a.cause.get(profile.cause or "", 0.0)
        + a.segment.get(profile.segment or "", 0.0)
        + a.product.get(profile.product, 0.0)
        + _place(a.country, profile.country, profile.region)
    )


def willingness_logit(profile: Profile, params: SimParams) -> float:
    """The observable part of the willingness's logit (the hidden noise comes on top)."""
    w = params.hidden.willingness
    return (
        w.intercept
        + w.dpd_per_30 * profile.dpd / 30
        + w.cause.get(profile.cause or "", 0.0)
        + w.segment.get(profile.segment or "", 0.0)
        + w.product.get(profile.product, 0.0)
        + _place(w.country, profile.country, profile.region)
    )


def _hour_factor(channel: Channel, local_hour: int | None) -> float:
    if local_hour is None:
        return 1.0
    for band in channel.hours:
        if band.from_hour <= local_hour < band.to_hour:
            return band.factor
    return 1.0


def consumer_from(
    profile: Profile, ability: float, willingness: float, params: SimParams
) -> Consumer:
    """The consumer with the given hidden ability and willingness (``draw`` draws them)."""
    return with_p_true([_hidden(profile, ability, willingness, params)], params)[0]


def _hidden(profile: Profile, ability: float, willingness: float, params: SimParams) -> Consumer:
    """The consumer without p_true (computed for many at once)."""
    h = params.hidden
    reach = {
        name: 0.0 if ch.reach == 0 else _sigmoid(_logit(ch.reach) + h.reach_willingness *
                                                 (willingness - 0.5))
        for name, ch in params.channels.items()
    }  # fmt: skip
    cause = profile.cause
    hazard = (
        params.self_cure.base + params.self_cure.ability_willingness * ability * willingness
    ) * params.self_cure.cause_factor.get(cause or "", 1.0)
    consumer = Consumer(
        account_id=profile.account_id,
        ability=ability,
        willingness=willingness,
        reach=reach,
        stop_propensity=min(1.0, h.stop_base + h.stop_unwillingness * (1 - willingness)),
        dispute_propensity=min(1.0, h.dispute_base + h.dispute_cause.get(cause or "", 0.0)),
        p_true=0.0,
        hardship_propensity=min(
            1.0,
            params.responses.hardship_base + params.responses.hardship_cause.get(cause or "", 0.0),
        ),
        self_cure_hazard=min(1.0, hazard),
        owed=_owed(profile),
        cause=cause,
    )
    return consumer


def draw(profiles: Iterable[Profile], params: SimParams, seed: int) -> dict[int, Consumer]:
    """Each profile's consumer: ability and willingness are the sigmoid of the profile's logit
    plus a hidden normal term (sd ``hidden.hidden_noise_sd``) drawn from the account's own
    generator; then the reach per channel, the propensities and p_true."""
    sd = params.hidden.hidden_noise_sd
    hidden: list[Consumer] = []
    for profile in profiles:
        rng = _rng(seed, profile.account_id, "-", "hidden", "draw")
        noise_a, noise_w = rng.gauss(0.0, sd), rng.gauss(0.0, sd)
        ability = _sigmoid(ability_logit(profile, params) + noise_a)
        willingness = _sigmoid(willingness_logit(profile, params) + noise_w)
        hidden.append(_hidden(profile, ability, willingness, params))
    return {c.account_id: c for c in with_p_true(hidden, params)}


# --- one contact ---------------------------------------------------------------------------------


def reach_probability(consumer: Consumer, contact: Contact, params: SimParams) -> float:
    """P(read or answered) for this contact: the consumer's reach times the hour's factor."""
    channel = params.channels[contact.channel]
    return min(1.0, consumer.reach[contact.channel] * _hour_factor(channel, contact.local_hour))


def outcome_probabilities(
    consumer: Consumer, contact: Contact, params: SimParams
) -> dict[str, float]:
    """Given a right-party read or answer: the probability of each outcome (OUTCOMES); what is
    left is no outcome. Scaled down together when they would sum past ``responses.max_total``."""
    r = params.responses
    channel = params.channels[contact.channel]
    effect = channel.effect * params.stages.get(contact.stage or "", 1.0)
    a, w = consumer.ability, consumer.willingness
    accept = 0.0
    if contact.offer:
        bonus = r.accept_hardship_bonus if consumer.cause in HARDSHIP_CAUSES else 0.0
        accept = r.accept_offer * effect * w * (1 + bonus)
    fatigue = 1 + r.fatigue_per_contact * max(0, contact.recent_contacts)
    probs = {
        "pay": r.pay * effect * a * w,
        "accept_offer": accept,
        "promise": r.promise * effect * w,
        "hardship": consumer.hardship_propensity,
        "dispute": consumer.dispute_propensity,
        "stop": consumer.stop_propensity * channel.stop * fatigue,
    }
    total = sum(probs.values())
    if total > r.max_total:
        probs = {k: v * r.max_total / total for k, v in probs.items()}
    return probs


def _outcome(probs: dict[str, float], u: float) -> str | None:
    """The outcome whose interval holds ``u`` (laid out in OUTCOMES order), or None."""
    acc = 0.0
    for kind, p in probs.items():
        acc += p
        if u < acc:
            return kind
    return None


def _pick_share(params: SimParams, u: float) -> float:
    acc = 0.0
    for part in params.payment.part_shares:
        acc += part.weight
        if u < acc:
            return part.share
    return params.payment.part_shares[-1].share


def _amount(
    whole: Decimal, ability: float, u_full: float, u_share: float, params: SimParams
) -> Decimal:
    """All of ``whole`` with P(full) = full_base + full_ability * ability, else a part share."""
    p_full = params.payment.full_base + params.payment.full_ability * ability
    if u_full < p_full:
        return _money(whole)
    return max(CENT, _money(whole * Decimal(str(_pick_share(params, u_share)))))


def respond(consumer: Consumer, contact: Contact, params: SimParams, seed: int) -> list[Response]:
    """What the consumer does about one contact: [none], [wrong_party], or [read|answer] followed
    by at most one outcome (pay, accept_offer, promise, hardship, dispute, stop). Letters are read
    (and answered) a few days after they are sent. The uniforms are drawn in a fixed order
    whatever happens, so the same contact under two parameter sets shares its randomness."""
    channel = params.channels[contact.channel]
    rng = _rng(seed, consumer.account_id, contact.day, contact.channel, contact.kind)
    u_reach, u_party, u_outcome, u_full, u_share, u_promised, u_delay, u_due = rng.uniforms(8)
    delay = rng.pick(u_delay, *channel.read_delay_days)
    promise_delay = rng.pick(u_due, *params.promises.delay_days)
    if u_reach >= reach_probability(consumer, contact, params):
        return [Response("none", contact.day)]
    day = contact.day + dt.timedelta(days=delay)
    if u_party >= channel.right_party:
        return [Response("wrong_party", day)]
    first = Response("answer" if contact.channel in ANSWERED else "read", day)
    kind = _outcome(outcome_probabilities(consumer, contact, params), u_outcome)
    if kind is None:
        return [first]
    if kind == "pay":
        amount = _amount(consumer.owed, consumer.ability, u_full, u_share, params)
        return [first, Response("pay", day, amount=amount)]
    if kind == "promise":
        pr = params.promises
        p_full = pr.amount_full_base + pr.amount_full_ability * consumer.ability
        whole = u_promised < p_full
        promised = consumer.owed if whole else consumer.owed * Decimal(
            str(_pick_share(params, u_share)))  # fmt: skip
        due = day + dt.timedelta(days=promise_delay)
        return [first, Response("promise", day, amount=max(CENT, _money(promised)),
                                promise_due=due)]  # fmt: skip
    return [first, Response(kind, day)]


# --- promises, instalments, self-cure ------------------------------------------------------------


def keep_probability(consumer: Consumer, params: SimParams, *, instalment: bool) -> float:
    k = params.instalments if instalment else params.promises
    return min(1.0, k.base + k.willingness * consumer.willingness + k.ability * consumer.ability)


def _kept(
    consumer: Consumer, amount: Decimal, due_on: dt.date, params: SimParams, seed: int, what: str
) -> tuple[Decimal, dt.date] | None:
    instalment = what == "instalment"
    k = params.instalments if instalment else params.promises
    rng = _rng(seed, consumer.account_id, due_on, what, "keep")
    u_keep, u_full, u_share, u_offset = rng.uniforms(4)
    offset = rng.pick(u_offset, *k.pay_offset_days)
    if u_keep >= keep_probability(consumer, params, instalment=instalment):
        return None
    return _amount(amount, consumer.ability, u_full, u_share, params), due_on + dt.timedelta(
        days=offset
    )


def promise_payment(
    consumer: Consumer, promise_amount: Decimal, due_on: dt.date, params: SimParams, seed: int
) -> tuple[Decimal, dt.date] | None:
    """What is paid on a promise and when, or None: broken. Kept with probability
    base + willingness * w + ability * a (promises.*); all of the promised amount or a part
    (payment.*); paid ``pay_offset_days`` around the due day."""
    return _kept(consumer, promise_amount, due_on, params, seed, "promise")


def instalment_payment(
    consumer: Consumer, amount: Decimal, due_on: dt.date, params: SimParams, seed: int
) -> tuple[Decimal, dt.date] | None:
    """What is paid on an instalment due ``due_on`` and when, or None: missed (instalments.*)."""
    return _kept(consumer, amount, due_on, params, seed, "instalment")


def self_cure(consumer: Consumer, day: dt.date, params: SimParams, seed: int) -> Response | None:
    """A payment made on ``day`` with no contact behind it (probability: the consumer's daily
    self-cure hazard), or None."""
    key = _key(seed, consumer.account_id, day, "none", "self_cure")
    if _first_uniform(key) >= consumer.self_cure_hazard:
        return None
    rng = HashRandom(key)
    _u, u_full, u_share = rng.uniforms(3)
    amount = _amount(consumer.owed, consumer.ability, u_full, u_share, params)
    return Response("pay", day, amount=amount, note="self_cure")


# --- p_true --------------------------------------------------------------------------------------


def _uniform(lo: int, hi: int) -> dict[int, float]:
    return {v: 1.0 / (hi - lo + 1) for v in range(lo, hi + 1)}


def _convolve(*dists: dict[int, float]) -> dict[int, float]:
    out = {0: 1.0}
    for d in dists:
        nxt: dict[int, float] = {}
        for a, pa in out.items():
            for b, pb in d.items():
                nxt[a + b] = nxt.get(a + b, 0.0) + pa * pb
        out = nxt
    return out


class _Lags:
    """For each default-treatment contact: P(a payment it leads to lands within the horizon),
    by the day of the contact (0-based), for an immediate payment, a kept promise and a paid first
    instalment. The same for every consumer, so computed once per ``draw``."""

    def __init__(self, params: SimParams) -> None:
        h = params.horizon_days
        self.within: list[tuple[list[float], list[float], list[float]]] = []
        for contact in params.default_treatment:
            read = _uniform(*params.channels[contact.channel].read_delay_days)
            promise = _convolve(
                read,
                _uniform(*params.promises.delay_days),
                _uniform(*params.promises.pay_offset_days),
            )
            first = params.instalments.first_due_days
            instalment = _convolve(
                read, {first: 1.0}, _uniform(*params.instalments.pay_offset_days)
            )
            self.within.append(
                tuple(  # type: ignore[arg-type]
                    [sum(p for lag, p in dist.items() if t + lag <= h - 1) for t in range(h)]
                    for dist in (read, promise, instalment)
                )
            )


def with_p_true(
    consumers: list[Consumer], params: SimParams, lags: _Lags | None = None
) -> list[Consumer]:
    """p_true under the default treatment. Each day t = 0..H-1 while the consumer is *active*,
    each default contact c is made with probability per_week/7; it reaches the right party with
    probability reach*hour*right_party, and then has an outcome with the probabilities of
    ``outcome_probabilities`` (no fatigue: recent_contacts = 0). Any outcome ends the default
    treatment (the consumer has paid, promised, accepted, or asked for a pause, a dispute or a
    stop); a pay outcome pays when read, a promise pays if kept, an accepted offer pays if the
    first instalment is paid, each counting only when the payment lands before day H. Self-cure
    is an independent daily hazard. So, with x_c(t) = P(contact c on day t leads to a payment
    landing within H) and o_c = P(contact c has any outcome):

        active(0) = 1;  active(t+1) = active(t) * prod_c (1 - pi_c * o_c)
        P(contacts pay) = sum_t active(t) * (1 - prod_c (1 - pi_c * x_c(t)))
        p_true = 1 - (1 - P(contacts pay)) * (1 - self_cure_hazard) ** H
    """
    if not consumers:
        return []
    lags = lags or _Lags(params)
    h = params.horizon_days
    keep_p = np.array([keep_probability(c, params, instalment=False) for c in consumers])
    keep_i = np.array([keep_probability(c, params, instalment=True) for c in consumers])
    no_pay = np.ones((len(consumers), h))  # P(no contact that day leads to a payment within H)
    no_outcome = np.ones(len(consumers))  # P(no contact that day has an outcome)
    for contact, within in zip(params.default_treatment, lags.within, strict=True):
        ch = params.channels[contact.channel]
        pi = contact.per_week / 7
        reached, pay, promise, accept, outcome = (np.empty(len(consumers)) for _ in range(5))
        for n, consumer in enumerate(consumers):
            probe = Contact(
                consumer.account_id, contact.channel, "default", dt.date(2000, 1, 1),
                contact.local_hour, contact.offer, contact.stage,
            )  # fmt: skip
            probs = outcome_probabilities(consumer, probe, params)
            reached[n] = reach_probability(consumer, probe, params) * ch.right_party
            pay[n], promise[n], accept[n] = probs["pay"], probs["promise"], probs["accept_offer"]
            outcome[n] = sum(probs.values())
        w_pay, w_promise, w_accept = (np.array(w) for w in within)
        pays = reached[:, None] * (
            pay[:, None] * w_pay[None, :]
            + (promise * keep_p)[:, None] * w_promise[None, :]
            + (accept * keep_i)[:, None] * w_accept[None, :]
        )
        no_pay *= 1 - pi * pays
        no_outcome *= 1 - pi * reached * outcome
    active = np.ones(len(consumers))
    paid = np.zeros(len(consumers))
    for t in range(h):
        paid += active * (1 - no_pay[:, t])
        active = active * no_outcome
    cure = np.array([c.self_cure_hazard for c in consumers])
    p_true = 1 - (1 - paid) * (1 - cure) ** h
    return [replace(c, p_true=float(p)) for c, p in zip(consumers, p_true, strict=True)]
