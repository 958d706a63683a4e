"""Checks on holds, the account's status, the destination, consent, the agency and the debt's
age: most block or pass outright."""

from __future__ import annotations

import datetime as dt
from typing import Any

from policies.checks.base import ONE_DAY, Context, Outcome, _pass
from policies.model import BLOCK, DEFER, EMERGENCY_CONTACT, AccountFacts, Step
from policies.pack_model import Rule
from policies.windows import local_midnight_utc


def _hold(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    held = [h for h in rule.params["holds"] if h in facts.holds]
    if not held:
        return _pass(ctx, {"holds": list(rule.params["holds"]), "active": False})
    # A hold that stands for a promise or an arrangement names it.
    refs = {kind: ref for kind, ref in facts.hold_refs if kind in held}
    named = {"refs": refs} if refs else {}
    if step.relation in rule.params.get("except_relations", ()):
        return _pass(ctx, {"holds": held, "allowed_relation": step.relation, **named})
    if step.purpose in rule.params.get("except_purposes", ()):
        return _pass(ctx, {"holds": held, "allowed_purpose": step.purpose, **named})
    return Outcome(BLOCK, {"holds": held, "purpose": step.purpose, **named})


def _needs_hold(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    """A step of one of ``purposes`` goes only while one of ``holds`` is active: a
    verification letter answers an open dispute's verification task, never anyone else."""
    if step.purpose not in rule.params["purposes"]:
        return _pass(ctx, {"purpose": step.purpose})
    held = [h for h in rule.params["holds"] if h in facts.holds]
    if held:
        refs = {kind: ref for kind, ref in facts.hold_refs if kind in held}
        return _pass(ctx, {"purpose": step.purpose, "holds": held,
                           **({"refs": refs} if refs else {})})  # fmt: skip
    return Outcome(BLOCK, {"purpose": step.purpose, "needs": list(rule.params["holds"])})


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
