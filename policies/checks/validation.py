"""Checks of Regulation F's validation: the notice, its itemization, disputes within the
validation period, and the wait before credit reporting."""

from __future__ import annotations

import datetime as dt
from typing import Any

from policies.calendar import validation_period
from policies.checks.base import ONE_DAY, Context, Outcome, _pass
from policies.model import BLOCK, DEFER, PASS, AccountFacts, Step
from policies.pack_model import Rule
from policies.windows import local_date, local_midnight_utc


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
