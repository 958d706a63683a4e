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

# Who runs the system: a first-party creditor collects its own debts; a third-party collector
# (an agency, a debt buyer) is a "debt collector" under Regulation F. Packs apply by role.
CREDITOR, COLLECTOR = "creditor", "collector"
ROLES = (CREDITOR, COLLECTOR)

# Whose destination a step uses.
SELF = "self"
EMERGENCY_CONTACT = "emergency_contact"  # a third party the debtor named (China: locate only)
ESTATE_REPRESENTATIVE = "estate_representative"  # the person handling a deceased's estate
RELATIONS = (SELF, EMERGENCY_CONTACT, ESTATE_REPRESENTATIVE)

# What an action is for, as the ladder declares it. The gates read it where the law
# distinguishes kinds of communication (the notices allowed after a cease request, the
# validation notice itself, a credit report, a locate request to a third party).
PURPOSES = (
    "reminder",
    "validation_notice",
    "verification",
    "final_notice",
    "instalment_offer",
    "termination_notice",  # 1006.6(c)(2)(i): efforts are being terminated
    "remedy_notice",  # 1006.6(c)(2)(ii)-(iii): a remedy may be / will be invoked
    "credit_report",
    "locate",
    "placement",
    "referral",
    # The resolution loop: a reminder the day before a promise falls due, before an instalment,
    # the notice of a missed instalment, the periodic statement of an arrangement.
    "promise_reminder",
    "instalment_reminder",
    "missed_instalment_notice",
    "statement",
)


@dataclass(frozen=True, slots=True)
class PastContact:
    """One outbound contact or attempt already made (ours or imported), for frequency rules."""

    at: dt.datetime
    channel: str  # sms | email | call | letter
    outcome: str  # conversation | no_answer | voicemail | busy | not_in_service | sent | ...
    contact_point_id: int | None = None
    phone_type: str | None = None  # mobile | landline | work, for phones
    is_workplace: bool = False
    # Set for a contact on another account of the same person (AccountFacts.household_history).
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class HoldPeriod:
    """A hold with its dates: active ones and those that ended lately (some rules outlive
    them, e.g. a mental-health crisis moratorium runs 30 days past the treatment's end)."""

    kind: str
    started_on: dt.date
    ended_on: dt.date | None = None  # None: still open


@dataclass(frozen=True, slots=True)
class TimeBlock:
    """A span of local time the consumer said is inconvenient: on these weekdays (0=Monday),
    from ``start`` to ``end`` minutes after local midnight (``end`` up to 1440)."""

    weekdays: frozenset[int]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What the gate may know of an account at the moment it judges."""

    account_id: int
    country: str
    region: str | None
    past_due: float
    holds: frozenset[str] = frozenset()  # kinds of the holds active on the judged day
    # (channel, scope) where scope is a contact point id as text, or "*" for the whole channel.
    opt_outs: frozenset[tuple[str, str]] = frozenset()
    address_zones: tuple[str, ...] = ()
    # Outbound contacts and attempts on every channel, oldest first, known before the judging
    # time (the loader keeps the last 31 days: the longest window a frequency rule reads).
    history: tuple[PastContact, ...] = ()
    last_conversation: dt.datetime | None = None
    city: str | None = None
    product: str = "credit_card"
    role: str = COLLECTOR
    hold_periods: tuple[HoldPeriod, ...] = ()
    inconvenient_times: tuple[TimeBlock, ...] = ()
    # The first communication about this debt, and when the validation notice went out.
    initial_communication: dt.date | None = None
    validation_notice_sent: dt.date | None = None
    limitation_date: dt.date | None = None  # time-barred from this day
    scra_checked_on: dt.date | None = None  # last military-status check (SCRA)
    scra_active_duty: bool = False
    # The debtor's own destinations that are still valid (third-party contact needs none left).
    reachable_destinations: int = 1
    balance: float = 0.0  # the whole balance owed (past_due is the part overdue)
    final_notice_sent: dt.date | None = None  # the final notice before agency or legal action
    # Why the validation notice's itemization cannot be stated (missing | does_not_add_up), or
    # None when it can (12 CFR 1006.34(c)(2)(vi)-(ix)).
    itemization_issue: str | None = None
    # The same person's other accounts: their outbound contacts in the same lookback as
    # ``history``, and those planned or taken for the judged day (each with its account_id).
    # Caps the law counts per consumer (``per="consumer"``) count them with ``history``.
    household_history: tuple[PastContact, ...] = ()
    # One contact per person per channel per day across accounts (core.household_one_per_day),
    # as config/policy.yaml's ``householding`` says.
    householding: bool = False
    # The promise or arrangement a hold stands for, as (hold kind, ref): the promise_open,
    # instalment_plan and settlement_completed holds that outreach.resolution derives.
    hold_refs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One candidate contact: a channel and, for channels that need one, a destination with
    what is known of it, and what the action is for."""

    channel: str
    contact_point_id: int | None = None
    destination_zones: tuple[str, ...] = ()
    destination_valid: bool = True
    purpose: str = "reminder"
    phone_type: str | None = None
    is_workplace: bool = False
    # Prior express consent for this channel at this destination (SMS, autodialed calls,
    # electronic messages where a rule asks for it).
    consent: bool = False
    used_by_consumer: bool = False  # the consumer wrote from this address or agreed to it
    no_calls_at_work: bool = False  # the employer forbids such calls
    relation: str = SELF
    dialer: str = "manual"  # manual | autodialed | prerecorded
    threatens_suit: bool = False
    agency: str | None = None  # the agency a placement goes to, once allocated
    agency_approved: bool = False


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
