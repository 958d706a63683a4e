"""Judging: the destinations an action may use, the gate's view of each (the step), and the one
call of the gate (``policies.gate.evaluate``), for the plan and the send instant alike.

The planner judges every candidate destination of a due action and keeps the best
(``choose``); the dispatcher judges the destination planned, again, at the send instant
(``judge_send``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from outreach.kernel.facts import AccountRecord, Destination
from outreach.planning.kinds import hooks_for
from outreach.planning.ladder import Action, Party
from outreach.planning.messages import template_traits
from policies.gate import evaluate
from policies.model import (
    DEFER,
    EMERGENCY_CONTACT,
    ESTATE_REPRESENTATIVE,
    SELF,
    SEND,
    AccountFacts,
    Step,
    Verdict,
)
from policies.packs import jurisdiction, pack_versions

DEBTOR_RELATIONS = (SELF, ESTATE_REPRESENTATIVE)


def candidate_destinations(
    account: AccountRecord, channel: str, audience: str = "debtor"
) -> list[Destination]:
    """The destinations a channel may use, best first; invalid ones are left to the gate. The
    debtor's own come before an estate representative's; a third-party action (locating an
    unreachable debtor) uses only the emergency contacts."""
    wanted = DEBTOR_RELATIONS if audience == "debtor" else (EMERGENCY_CONTACT,)
    d = [x for x in account.destinations if x.relation in wanted]
    if channel == "sms":
        phones = [x for x in d if x.kind == "phone" and x.phone_type == "mobile"]
        return sorted(phones, key=lambda x: (x.relation != SELF, not x.valid, not x.sms_consent))
    if channel == "call":
        phones = [x for x in d if x.kind == "phone"]
        return sorted(phones, key=lambda x: (x.relation != SELF, not x.valid, x.is_workplace))
    if channel == "email":
        return sorted(
            (x for x in d if x.kind == "email"),
            key=lambda x: (x.relation != SELF, not x.valid, x.is_workplace),
        )
    if channel == "letter":
        return sorted(
            (x for x in d if x.kind == "postal"), key=lambda x: (x.relation != SELF, not x.valid)
        )
    return []


CONSENT_FLAG = {"sms": "sms_consent", "call": "call_consent", "email": "email_consent"}


def step_for(channel: str, destination: Destination | None, action: Action | None = None) -> Step:
    """The gate's view of one candidate: the action's traits and what is known of the
    destination (never its value)."""
    traits: dict[str, Any] = {}
    if action is not None:
        traits = {
            "purpose": action.gate_purpose,
            "dialer": action.dialer,
            # The template's own declaration, the one source (outreach.planning.messages).
            "threatens_suit": "threatens_suit" in template_traits(action.template),
        }
    if destination is None:
        return Step(channel, **traits)
    flag = CONSENT_FLAG.get(channel)
    return Step(
        channel,
        destination.contact_point_id,
        destination.zones if destination.kind == "phone" else (),
        destination.valid,
        phone_type=destination.phone_type,
        is_workplace=destination.is_workplace or destination.phone_type == "work",
        consent=bool(flag and getattr(destination, flag)),
        used_by_consumer=destination.used_by_consumer,
        no_calls_at_work=destination.no_calls_at_work,
        relation=destination.relation,
        **traits,
    )


StepHook = Callable[[Step, AccountRecord], Step]


def plan_step_hook(engine: Engine, day: dt.date) -> StepHook:
    """What the planner adds to a step before judging it, as the dispatcher's channel hooks
    will at send time: the agency a placement would go to (so the rules on approved agencies
    judge the plan as they will judge the send). Nothing is reserved by a plan."""
    agency = hooks_for("agency", engine, day)

    def hook(step: Step, account: AccountRecord) -> Step:
        return agency.preview(step, account) if step.channel == "agency" else step

    return hook


def choose(
    action: Action,
    account: AccountRecord,
    facts: AccountFacts,
    day: dt.date,
    *,
    at: dt.datetime | None = None,
    trace: bool = False,
    step_hook: StepHook | None = None,
) -> tuple[Destination | None, Verdict, list[tuple[Destination | None, Verdict]]]:
    """Judge every candidate destination; the first sendable wins, else the first deferrable,
    else the best candidate's block. Returns the choice and every judgement (for explain)."""
    channel = action.channel
    candidates: list[Destination | None] = list(
        candidate_destinations(account, channel, action.audience)
    ) or [None]
    judged: list[tuple[Destination | None, Verdict]] = []
    for destination in candidates:
        step = step_for(channel, destination, action)
        if step_hook is not None:
            step = step_hook(step, account)
        verdict = evaluate(step, facts, day=day, at=at, trace=trace)
        judged.append((destination, verdict))
        if verdict.verdict == SEND and not trace:
            return destination, verdict, judged
    for wanted in (SEND, DEFER):
        for destination, verdict in judged:
            if verdict.verdict == wanted:
                return destination, verdict, judged
    return judged[0][0], judged[0][1], judged


def judge_send(
    step: Step, account: AccountRecord, role: str, day: dt.date, at: dt.datetime
) -> Verdict:
    """The gate's verdict at the send instant ``at`` on a planned contact: its step (as
    ``step_for`` and the channel's hooks make it) on the account's facts as read now, in
    ``role``, for its plan ``day``."""
    return evaluate(step, account.gate_facts(role), day=day, at=at)


def party_of(account: AccountRecord, role: str) -> Party:
    """What a stage's or an action's ``applies_to`` reads of the account."""
    return Party(account.country, account.region, account.product, role)


def account_pack_versions(account: AccountRecord, role: str, day: dt.date) -> str:
    j = jurisdiction(account.country, account.region, account.city, account.product, role)
    return pack_versions(j, day)
