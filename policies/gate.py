"""The gate: evaluate every rule in force for a step and combine them into one verdict.

Plan mode (``at=None``) gives the send window for the consumer's local ``day``. Send mode
(``at`` set) judges one instant: it must lie inside the same window, recomputed from the facts
known at that instant. Any block wins over any defer; a step with no block and no defer is sent.
Timed rules contribute the local hours they allow; the window is the longest stretch allowed by
all of them at once.

A defer's ``defer_until`` is the first instant at which the step would be sent: each deferring
rule says when it could lift (a cooldown's day, the end of a stated span), and from the latest of
those the gate judges the step again, instant by instant, as the send-time check would (the next
allowed hour, the end of a stated span, the next day), for at most ``SEARCH_DAYS`` days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import fields, replace
from functools import lru_cache
from operator import attrgetter
from typing import Any

from policies.checks.base import ONE_DAY, Check, Context, Interval, candidate_zones
from policies.checks.registry import ACCOUNT_CHECKS, CHECKS
from policies.model import BLOCK, DEFER, PASS, SEND, AccountFacts, RuleResult, Step, Verdict
from policies.pack_model import Jurisdiction, Rule
from policies.packs import jurisdiction, pack_versions, rules_for
from policies.windows import local_date, local_midnight_utc


@lru_cache(maxsize=4096)
def _jurisdiction(
    country: str, region: str | None, city: str | None, product: str, role: str
) -> Jurisdiction:
    return jurisdiction(country, region, city, product, role)


def jurisdiction_of(facts: AccountFacts) -> Jurisdiction:
    return _jurisdiction(facts.country, facts.region, facts.city, facts.product, facts.role)


def _day_bounds(day: dt.date, zone_name: str) -> Interval:
    """The consumer's local ``day`` as a UTC interval (the day the caps were counted for)."""
    return local_midnight_utc(day, zone_name), local_midnight_utc(day + ONE_DAY, zone_name)


# A step's fields other than its contact point id, in declaration order: with whether it has a
# destination, what the memoized path keys on (the id itself never changes a plain verdict).
_STEP_FIELDS = tuple(f.name for f in fields(Step) if f.name != "contact_point_id")
_step_values = attrgetter(*_STEP_FIELDS)
assert [f.name for f in fields(Step)][:2] == ["channel", "contact_point_id"]


def evaluate(
    step: Step,
    facts: AccountFacts,
    *,
    day: dt.date,
    at: dt.datetime | None = None,
    trace: bool = False,
) -> Verdict:
    """Judge one step for the consumer's local ``day`` (plan) or at instant ``at`` (send).
    A defer carries the first instant at which the step would be sent (``first_allowed``)."""
    verdict = _judge(step, facts, day=day, at=at, trace=trace)
    if verdict.verdict != DEFER:
        return verdict
    return replace(verdict, defer_until=first_allowed(step, facts, verdict, day=day, at=at))


# How far ahead a defer's first allowed instant is searched for, and how many judgements it may
# take (each probe moves on: to a rule's own time, or to the next local day).
SEARCH_DAYS = 14
MAX_PROBES = 64
# Defers that wait for something other than time (an agency's capacity): their own time stands.
NOT_BY_TIME = frozenset({"agency_assigned"})


def first_allowed(
    step: Step, facts: AccountFacts, verdict: Verdict, *, day: dt.date, at: dt.datetime | None
) -> dt.datetime | None:
    """The first instant, from the latest time the deferring rules named, at which the step
    would be sent on the same facts; the rules' own time when none is found within
    ``SEARCH_DAYS`` (a lower bound: nothing is allowed before it)."""
    lower = verdict.defer_until
    j = jurisdiction_of(facts)
    checks = {rule.rule_id: rule.check for rule, _ in rules_for(j, step.channel, day)}
    zones = candidate_zones(facts, step)
    zone_name = zones[0] if zones else "UTC"
    if any(checks.get(r) in NOT_BY_TIME for r in verdict.reasons):
        if lower is not None and at is not None and lower <= at:
            # Waiting on something other than the clock (an agency's capacity), judged at an
            # instant already past the rule's own time: look again the next local day after it.
            return local_midnight_utc(local_date(at, zone_name) + ONE_DAY, zone_name)
        return lower
    t = lower if lower is not None else local_midnight_utc(day + ONE_DAY, zone_name)
    if at is not None and t <= at:
        # Not before the instant judged, which was deferred (only when ``day`` is not ``at``'s
        # local day can a rule name a time before it).
        t = at + dt.timedelta(seconds=1)
    horizon = t + dt.timedelta(days=SEARCH_DAYS)
    for _ in range(MAX_PROBES):
        if t >= horizon:
            break
        probe_day = local_date(t, zone_name)
        probe = _judge(step, facts, day=probe_day, at=t, trace=False)
        if probe.verdict == SEND:
            return t
        until = probe.defer_until if probe.verdict == DEFER else None
        if until is None or until <= t:
            # A block, or a defer naming no later time: try again from the next local day.
            until = local_midnight_utc(probe_day + ONE_DAY, zone_name)
        t = until
    return lower


