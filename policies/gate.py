"""The gate: evaluate every rule in force for a step and combine them into one verdict.

Plan mode (``at=None``) gives the send window for the consumer's local ``day``. Send mode
(``at`` set) judges one instant: it must lie inside the same window, recomputed from the facts
known at that instant. Any block wins over any defer; a step with no block and no defer is sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from policies.model import BLOCK, DEFER, PASS, SEND, AccountFacts, RuleResult, Step, Verdict
from policies.packs import COUNTRY_FALLBACK_ZONES, Rule, pack_versions, rules_for
from policies.windows import common_window, local_date, local_midnight_utc, local_time_text

ONE_DAY = dt.timedelta(days=1)


@dataclass(slots=True)
class Context:
    day: dt.date  # the consumer's local date being planned
    at: dt.datetime | None  # send mode: the instant judged
    zones: tuple[str, ...]  # candidate zones, the address's first
    trace: bool


@dataclass(slots=True)
class Outcome:
    outcome: str
    facts: dict[str, Any]
    window: tuple[dt.datetime, dt.datetime] | None = None
    until: dt.datetime | None = None


Check = Callable[[Rule, Step, AccountFacts, Context], Outcome | None]


def candidate_zones(facts: AccountFacts, step: Step) -> tuple[str, ...]:
    zones = tuple(dict.fromkeys(facts.address_zones + step.destination_zones))
    return zones or COUNTRY_FALLBACK_ZONES.get(facts.country, ())


def _hold(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    hold = rule.params["hold"]
    if hold in facts.holds:
        return Outcome(BLOCK, {"hold": hold})
    return Outcome(PASS, {"hold": hold, "active": False}) if ctx.trace else None


def _not_delinquent(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if facts.past_due <= 0:
        return Outcome(BLOCK, {"past_due": facts.past_due})
    return Outcome(PASS, {"past_due": facts.past_due}) if ctx.trace else None


def _opted_out(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if facts.opt_outs:
        if (step.channel, "*") in facts.opt_outs:
            return Outcome(BLOCK, {"channel": step.channel, "scope": "whole channel"})
        if (step.channel, str(step.contact_point_id)) in facts.opt_outs:
            return Outcome(BLOCK, {"channel": step.channel, "contact_point": step.contact_point_id})
    return Outcome(PASS, {"opt_outs": len(facts.opt_outs)}) if ctx.trace else None


def _destination(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    # The contact point's id is on the ledger row; the facts say what was wrong with it.
    if step.contact_point_id is None:
        return Outcome(BLOCK, {"destination": None})
    if not step.destination_valid:
        return Outcome(BLOCK, {"destination": "invalid"})
    return Outcome(PASS, {"destination": "valid"}) if ctx.trace else None


def _hours(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    start_h, end_h = rule.params["start_hour"], rule.params["end_hour"]
    hours = f"{start_h:02d}:00-{end_h:02d}:00"
    if not ctx.zones:
        return Outcome(BLOCK, {"zones": [], "hours": hours, "why": "no candidate zone"})
    window = common_window(ctx.day, ctx.zones, start_h, end_h)
    if window is None:
        return Outcome(
            BLOCK,
            {
                "zones": list(ctx.zones),
                "hours": hours,
                "day": str(ctx.day),
                "why": "no instant allowed in every candidate zone",
            },
        )
    if ctx.at is not None and not (window[0] <= ctx.at < window[1]):
        until: dt.datetime | None = None
        if ctx.at < window[0]:
            until = window[0]
        else:
            following = common_window(ctx.day + ONE_DAY, ctx.zones, start_h, end_h)
            until = following[0] if following else None
        return Outcome(
            DEFER,
            {
                "zones": list(ctx.zones),
                "hours": hours,
                "local_times": [local_time_text(ctx.at, z) for z in ctx.zones],
            },
            until=until,
        )
    facts_read: dict[str, Any] = {"zones": list(ctx.zones)}
    if ctx.trace:
        facts_read.update(hours=hours, window_utc=[window[0].isoformat(), window[1].isoformat()])
        if ctx.at is not None:
            facts_read["local_times"] = [local_time_text(ctx.at, z) for z in ctx.zones]
    return Outcome(PASS, facts_read, window=window)


def _counted_call_dates(rule: Rule, facts: AccountFacts, zone_name: str) -> list[dt.date]:
    not_counted = rule.params["not_counted"]
    return [
        local_date(t, zone_name) for t, outcome in facts.call_attempts if outcome not in not_counted
    ]


def _call_cap(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if not facts.call_attempts and not ctx.trace:
        return None
    limit, days = rule.params["max_attempts"], rule.params["days"]
    zone_name = ctx.zones[0] if ctx.zones else "UTC"
    dates = _counted_call_dates(rule, facts, zone_name)

    def count_in_period(last_day: dt.date) -> int:
        first_day = last_day - dt.timedelta(days=days - 1)
        return sum(1 for d in dates if first_day <= d <= last_day)

    count = count_in_period(ctx.day)
    period = [str(ctx.day - dt.timedelta(days=days - 1)), str(ctx.day)]
    if count < limit:
        return (
            Outcome(PASS, {"attempts_in_period": count, "period": period, "limit": limit})
            if ctx.trace
            else None
        )
    free_day = next(
        ctx.day + dt.timedelta(days=k)
        for k in range(1, days + 1)
        if count_in_period(ctx.day + dt.timedelta(days=k)) < limit
    )
    return Outcome(
        DEFER,
        {"attempts_in_period": count, "period": period, "limit": limit, "zone": zone_name},
        until=local_midnight_utc(free_day, zone_name),
    )


def _after_conversation(
    rule: Rule, step: Step, facts: AccountFacts, ctx: Context
) -> Outcome | None:
    if facts.last_conversation is None:
        return Outcome(PASS, {"last_conversation": None}) if ctx.trace else None
    zone_name = ctx.zones[0] if ctx.zones else "UTC"
    conversation_day = local_date(facts.last_conversation, zone_name)
    # The conversation's own day is day 1 of the period: calls resume on day days+1.
    resume_day = conversation_day + dt.timedelta(days=rule.params["days"])
    facts_read = {
        "conversation_day": str(conversation_day),
        "resume_day": str(resume_day),
        "zone": zone_name,
    }
    if ctx.day < resume_day:
        return Outcome(DEFER, facts_read, until=local_midnight_utc(resume_day, zone_name))
    return Outcome(PASS, facts_read) if ctx.trace else None


CHECKS: dict[str, Check] = {
    "hold": _hold,
    "not_delinquent": _not_delinquent,
    "opted_out": _opted_out,
    "destination": _destination,
    "hours": _hours,
    "call_cap": _call_cap,
    "after_conversation": _after_conversation,
}


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day)
    return start, start + ONE_DAY


def evaluate(
    step: Step,
    facts: AccountFacts,
    *,
    day: dt.date,
    at: dt.datetime | None = None,
    trace: bool = False,
) -> Verdict:
    """Judge one step for the consumer's local ``day`` (plan) or at instant ``at`` (send)."""
    if not (trace or facts.holds) and _plain_for(step, facts, day, at):
        # Most steps meet no hold, no opt-out of their channel and no call history a rule
        # objects to: then the verdict depends only on the values below (a passing rule leaves
        # no evidence outside trace mode), and equal inputs share one immutable Verdict.
        return _evaluate_plain(
            step.channel,
            step.contact_point_id is not None,
            step.destination_valid,
            step.destination_zones,
            facts.address_zones,
            facts.country,
            facts.region,
            min(facts.past_due, 1.0),
            day,
            at,
        )
    return _evaluate(step, facts, day=day, at=at, trace=trace)


