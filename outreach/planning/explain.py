"""Explain: every gate's verdict for every due step of one account, with the facts each rule
read, as the planner judges them (``outreach-plan explain``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from outreach.kernel.facts import LOOP_STAGE, AccountRecord
from outreach.kernel.ledger import contact_key
from outreach.planning.history import (
    action_history,
    entry_actions,
    imported_history,
    notice_already_sent,
    prerequisite_block,
)
from outreach.planning.household import Household, load_household, plan_household
from outreach.planning.judging import StepHook, account_pack_versions, choose, party_of
from outreach.planning.ladder import Ladder, loop_facts, not_applicable
from outreach.planning.loop import anchor_of, why_not_due
from outreach.planning.planner import (
    PlannedStep,
    loop_steps,
    plan_account,
    plan_cutoff,
    planned_contact,
    planned_sends,
)
from outreach.resolution.arrangements import arrangement_detail, events_json
from outreach.resolution.events import history
from policies.model import COLLECTOR, SEND, AccountFacts, PastContact, Verdict
from policies.timeblocks import format_blocks


def prime_household(
    conn: Connection,
    ladder: Ladder,
    accounts: dict[int, AccountRecord],
    account_id: int,
    day: dt.date,
    *,
    role: str,
    enabled: bool,
    step_hook: StepHook | None = None,
) -> Household:
    """For explain: load the account's siblings, judge those of higher priority as the plan
    does, and give the account what it sees of them."""
    household = load_household(
        conn, accounts, account_id, account_id, day=day, cutoff=plan_cutoff(day), enabled=enabled
    )

    def plan(account: AccountRecord) -> list[tuple[str, PastContact]]:
        return planned_sends(plan_account(ladder, account, day, role=role, step_hook=step_hook)[2])

    plan_household(household, day, plan, until=account_id)
    return household


def _verdict_dict(v: Verdict) -> dict[str, Any]:
    return {
        "verdict": v.verdict,
        "reasons": list(v.reasons),
        "window_start": v.window_start.isoformat() + "Z" if v.window_start else None,
        "window_end": v.window_end.isoformat() + "Z" if v.window_end else None,
        "defer_until": v.defer_until.isoformat() + "Z" if v.defer_until else None,
        "rules": [
            {
                "rule": r.rule_id,
                "outcome": r.outcome,
                "pack": r.pack_version,
                "citation": r.citation,
                "facts": r.facts,
            }
            for r in v.results
        ],
    }


def _iso(instant: dt.datetime | None) -> str | None:
    return instant.isoformat() + "Z" if instant else None


def explain_facts(account: AccountRecord, facts: AccountFacts, dpd: int | None) -> dict[str, Any]:
    """What the gate read about the account, by id and kind, never a number or an address."""
    return {
        "country": account.country,
        "region": account.region,
        "city": account.city,
        "product": account.product,
        "role": facts.role,
        "days_past_due": dpd,
        # The oldest unpaid due date on the day, and the imported one when payments since the
        # snapshot moved it (docs/resolution.md, Payments).
        "due_date": str(account.due_date) if account.due_date else None,
        "due_date_moved_from": (str(account.episode_due_date) if account.episode_due_date
                                else None),  # fmt: skip
        "past_due": str(account.past_due),
        "balance": str(account.balance),
        # The band of the account's latest score by the active model: the ladder's stage entry
        # may read it (``score_band``), no gate does (docs/score-bands.md).
        "score_band": account.score_band,
        "holds": sorted(account.holds),
        "hold_periods": [
            {"kind": h.kind, "started_on": str(h.started_on),
             "ended_on": str(h.ended_on) if h.ended_on else None}
            for h in facts.hold_periods
        ],
        "opt_outs": sorted(f"{c}:{s}" for c, s in account.opt_outs),
        "address_zones": list(account.address_zones),
        "inconvenient_times": format_blocks(facts.inconvenient_times) or None,
        "initial_communication": str(facts.initial_communication)
        if facts.initial_communication else None,
        "validation_notice_sent": str(facts.validation_notice_sent)
        if facts.validation_notice_sent else None,
        "limitation_date": str(facts.limitation_date) if facts.limitation_date else None,
        "scra_checked_on": str(facts.scra_checked_on) if facts.scra_checked_on else None,
        "scra_active_duty": facts.scra_active_duty,
        "history_31d": [
            {"at": _iso(h.at), "channel": h.channel, "outcome": h.outcome,
             "contact_point_id": h.contact_point_id}
            for h in facts.history
        ],
        "last_conversation": _iso(account.last_conversation),
        "householding": facts.householding,
        "household_31d": [
            {"at": _iso(h.at), "channel": h.channel, "outcome": h.outcome,
             "account_id": h.account_id, "contact_point_id": h.contact_point_id}
            for h in facts.household_history
        ],
        "destinations": [
            {
                "contact_point_id": d.contact_point_id,
                "kind": d.kind,
                "phone_type": d.phone_type,
                "relation": d.relation,
                "zones": list(d.zones),
                "valid": d.valid,
                "workplace": d.is_workplace,
                "consent": {"sms": d.sms_consent, "call": d.call_consent, "email": d.email_consent},
            }
            for d in account.destinations
        ],
    }  # fmt: skip


def explain_account(
    ladder: Ladder,
    account: AccountRecord,
    day: dt.date,
    *,
    role: str = COLLECTOR,
    step_hook: StepHook | None = None,
) -> dict[str, Any]:
    """Every gate's verdict for every due step of one account, with the facts each rule read.

    Pure: the same computation the planner makes (actions in ladder order, each seeing the
    contacts planned before it that day), with tracing on. Destinations appear by contact-point
    id and kind, never by value.
    """
    stage, dpd, day_steps = plan_account(ladder, account, day, role=role, step_hook=step_hook)
    facts = account.gate_facts(role)
    out: dict[str, Any] = {
        "account_id": account.account_ref,
        "as_of": day.isoformat(),
        "ladder_version": ladder.version,
        "pack_versions": account_pack_versions(account, role, day),
        "facts": explain_facts(account, facts, dpd),
        "stage": stage.id if stage else None,
        "actions": [],
    }
    if ladder.model.resolution_actions:
        out["resolution_actions"] = explain_loop(
            ladder, account, day, [s for s in day_steps if s.stage.id != LOOP_STAGE],
            role=role, step_hook=step_hook,
        )  # fmt: skip
    party = party_of(account, role)
    skipped = [
        {"stage": st.id, "why": why}
        for st in ladder.stages
        if (why := not_applicable(st, None, party)) is not None
    ]
    if skipped:
        # Stages an account goes past whatever its days past due: not for its jurisdiction,
        # product or the role we collect in.
        out["stages_not_applicable"] = skipped
    if stage is None:
        out["why_no_stage"] = (
            "nothing past due"
            if account.due_date is None or account.past_due <= 0
            else f"no stage of the ladder matches {dpd} days past due and balance {account.balance}"
            + (f" (score band {account.score_band or 'none'})"
               if any(st.entry.score_band is not None for st in ladder.stages) else "")
        )
        return out
    imported = imported_history(ladder, account, role)
    entries, catch_up = entry_actions(ladder, stage, account, imported, role)
    prerequisite: Verdict | None = None
    if catch_up is not None:
        out["catch_up"] = {
            **catch_up.facts,
            "why": f"stage {stage.id} requires {catch_up.facts['requires_stage']}."
            f"{catch_up.facts['requires_action']} at least {catch_up.facts['min_times']} time(s) "
            f"in this episode and it was taken {catch_up.facts['times']}: the account enters at "
            "that step first",
        }
        if catch_up.times >= catch_up.action.cadence.max_times:
            # It can never be taken again: the stage's own actions stay blocked.
            prerequisite = prerequisite_block(catch_up, account, role, day)
            out["catch_up"]["why"] += (
                "; its cadence is used up, so the stage's actions are blocked "
                "(ladder.prerequisite_unmet)"
            )
            entries = [(stage, a) for a in stage.actions
                       if not_applicable(stage, a, party) is None]  # fmt: skip
    if catch_up is None:
        # The stage's actions that do not apply to the account are not planned: say why.
        for a in stage.actions:
            why = not_applicable(stage, a, party)
            if why is not None:
                out.setdefault("actions_not_applicable", []).append(
                    {"stage": stage.id, "action": a.id, "channel": a.channel,
                     "applies_to": a.applies_to.model_dump(mode="json", exclude_none=True)
                     if a.applies_to else None, "why": why}
                )  # fmt: skip
    for step_stage, action in entries:
        times, last = action_history(step_stage.id, action, account, imported)
        entry: dict[str, Any] = {
            "stage": step_stage.id,
            "action": action.id,
            "channel": action.channel,
            "purpose": action.gate_purpose,
            "cadence": {
                "every_days": action.cadence.every_days,
                "max_times": action.cadence.max_times,
                "times_so_far": times,
                "last": str(last) if last else None,
            },
        }
        if times >= action.cadence.max_times:
            entry["due"] = False
            entry["why"] = "cadence exhausted"
        elif notice_already_sent(action, account, step_stage.id):
            entry["due"] = False
            entry["why"] = f"validation notice already sent on {account.validation_notice_sent_on}"
        elif last is not None and (day - last).days < action.cadence.every_days:
            entry["due"] = False
            entry["why"] = f"next due {last + dt.timedelta(days=action.cadence.every_days)}"
        elif prerequisite is not None:
            entry["due"] = True
            entry["decision"] = _verdict_dict(prerequisite)
        else:
            destination, verdict, judged = choose(
                action, account, facts, day, trace=True, step_hook=step_hook
            )
            entry["due"] = True
            entry["slot"] = times + 1
            entry["key"] = contact_key(
                account.id,
                account.episode,
                step_stage.id,
                action.id,
                times + 1,
                action.channel,
                destination.contact_point_id if destination else None,
            )
            entry["chosen_contact_point"] = destination.contact_point_id if destination else None
            entry["decision"] = _verdict_dict(verdict)
            entry["candidates"] = [
                {"contact_point_id": d.contact_point_id if d else None, **_verdict_dict(v)}
                for d, v in judged
            ]
            if verdict.verdict == SEND:
                planned = PlannedStep(
                    account, step_stage, action, times + 1, destination, verdict, 0
                )
                facts = replace(facts, history=facts.history + (planned_contact(planned),))
        out["actions"].append(entry)
    return out



def explain_resolution(conn: Connection, account_id: int) -> dict[str, Any]:
    """What the resolution loop holds for the account: its arrangement (terms, state, schedule,
    the arrangement's own events) and every resolution event of the account, oldest first
    (outreach.resolution)."""
    return {"arrangement": arrangement_detail(conn, account_id),
            "resolution_events": events_json(history(conn, account_id))}  # fmt: skip


def explain_loop(
    ladder: Ladder,
    account: AccountRecord,
    day: dt.date,
    earlier: list[PlannedStep],
    *,
    role: str,
    step_hook: StepHook | None = None,
) -> dict[str, Any]:
    """The loop's state as stage entries read it, and each resolution action: its anchor, due
    today or why not, and the gate's verdict when due (judged after the stage's ``earlier``
    steps, as the plan judges it)."""
    loop = loop_facts(account, day)
    judged = {s.action.id: s for s in loop_steps(ladder, account, day, earlier, role=role,
                                                 trace=True, step_hook=step_hook)}  # fmt: skip
    stage = ladder.loop_stage
    party = party_of(account, role)
    actions: list[dict[str, Any]] = []
    for action in ladder.model.resolution_actions:
        anchor = anchor_of(action, account, day)
        entry: dict[str, Any] = {
            "action": action.id, "channel": action.channel, "purpose": action.gate_purpose,
            "anchor": action.anchor.to,
            "anchor_on": str(anchor.on) if anchor else None,
            "for": anchor.what if anchor else None,
        }  # fmt: skip
        why = not_applicable(stage, action, party) if stage is not None else None
        why = why or why_not_due(action, anchor, account, day)
        step = judged.get(action.id)
        if step is None:
            entry.update(due=False, why=why)
        else:
            entry.update(due=True, slot=step.slot, key=step.key,
                         chosen_contact_point=step.destination.contact_point_id
                         if step.destination else None,
                         decision=_verdict_dict(step.verdict))  # fmt: skip
        actions.append(entry)
    return {
        "promise": loop.promise,
        "broken_days_ago": loop.broken_days_ago,
        "arrangement": loop.arrangement,
        "hardship": loop.hardship,
        "actions": actions,
    }
