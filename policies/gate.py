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
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from operator import attrgetter
from typing import Any

from policies.calendar import validation_period
from policies.model import (
    BLOCK,
    DEFER,
    EMERGENCY_CONTACT,
    PASS,
    SEND,
    AccountFacts,
    PastContact,
    RuleResult,
    Step,
    TimeBlock,
    Verdict,
)
from policies.packs import (
    COUNTRY_FALLBACK_ZONES,
    Jurisdiction,
    Rule,
    jurisdiction,
    pack_versions,
    rules_for,
)
from policies.timeblocks import format_blocks
from policies.windows import (
    common_window,
    local_date,
    local_midnight_utc,
    local_time_text,
    local_to_utc,
)

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


# --- holds, status, destination -----------------------------------------------------------------


def _hold(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    held = [h for h in rule.params["holds"] if h in facts.holds]
    if not held:
        return _pass(ctx, {"holds": list(rule.params["holds"]), "active": False})
    if step.relation in rule.params.get("except_relations", ()):
        return _pass(ctx, {"holds": held, "allowed_relation": step.relation})
    if step.purpose in rule.params.get("except_purposes", ()):
        return _pass(ctx, {"holds": held, "allowed_purpose": step.purpose})
    return Outcome(BLOCK, {"holds": held, "purpose": step.purpose})


def _hold_period(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    """Holds whose effect runs by the calendar: a default length when no end is recorded,
    and days after the recorded end."""
    default_days = rule.params.get("default_days")
    after = dt.timedelta(days=rule.params.get("days_after_end", 0))
    for hp in facts.hold_periods:
        if hp.kind not in rule.params["holds"] or hp.started_on > ctx.day:
            continue
        end = hp.ended_on
        if end is None and default_days is not None:
            end = hp.started_on + dt.timedelta(days=default_days)
        last_blocked = None if end is None else end + after
        if last_blocked is None or ctx.day < last_blocked:
            return Outcome(
                BLOCK,
                {
                    "hold": hp.kind,
                    "started_on": str(hp.started_on),
                    "recorded_end": str(hp.ended_on) if hp.ended_on else None,
                    "blocked_until": str(last_blocked) if last_blocked else "open",
                },
            )
    return _pass(ctx, {"holds": list(rule.params["holds"]), "active": False})


def _not_delinquent(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if facts.past_due <= 0:
        return Outcome(BLOCK, {"past_due": facts.past_due})
    return _pass(ctx, {"past_due": facts.past_due})


def _opted_out(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if facts.opt_outs:
        if (step.channel, "*") in facts.opt_outs:
            return Outcome(BLOCK, {"channel": step.channel, "scope": "whole channel"})
        if (step.channel, str(step.contact_point_id)) in facts.opt_outs:
            return Outcome(BLOCK, {"channel": step.channel, "contact_point": step.contact_point_id})
    return _pass(ctx, {"opt_outs": len(facts.opt_outs)})


def _destination(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    # The contact point's id is on the ledger row; the facts say what was wrong with it.
    if step.contact_point_id is None:
        return Outcome(BLOCK, {"destination": None})
    if not step.destination_valid:
        return Outcome(BLOCK, {"destination": "invalid"})
    return _pass(ctx, {"destination": "valid"})


def _third_party(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if step.relation != EMERGENCY_CONTACT:
        return _pass(ctx, {"relation": step.relation})
    read = {
        "relation": step.relation,
        "purpose": step.purpose,
        "debtor_reachable_destinations": facts.reachable_destinations,
    }
    if facts.reachable_destinations == 0 and step.purpose in rule.params["allowed_purposes"]:
        return _pass(ctx, read)
    return Outcome(BLOCK, read)


def _consent(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    dialers = rule.params.get("dialers")
    phone_types = rule.params["phone_types"]
    read = {"channel": step.channel, "phone_type": step.phone_type, "consent": step.consent}
    if step.channel == "call" and dialers is not None and step.dialer not in dialers:
        return _pass(ctx, {**read, "dialer": step.dialer, "needs_consent": False})
    # A phone of unknown type may be one of ``phone_types`` (a number that takes texts is most
    # likely a mobile): it needs consent until it is known not to be.
    if phone_types is not None and step.phone_type is not None and step.phone_type not in phone_types:
        return _pass(ctx, {**read, "needs_consent": False})
    if step.consent:
        return _pass(ctx, read)
    return Outcome(BLOCK, read)


def _workplace_email(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    read = {"workplace": step.is_workplace, "used_or_agreed": step.used_by_consumer}
    if step.is_workplace and not step.used_by_consumer:
        return Outcome(BLOCK, read)
    return _pass(ctx, read)


def _workplace_calls(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if step.no_calls_at_work:
        return Outcome(BLOCK, {"employer_forbids_calls": True})
    return _pass(ctx, {"employer_forbids_calls": False})


def _agency_approved(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    read = {"agency": step.agency, "approved": step.agency_approved}
    return _pass(ctx, read) if step.agency and step.agency_approved else Outcome(BLOCK, read)


def _agency_assigned(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    read = {"agency": step.agency}
    if step.agency:
        return _pass(ctx, read)
    why = "no licensed, approved agency with capacity left"
    until = local_midnight_utc(ctx.day + ONE_DAY, ctx.count_zone)
    return Outcome(DEFER, {**read, "why": why}, until=until)


def _min_balance(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    read = {"balance": facts.balance, "min_balance": rule.params["min_balance"]}
    return _pass(ctx, read) if facts.balance >= rule.params["min_balance"] else Outcome(BLOCK, read)


def _final_notice_wait(
    rule: Rule, step: Step, facts: AccountFacts, ctx: Context
) -> Outcome | None:
    sent = facts.final_notice_sent
    read: dict[str, Any] = {
        "final_notice_sent": str(sent) if sent else None,
        "days": rule.params["days"],
    }
    if sent is None:
        return Outcome(BLOCK, {**read, "why": "no final notice on record"})
    ready = sent + dt.timedelta(days=rule.params["days"])
    if ctx.day < ready:
        return Outcome(BLOCK, {**read, "earliest": str(ready)})
    return _pass(ctx, read)


def _time_barred(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    barred = facts.limitation_date is not None and ctx.day >= facts.limitation_date
    read = {
        "limitation_date": str(facts.limitation_date) if facts.limitation_date else None,
        "time_barred": barred,
        "legal_or_threat": step.channel == "legal" or step.threatens_suit,
    }
    if barred and read["legal_or_threat"]:
        return Outcome(BLOCK, read)
    return _pass(ctx, read)


def _time_barred_disclosure(
    rule: Rule, step: Step, facts: AccountFacts, ctx: Context
) -> Outcome | None:
    # A state that requires a disclosure on time-barred debt (policies.disclosures): the letters
    # and emails carry it; a text cannot hold it, so none goes out.
    from policies.disclosures import time_barred_disclosure

    barred = facts.limitation_date is not None and ctx.day >= facts.limitation_date
    disclosure = time_barred_disclosure(facts.country, facts.region, facts.role)
    read = {
        "limitation_date": str(facts.limitation_date) if facts.limitation_date else None,
        "time_barred": barred,
        "disclosure": disclosure.disclosure_id if disclosure else None,
    }
    if barred and disclosure is not None:
        return Outcome(BLOCK, read)
    return _pass(ctx, read)


def _scra(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    checked = facts.scra_checked_on
    read: dict[str, Any] = {
        "checked_on": str(checked) if checked else None,
        "active_duty": facts.scra_active_duty,
        "max_age_days": rule.params["max_age_days"],
    }
    if facts.scra_active_duty:
        return Outcome(BLOCK, read)
    if checked is None or (ctx.day - checked).days > rule.params["max_age_days"] or checked > ctx.day:
        return Outcome(BLOCK, {**read, "why": "no current military-status check"})
    return _pass(ctx, read)


# --- Regulation F validation --------------------------------------------------------------------


def _validation_notice(
    rule: Rule, step: Step, facts: AccountFacts, ctx: Context
) -> Outcome | None:
    if step.purpose in rule.params.get("except_purposes", ()):
        return _pass(ctx, {"purpose": step.purpose})
    initial, sent = facts.initial_communication, facts.validation_notice_sent
    read: dict[str, Any] = {
        "initial_communication": str(initial) if initial else None,
        "validation_notice_sent": str(sent) if sent else None,
    }
    if sent is not None or initial is None:
        return _pass(ctx, read)
    deadline = initial + dt.timedelta(days=rule.params["days"])
    read["deadline"] = str(deadline)
    if ctx.day > deadline:
        return Outcome(BLOCK, read)
    return _pass(ctx, read)


def _itemization(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    """A validation notice only with an itemization it can state truly: a reference date of
    1006.34(b)(3) with its amount, and figures since that add up to the current amount."""
    if step.purpose != "validation_notice":
        return _pass(ctx, {"purpose": step.purpose})
    read = {"purpose": step.purpose, "itemization_issue": facts.itemization_issue}
    if facts.itemization_issue is not None:
        return Outcome(BLOCK, read)
    return _pass(ctx, read)


def _period(rule: Rule, sent: dt.date) -> tuple[dt.date, dt.date]:
    return validation_period(sent, rule.params["receipt_business_days"], rule.params["period_days"])


def _validation_dispute(
    rule: Rule, step: Step, facts: AccountFacts, ctx: Context
) -> Outcome | None:
    kinds = rule.params["holds"]
    open_holds = [
        hp
        for hp in facts.hold_periods
        if hp.kind in kinds
        and hp.started_on <= ctx.day
        and (hp.ended_on is None or hp.ended_on > ctx.day)
    ]
    undated = [k for k in kinds if k in facts.holds and not any(h.kind == k for h in open_holds)]
    if not open_holds and not undated:
        return _pass(ctx, {"open_disputes": 0})
    if step.purpose in rule.params.get("except_purposes", ()):
        return _pass(ctx, {"purpose": step.purpose})
    sent = facts.validation_notice_sent
    if sent is None or undated:
        return Outcome(
            BLOCK,
            {
                "holds": sorted({h.kind for h in open_holds} | set(undated)),
                "why": "validation notice date or dispute date unknown: taken as within the "
                "validation period",
            },
        )
    receipt, last_day = _period(rule, sent)
    read: dict[str, Any] = {
        "validation_notice_sent": str(sent),
        "assumed_receipt": str(receipt),
        "validation_period_ends": str(last_day),
    }
    inside = [h for h in open_holds if h.started_on <= last_day]
    if inside:
        h = inside[0]
        return Outcome(BLOCK, {**read, "hold": h.kind, "received_on": str(h.started_on)})
    late = open_holds[0]
    # A dispute after the period does not stop collection under 1006.38; its evidence is kept
    # even outside trace mode, so the decision shows why it did not.
    return Outcome(
        PASS, {**read, "hold": late.kind, "received_on": str(late.started_on), "within": False}
    )


def _validation_period(
    rule: Rule, step: Step, facts: AccountFacts, ctx: Context
) -> Outcome | None:
    sent = facts.validation_notice_sent
    if sent is None:
        return Outcome(BLOCK, {"validation_notice_sent": None})
    receipt, last_day = _period(rule, sent)
    read = {
        "validation_notice_sent": str(sent),
        "assumed_receipt": str(receipt),
        "validation_period_ends": str(last_day),
    }
    if ctx.day <= last_day:
        until = local_midnight_utc(last_day + ONE_DAY, ctx.count_zone)
        return Outcome(DEFER, read, until=until)
    return _pass(ctx, read)


def _credit_report(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if step.purpose != "credit_report":
        return _pass(ctx, {"purpose": step.purpose})
    if facts.last_conversation is not None:
        return _pass(ctx, {"conversation": facts.last_conversation.isoformat() + "Z"})
    days = dt.timedelta(days=rule.params["days"])
    failed = {
        h.contact_point_id
        for h in facts.history
        if h.outcome in ("bounced", "returned_mail", "failed")
    }
    sent = [
        local_date(h.at, ctx.count_zone)
        for h in facts.history
        if h.channel in ("letter", "email")
        and h.outcome in ("sent", "delivered")
        and h.contact_point_id not in failed
    ]
    read: dict[str, Any] = {"messages_without_bounce": [str(d) for d in sent]}
    if any(d + days <= ctx.day for d in sent):
        return _pass(ctx, read)
    if sent:
        return Outcome(DEFER, read, until=local_midnight_utc(min(sent) + days, ctx.count_zone))
    return Outcome(BLOCK, read)


# --- time of day --------------------------------------------------------------------------------


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
    return Outcome(PASS, facts_read, allowed=(window,))


def _clock_utc(day: dt.date, minutes: int, zone_name: str) -> dt.datetime:
    if minutes >= 1440:
        return local_midnight_utc(day + ONE_DAY, zone_name)
    return local_to_utc(day, minutes // 60, minutes % 60, zone_name)


def _merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@lru_cache(maxsize=4096)
def stated_blocked(
    day: dt.date, zones: tuple[str, ...], blocks: tuple[TimeBlock, ...]
) -> tuple[Interval, ...]:
    """The UTC intervals around local ``day`` that fall in a stated block in any candidate zone
    (the consumer's own clock may be any of them), merged."""
    spans: list[Interval] = []
    for zone_name in zones:
        for offset in (-1, 0, 1):
            local_day = day + dt.timedelta(days=offset)
            for b in blocks:
                if local_day.weekday() in b.weekdays:
                    spans.append(
                        (
                            _clock_utc(local_day, b.start, zone_name),
                            _clock_utc(local_day, b.end, zone_name),
                        )
                    )
    return tuple(_merge(spans))


def _stated_times(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if not facts.inconvenient_times:
        return _pass(ctx, {"stated_inconvenient": []})
    zones = ctx.zones or ("UTC",)
    blocked = stated_blocked(ctx.day, zones, facts.inconvenient_times)
    read: dict[str, Any] = {"stated_inconvenient": format_blocks(facts.inconvenient_times),
                            "zones": list(zones)}  # fmt: skip
    if ctx.at is not None:
        for start, end in blocked:
            if start <= ctx.at < end:
                read["local_times"] = [local_time_text(ctx.at, z) for z in zones]
                return Outcome(DEFER, read, until=end)
        return _pass(ctx, read)
    lo = min(local_midnight_utc(ctx.day - ONE_DAY, z) for z in zones)
    hi = max(local_midnight_utc(ctx.day + 2 * ONE_DAY, z) for z in zones)
    allowed: list[Interval] = []
    cursor = lo
    for start, end in blocked:
        if start > cursor:
            allowed.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < hi:
        allowed.append((cursor, hi))
    return Outcome(PASS, read, allowed=tuple(allowed))


# --- frequency ----------------------------------------------------------------------------------


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


CHECKS: dict[str, Check] = {
    "hold": _hold,
    "hold_period": _hold_period,
    "not_delinquent": _not_delinquent,
    "opted_out": _opted_out,
    "destination": _destination,
    "third_party": _third_party,
    "consent": _consent,
    "workplace_email": _workplace_email,
    "workplace_calls": _workplace_calls,
    "agency_approved": _agency_approved,
    "agency_assigned": _agency_assigned,
    "min_balance": _min_balance,
    "final_notice_wait": _final_notice_wait,
    "time_barred": _time_barred,
    "time_barred_disclosure": _time_barred_disclosure,
    "scra": _scra,
    "validation_notice": _validation_notice,
    "itemization": _itemization,
    "validation_dispute": _validation_dispute,
    "validation_period": _validation_period,
    "credit_report": _credit_report,
    "hours": _hours,
    "stated_times": _stated_times,
    "call_cap": _call_cap,
    "contact_cap": _contact_cap,
    "after_conversation": _after_conversation,
    "household": _household,
}

# Parameters each check requires; under "<check>?" the ones it also accepts.
CHECK_PARAMS: dict[str, tuple[str, ...]] = {
    "hold": ("holds",),
    "hold?": ("except_relations", "except_purposes"),
    "hold_period": ("holds",),
    "hold_period?": ("default_days", "days_after_end"),
    "third_party": ("allowed_purposes",),
    "consent": ("phone_types",),
    "consent?": ("dialers",),
    "scra": ("max_age_days",),
    "min_balance": ("min_balance",),
    "final_notice_wait": ("days",),
    "validation_notice": ("days",),
    "validation_notice?": ("except_purposes",),
    "validation_dispute": ("holds", "receipt_business_days", "period_days"),
    "validation_dispute?": ("except_purposes",),
    "validation_period": ("receipt_business_days", "period_days"),
    "credit_report": ("days",),
    "hours": ("start_hour", "end_hour"),
    "call_cap": ("max_attempts", "days", "not_counted"),
    "contact_cap": ("max_attempts", "days", "counted_channels"),
    "contact_cap?": ("counted_outcomes", "not_counted", "scope", "per"),
    "after_conversation": ("days",),
}

# Checks that read the account's own history, dates or stated times. Every other check reads
# only the step, the jurisdiction, the zones, the day, and holds or opt-outs (which the plain
# path requires to be absent).
ACCOUNT_CHECKS = frozenset(
    {
        "hold_period",
        "third_party",
        "time_barred",
        "time_barred_disclosure",
        "scra",
        "validation_notice",
        "itemization",
        "validation_dispute",
        "validation_period",
        "credit_report",
        "stated_times",
        "call_cap",
        "contact_cap",
        "after_conversation",
        "min_balance",
        "final_notice_wait",
        "household",
    }
)


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