# Checks that read the call history; every other check reads facts the plain path keeps.
HISTORY_CHECKS = frozenset({"call_cap", "after_conversation"})


def _plain_for(step: Step, facts: AccountFacts, day: dt.date, at: dt.datetime | None) -> bool:
    """True when the verdict does not depend on this account's own history or opt-outs: no
    opt-out of this channel, and no call history or none that any history rule objects to."""
    if facts.opt_outs and any(c == step.channel for c, _ in facts.opt_outs):
        return False
    if step.channel != "call" or not (facts.call_attempts or facts.last_conversation):
        return True
    ctx = Context(day=day, at=at, zones=candidate_zones(facts, step), trace=False)
    return all(
        CHECKS[rule.check](rule, step, facts, ctx) is None
        for rule, _ in rules_for(facts.country, step.channel)
        if rule.check in HISTORY_CHECKS
    )


@lru_cache(maxsize=65536)
def _evaluate_plain(
    channel: str,
    has_destination: bool,
    valid: bool,
    destination_zones: tuple[str, ...],
    address_zones: tuple[str, ...],
    country: str,
    region: str | None,
    past_due: float,
    day: dt.date,
    at: dt.datetime | None,
) -> Verdict:
    step = Step(channel, 0 if has_destination else None, destination_zones, valid)
    facts = AccountFacts(0, country, region, past_due, address_zones=address_zones)
    return _evaluate(step, facts, day=day, at=at, trace=False)


def _evaluate(
    step: Step, facts: AccountFacts, *, day: dt.date, at: dt.datetime | None, trace: bool
) -> Verdict:
    ctx = Context(day=day, at=at, zones=candidate_zones(facts, step), trace=trace)
    blocks: list[str] = []
    defers: list[str] = []
    results: list[RuleResult] = []
    window: tuple[dt.datetime, dt.datetime] | None = None
    until: dt.datetime | None = None
    for rule, version in rules_for(facts.country, step.channel):
        out = CHECKS[rule.check](rule, step, facts, ctx)
        if out is None:
            continue
        if out.outcome == BLOCK:
            blocks.append(rule.rule_id)
        elif out.outcome == DEFER:
            defers.append(rule.rule_id)
            if out.until is not None and (until is None or out.until > until):
                until = out.until
        elif out.window is not None:
            window = (
                out.window
                if window is None
                else (max(window[0], out.window[0]), min(window[1], out.window[1]))
            )
        if trace or out.outcome != PASS or out.window is not None:
            results.append(RuleResult(rule.rule_id, out.outcome, rule.citation, version, out.facts))
    versions = pack_versions(facts.country)
    if blocks:
        return Verdict(BLOCK, tuple(blocks), results=tuple(results), pack_versions=versions)
    if defers:
        return Verdict(
            DEFER, tuple(defers), defer_until=until, results=tuple(results), pack_versions=versions
        )
    if window is None:
        window = _day_bounds(day)  # untimed channels (letters, placements): the whole day
    elif window[0] >= window[1]:
        return Verdict(BLOCK, ("core.quiet_hours",), results=tuple(results), pack_versions=versions)
    return Verdict(
        SEND,
        (),
        window_start=window[0],
        window_end=window[1],
        results=tuple(results),
        pack_versions=versions,
    )