def _judge(
    step: Step, facts: AccountFacts, *, day: dt.date, at: dt.datetime | None, trace: bool
) -> Verdict:
    """One judgement: each rule's own verdict, a defer with the latest time its rules named."""
    j = jurisdiction_of(facts)
    if not (trace or facts.holds) and _plain_for(step, facts, j, day, at):
        # Most steps meet no hold, no opt-out of their channel and nothing in the account's own
        # history or dates that a rule objects to: then the verdict depends only on the values
        # below (a passing rule leaves no evidence outside trace mode), and equal inputs share
        # one immutable Verdict.
        return _evaluate_plain(
            step.contact_point_id is not None,
            _step_values(step),
            j,
            facts.address_zones,
            min(facts.past_due, 1.0),
            day,
            at,
        )
    return _evaluate(step, facts, j, day=day, at=at, trace=trace)


@lru_cache(maxsize=16384)
def _account_rules(j: Jurisdiction, channel: str, day: dt.date) -> tuple[tuple[Rule, Check], ...]:
    return tuple(
        (rule, CHECKS[rule.check])
        for rule, _ in rules_for(j, channel, day)
        if rule.check in ACCOUNT_CHECKS
    )


def _plain_for(
    step: Step, facts: AccountFacts, j: Jurisdiction, day: dt.date, at: dt.datetime | None
) -> bool:
    """True when no opt-out of this channel exists and every rule that reads the account's own
    history, dates or stated times passes without a word."""
    if facts.opt_outs and any(c == step.channel for c, _ in facts.opt_outs):
        return False
    ctx = Context(day=day, at=at, zones=candidate_zones(facts, step), trace=False)
    rules = _account_rules(j, step.channel, day)
    return all(check(rule, step, facts, ctx) is None for rule, check in rules)


@lru_cache(maxsize=65536)
def _evaluate_plain(
    has_destination: bool,
    step_values: tuple[Any, ...],
    j: Jurisdiction,
    address_zones: tuple[str, ...],
    past_due: float,
    day: dt.date,
    at: dt.datetime | None,
) -> Verdict:
    step = Step(step_values[0], 0 if has_destination else None, *step_values[1:])
    facts = AccountFacts(
        0, j.country, j.region, past_due, address_zones=address_zones, city=j.city,
        product=j.product, role=j.role,
    )  # fmt: skip
    return _evaluate(step, facts, j, day=day, at=at, trace=False, skip=ACCOUNT_CHECKS)


def _intersect(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out = []
    for s1, e1 in a:
        for s2, e2 in b:
            s, e = max(s1, s2), min(e1, e2)
            if s < e:
                out.append((s, e))
    return tuple(sorted(out))


def _evaluate(
    step: Step,
    facts: AccountFacts,
    j: Jurisdiction,
    *,
    day: dt.date,
    at: dt.datetime | None,
    trace: bool,
    skip: frozenset[str] = frozenset(),
) -> Verdict:
    ctx = Context(day=day, at=at, zones=candidate_zones(facts, step), trace=trace)
    blocks: list[str] = []
    defers: list[str] = []
    results: list[RuleResult] = []
    allowed: tuple[Interval, ...] | None = None
    emptied_by: str | None = None
    until: dt.datetime | None = None
    for rule, version in rules_for(j, step.channel, day):
        if rule.check in skip:
            continue
        out = CHECKS[rule.check](rule, step, facts, ctx)
        if out is None:
            continue
        if out.outcome == BLOCK:
            blocks.append(rule.rule_id)
        elif out.outcome == DEFER:
            defers.append(rule.rule_id)
            if out.until is not None and (until is None or out.until > until):
                until = out.until
        elif out.allowed is not None:
            allowed = out.allowed if allowed is None else _intersect(allowed, out.allowed)
            if not allowed and emptied_by is None:
                emptied_by = rule.rule_id
        if trace or out.outcome != PASS or out.allowed is not None or out.facts:
            results.append(RuleResult(rule.rule_id, out.outcome, rule.citation, version, out.facts))
    versions = pack_versions(j, day)
    if blocks:
        return Verdict(BLOCK, tuple(blocks), results=tuple(results), pack_versions=versions)
    if defers:
        return Verdict(
            DEFER, tuple(defers), defer_until=until, results=tuple(results), pack_versions=versions
        )
    if allowed is None:
        # Untimed channels (letters, placements): the whole local day.
        window = _day_bounds(day, ctx.count_zone)
    elif not allowed:
        return Verdict(
            BLOCK, (emptied_by or "core.quiet_hours",), results=tuple(results),
            pack_versions=versions,
        )  # fmt: skip
    else:
        # The longest allowed stretch (the earliest of equals): one window per contact. The
        # starts are naive UTC, compared as they are (``timestamp()`` would read them in the
        # worker's own zone, where a DST night reorders them).
        window = max(allowed, key=lambda iv: (iv[1] - iv[0], dt.datetime.max - iv[0]))
    if at is not None and not (window[0] <= at < window[1]) and allowed is not None:
        # Send mode: every timed rule passed at this instant, so it lies in one of the allowed
        # stretches; report that one.
        window = next((iv for iv in allowed if iv[0] <= at < iv[1]), window)
    return Verdict(
        SEND,
        (),
        window_start=window[0],
        window_end=window[1],
        results=tuple(results),
        pack_versions=versions,
    )
