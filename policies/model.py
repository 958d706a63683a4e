"""The gate's inputs (facts about an account and one candidate step) and its output (a verdict).

All instants are naive UTC datetimes; all dates are the consumer's local dates unless named
otherwise. Nothing here reads a clock or a database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

SEND, DEFER, BLOCK = "send", "defer", "block"
PASS = "pass"


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What the gate may know of an account at the moment it judges."""

    account_id: int
    country: str
    region: str | None
    past_due: float
    holds: frozenset[str] = frozenset()
    # (channel, scope) where scope is a contact point id as text, or "*" for the whole channel.
    opt_outs: frozenset[tuple[str, str]] = frozenset()
    address_zones: tuple[str, ...] = ()
    # Outbound call attempts as (instant, outcome), oldest first, known before the judging time.
    call_attempts: tuple[tuple[dt.datetime, str], ...] = ()
    last_conversation: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One candidate contact: a channel and, for channels that need one, a destination."""

    channel: str
    contact_point_id: int | None = None
    destination_zones: tuple[str, ...] = ()
    destination_valid: bool = True


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule_id: str
    outcome: str  # pass | defer | block
    citation: str
    pack_version: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str  # send | defer | block
    reasons: tuple[str, ...]
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    defer_until: dt.datetime | None = None
    # Every rule that did not simply pass; with trace=True, every rule evaluated.
    results: tuple[RuleResult, ...] = ()
    pack_versions: str = ""

    def evidence(self) -> dict[str, Any]:
        """A compact, JSON-ready record of what decided this verdict."""
        return {
            r.rule_id: {"outcome": r.outcome, "citation": r.citation, "facts": r.facts}
            for r in self.results
        }
