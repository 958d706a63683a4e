"""What every check reads and returns: the judging context, a rule's outcome, the zones.

A check is a pure function of a rule, a step, the account's facts and the context; it returns an
``Outcome`` (a block, a defer with the time it could lift, or a pass with the hours it allows),
or None for a pass that leaves no evidence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policies.model import PASS, AccountFacts, Step
from policies.pack_model import COUNTRY_FALLBACK_ZONES, Rule

ONE_DAY = dt.timedelta(days=1)
Interval = tuple[dt.datetime, dt.datetime]


@dataclass(slots=True)
class Context:
    day: dt.date  # the consumer's local date being planned
    at: dt.datetime | None  # send mode: the instant judged
    zones: tuple[str, ...]  # candidate zones, the address's first
    trace: bool

    @property
    def count_zone(self) -> str:
        """The zone whose calendar days the frequency rules count in."""
        return self.zones[0] if self.zones else "UTC"


@dataclass(slots=True)
class Outcome:
    outcome: str
    facts: dict[str, Any]
    allowed: tuple[Interval, ...] | None = None  # a timed rule's allowed UTC intervals
    until: dt.datetime | None = None


Check = Callable[[Rule, Step, AccountFacts, Context], Outcome | None]


def _pass(ctx: Context, facts: dict[str, Any]) -> Outcome | None:
    """A passing rule leaves evidence only when tracing (explain)."""
    return Outcome(PASS, facts) if ctx.trace else None


def candidate_zones(facts: AccountFacts, step: Step) -> tuple[str, ...]:
    zones = tuple(dict.fromkeys(facts.address_zones + step.destination_zones))
    return zones or COUNTRY_FALLBACK_ZONES.get(facts.country, ())
