"""Checks of frequency: call and contact caps over a period of local days, one contact per
person per channel per day across accounts, and the pause after a conversation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from policies.checks.base import ONE_DAY, Context, Outcome, _pass
from policies.model import DEFER, AccountFacts, PastContact, Step
from policies.pack_model import Rule
from policies.windows import local_date, local_midnight_utc


def _cap_outcome(
    dates: list[dt.date], limit: int, days: int, ctx: Context, read: dict[str, Any]
) -> Outcome | None:
    """Pass while fewer than ``limit`` counted contacts fall in the ``days`` local days ending
    on the judged day; else defer to the first day the period has room again."""

    def count_in_period(last_day: dt.date) -> int:
        first_day = last_day - dt.timedelta(days=days - 1)
        return sum(1 for d in dates if first_day <= d <= last_day)

    count = count_in_period(ctx.day)
    read = {
        **read,
        "counted_in_period": count,
        "period": [str(ctx.day - dt.timedelta(days=days - 1)), str(ctx.day)],
        "limit": limit,
        "zone": ctx.count_zone,
    }
    if count < limit:
        return _pass(ctx, read)
    # Contacts dated after the judged day (facts loaded later) can keep the period full beyond
    # ``days``; the period ending ``days`` after the last of them is empty.
    horizon = max(days, (max(dates) - ctx.day).days + days)
    free_day = next(
        ctx.day + dt.timedelta(days=k)
        for k in range(1, horizon + 1)
        if count_in_period(ctx.day + dt.timedelta(days=k)) < limit
    )
    return Outcome(DEFER, read, until=local_midnight_utc(free_day, ctx.count_zone))


def _call_cap(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if not facts.history and not ctx.trace:
        return None
    not_counted = rule.params["not_counted"]
    dates = [
        local_date(h.at, ctx.count_zone)
        for h in facts.history
        if h.channel == "call" and h.outcome not in not_counted
    ]
    limit, days = rule.params["max_attempts"], rule.params["days"]
    out = _cap_outcome(dates, limit, days, ctx, {"not_counted": list(not_counted)})
    if out is not None:
        out.facts["attempts_in_period"] = out.facts["counted_in_period"]
    return out


PERSONAL_PHONE_TYPES = frozenset({"mobile", "landline"})


def _scope_filter(scope: str, step: Step) -> Callable[[PastContact], bool] | None:
    """Which past contacts count for ``scope``, or None when the scope does not cover the step.
    A past contact whose destination is unknown counts wherever it might belong."""
    if scope == "account":
        return lambda h: True
    if scope == "destination":
        # History imported without a destination may have been this number: it counts here.
        return lambda h: h.channel == step.channel and (
            h.contact_point_id is None or h.contact_point_id == step.contact_point_id
        )

    def at_work(phone_type: str | None, workplace: bool) -> bool:
        return workplace or phone_type == "work"

    step_at_work = at_work(step.phone_type, step.is_workplace)
    # A phone of unknown type may be personal or not: both phone scopes cover it.
    unknown_phone = step.phone_type is None and not step.is_workplace
    if scope == "personal_phone":
        if step_at_work or (step.phone_type not in PERSONAL_PHONE_TYPES and not unknown_phone):
            return None
        return lambda h: h.phone_type is None or not at_work(h.phone_type, h.is_workplace)
    if scope == "other_phone":
        if not step_at_work and not unknown_phone:
            return None
        return lambda h: h.phone_type is None or at_work(h.phone_type, h.is_workplace)
    if scope == "workplace":
        if not step_at_work:
            return None
        return lambda h: at_work(h.phone_type, h.is_workplace)
    raise ValueError(f"unknown scope {scope!r}")


CAP_SCOPES = ("account", "destination", "personal_phone", "other_phone", "workplace")


# Whom a cap counts for: the debt (the account's own contacts) or the consumer (every account
# of the person: AccountFacts.household_history too). Each rule says which, from its source.
CAP_PER = ("debt", "consumer")


def _contact_cap(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    p = rule.params
    scope = p.get("scope", "account")
    per = p.get("per", "debt")
    history = facts.history + facts.household_history if per == "consumer" else facts.history
    if not history and not ctx.trace:
        return None
    belongs = _scope_filter(scope, step)
    if belongs is None:
        return _pass(ctx, {"scope": scope, "applies": False})
    channels = p["counted_channels"]
    outcomes, not_counted = p.get("counted_outcomes"), p.get("not_counted", ())
    counted = [
        h
        for h in history
        if h.channel in channels
        and (outcomes is None or h.outcome in outcomes)
        and h.outcome not in not_counted
        and belongs(h)
    ]
    read: dict[str, Any] = {"scope": scope, "per": per}
    others = sorted({h.account_id for h in counted if h.account_id is not None})
    if others:
        read["other_accounts_counted"] = others
    dates = [local_date(h.at, ctx.count_zone) for h in counted]
    return _cap_outcome(dates, p["max_attempts"], p["days"], ctx, read)


def _household(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    """One contact per person per channel per local day across their accounts: a contact of
    the same person on another account, on this channel and this day (sent, being sent, or
    planned for a higher-priority account), defers this one to the next local day."""
    if not facts.householding:
        return _pass(ctx, {"householding": False})
    others = sorted(
        {
            h.account_id
            for h in facts.household_history
            if h.channel == step.channel
            and h.account_id is not None
            and local_date(h.at, ctx.count_zone) == ctx.day
        }
    )
    read: dict[str, Any] = {"channel": step.channel, "day": str(ctx.day), "zone": ctx.count_zone}
    if not others:
        return _pass(ctx, read)
    until = local_midnight_utc(ctx.day + ONE_DAY, ctx.count_zone)
    return Outcome(DEFER, {**read, "contacted_on_accounts": others}, until=until)


def _after_conversation(
    rule: Rule, step: Step, facts: AccountFacts, ctx: Context
) -> Outcome | None:
    if facts.last_conversation is None:
        return _pass(ctx, {"last_conversation": None})
    zone_name = ctx.count_zone
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
    return _pass(ctx, facts_read)
