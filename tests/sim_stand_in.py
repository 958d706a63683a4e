"""A tiny stand-in for the behavioural model (``outreach.simulation.behaviour``'s interface), for
the engine's tests only: simple, deterministic rules keyed on the account id, so a test knows who
will say STOP, who will dispute and who will pay. Randomness comes from a hash of (seed, account,
day, channel, kind), never from call order, as the real model's does."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class SimParams:
    horizon_days: int = 30
    stop_every: int = 5  # every fifth account says STOP to its first text
    dispute_every: int = 7  # every seventh account disputes whatever it receives


@dataclass(frozen=True)
class Profile:
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
    account_id: int
    ability: float
    willingness: float
    reach: dict[str, float]
    stop_propensity: float
    dispute_propensity: float
    p_true: float
    owed: Decimal = Decimal(0)


@dataclass(frozen=True)
class Contact:
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
    kind: str
    day: dt.date
    amount: Decimal | None = None
    promise_due: dt.date | None = None
    note: str = field(default="")


def load_params(path: object = None) -> SimParams:
    return SimParams()


def _u(*parts: object) -> float:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def draw(profiles: Iterable[Profile], params: SimParams, seed: int) -> dict[int, Consumer]:
    out = {}
    for p in profiles:
        ability, willingness = _u(seed, p.account_id, "a"), _u(seed, p.account_id, "w")
        # Who disputes whatever they receive: every seventh account, and every third outside
        # the US (where a dispute holds collection until it is verified).
        disputes = p.account_id % params.dispute_every == 0 or (
            p.country != "US" and p.account_id % 3 == 0
        )
        out[p.account_id] = Consumer(
            p.account_id,
            ability,
            willingness,
            {},
            0.0,
            1.0 if disputes else 0.0,
            ability * willingness,
            p.past_due if p.past_due > 0 else p.balance,
        )
    return out


def respond(consumer: Consumer, contact: Contact, params: SimParams, seed: int) -> list[Response]:
    a, day = consumer.account_id, contact.day
    if consumer.dispute_propensity >= 1:
        return [Response("dispute", day)]
    if a % params.stop_every == 0 and contact.channel == "sms":
        return [Response("stop", day)]
    u = _u(seed, a, day, contact.channel, contact.kind)
    if u < 0.3:
        return [Response("none", day)]
    if u < 0.5:
        return [Response("answer", day)]
    if u < 0.75:
        return [
            Response(
                "promise",
                day,
                (consumer.owed / 2).quantize(Decimal("0.01")),
                day + dt.timedelta(days=3),
            )
        ]
    if u < 0.8 and contact.offer:
        return [Response("accept_offer", day)]
    return [
        Response(
            "pay",
            day + dt.timedelta(days=1),
            (consumer.owed * Decimal(str(round(u, 2)))).quantize(Decimal("0.01")),
        )
    ]


def self_cure(consumer: Consumer, day: dt.date, params: SimParams, seed: int) -> Response | None:
    if _u(seed, consumer.account_id, day, "cure") < 0.01:
        return Response("pay", day, consumer.owed)
    return None


def promise_payment(
    consumer: Consumer, promise_amount: Decimal, due_on: dt.date, params: SimParams, seed: int
) -> tuple[Decimal, dt.date] | None:
    if _u(seed, consumer.account_id, due_on, "promise") < consumer.willingness:
        return promise_amount, due_on
    return None


def instalment_payment(
    consumer: Consumer, amount: Decimal, due_on: dt.date, params: SimParams, seed: int
) -> tuple[Decimal, dt.date] | None:
    if _u(seed, consumer.account_id, due_on, "instalment") < 0.7:
        return amount, due_on
    return None
