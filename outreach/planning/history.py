"""The ladder history of an account: what a previous system's imported contacts count for, how
often each action was taken in the episode, and the catch-up (an account that lacks a step its
stage requires enters at that step first)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from outreach.kernel.facts import AccountRecord
from outreach.planning.judging import account_pack_versions, party_of
from outreach.planning.ladder import Action, Ladder, Party, Stage, not_applicable
from policies.model import BLOCK, COLLECTOR, RuleResult, Verdict


def notice_already_sent(action: Action, account: AccountRecord, stage_id: str | None = None) -> bool:
    """A validation notice goes out once per debt: not again once one is on record (ours,
    recorded at send, or a previous system's, imported). A notice this very step took on the
    plan day or later (``taken_since``) is the day's own: a replan of the day still plans it, so
    the day's plan and its decisions stay the same (a date recorded on the eve by an older
    dispatch, from the send instant's UTC date, included)."""
    if action.gate_purpose != "validation_notice" or account.validation_notice_sent_on is None:
        return False
    return stage_id is None or (stage_id, action.id) not in account.taken_since

# Notices whose sending day the account carries (ours, recorded at send, or a previous
# system's, imported): purpose -> the AccountRecord field. The day counts as one time of the
# ladder action with that purpose, in the episode it belongs to.
NOTICE_FACTS = {
    "validation_notice": "validation_notice_sent_on",
    "final_notice": "final_notice_sent_on",
}

History = dict[tuple[str, str], tuple[int, dt.date]]


def imported_history(ladder: Ladder, account: AccountRecord, role: str = COLLECTOR) -> History:
    """A previous system's contacts of this episode as ladder history: each counts for the stage
    the account's days past due put it in on the contact's (UTC) day, as the first reminder
    action of that stage on the contact's channel that applies to the account. Notices are not
    matched by channel: their dates on the account count for them (NOTICE_FACTS)."""
    out: History = {}
    episode = account.episode
    if not account.imported_contacts or episode is None:
        return out
    party = party_of(account, role)
    stages: dict[int, Stage | None] = {}
    for day, channel in account.imported_contacts:
        # Its days past due then, from the episode's due date (payments since may have moved
        # ``due_date``).
        dpd = (day - episode).days
        if dpd not in stages:
            # The band is the account's now (its band then is not kept): a previous system's
            # contacts count for the stage the band leads it to.
            stages[dpd] = ladder.stage_for(
                dpd, account.balance, account.segment, account.product, party,
                score_band=account.score_band,
            )
        stage = stages[dpd]
        if stage is None:
            continue
        action = next(
            (a for a in stage.actions
             if a.channel == channel and a.gate_purpose == "reminder" and a.audience == "debtor"
             and not_applicable(stage, a, party) is None),
            None,
        )  # fmt: skip
        if action is None:
            continue
        times, last = out.get((stage.id, action.id), (0, day))
        out[(stage.id, action.id)] = (times + 1, max(last, day))
    return out


def action_history(
    stage_id: str, action: Action, account: AccountRecord, imported: History
) -> tuple[int, dt.date | None]:
    """Times the action was taken in this episode and the last day: our ledger, a previous
    system's imported contacts (``imported_history``) and, for a notice, its date on record."""
    times, last = account.ladder_history.get((stage_id, action.id), (0, None))
    more = imported.get((stage_id, action.id))
    if more is not None:
        times += more[0]
        last = more[1] if last is None else max(last, more[1])
    notice_field = NOTICE_FACTS.get(action.gate_purpose)
    if notice_field is not None and (stage_id, action.id) not in account.taken_since:
        on = getattr(account, notice_field)
        if on is not None and (account.episode is None or on >= account.episode):
            times = max(times, 1)
            last = on if last is None else max(last, on)
    return times, last


@dataclass(frozen=True, slots=True)
class CatchUp:
    """The earliest required step an account lacks: it enters there instead of its own stage."""

    stage: Stage  # the stage of the step to take
    action: Action
    times: int  # so far, in this episode
    last: dt.date | None
    facts: dict[str, Any]  # for the ledger's evidence, explain and the summary


def _missing_step(
    ladder: Ladder, stage: Stage, account: AccountRecord, imported: History, party: Party
) -> CatchUp | None:
    """The earliest step ``stage`` requires (directly or through the required steps' own
    stages) that has not been taken often enough, or None when all are met. A required step
    that does not apply to the account (``applies_to``) is not required of it."""
    order = {s.id: i for i, s in enumerate(ladder.stages)}
    by_id = {s.id: s for s in ladder.stages}
    found: CatchUp | None = None
    current: Stage | None = stage
    seen: set[str] = set()
    while current is not None and current.id not in seen:
        seen.add(current.id)
        unmet: list[CatchUp] = []
        for req in current.requires:
            req_stage = by_id[req.stage]
            action = next(a for a in req_stage.actions if a.id == req.action)
            if not_applicable(req_stage, action, party) is not None:
                continue
            times, last = action_history(req_stage.id, action, account, imported)
            if times < req.min_times:
                unmet.append(
                    CatchUp(req_stage, action, times, last, {
                        "stage": stage.id, "requires_stage": req.stage,
                        "requires_action": req.action, "min_times": req.min_times,
                        "times": times,
                    })
                )  # fmt: skip
        if not unmet:
            break
        found = min(unmet, key=lambda c: (order[c.stage.id], c.stage.actions.index(c.action)))
        current = found.stage
    return found


def prerequisite_block(catch_up: CatchUp, account: AccountRecord, role: str, day: dt.date
                        ) -> Verdict:  # fmt: skip
    """The block for a required step that can never be taken (its cadence is used up before
    the ladder's ``min_times``): the account cannot catch up."""
    facts = catch_up.facts
    result = RuleResult(
        "ladder.prerequisite_unmet",
        BLOCK,
        "Ladder configuration",
        "",
        {
            "stage": facts["requires_stage"],
            "action": facts["requires_action"],
            "min_times": facts["min_times"],
            "times": facts["times"],
        },
    )
    return Verdict(
        BLOCK,
        ("ladder.prerequisite_unmet",),
        results=(result,),
        pack_versions=account_pack_versions(account, role, day),
    )


def entry_actions(
    ladder: Ladder, stage: Stage, account: AccountRecord, imported: History,
    role: str = COLLECTOR,
) -> tuple[list[tuple[Stage, Action]], CatchUp | None]:
    """The (stage, action) pairs an account in ``stage`` is planned for: the stage's own
    actions that apply to it, or, when it lacks a step the stage requires, only the earliest
    such step (catch-up)."""
    party = party_of(account, role)
    catch_up = _missing_step(ladder, stage, account, imported, party)
    if catch_up is None:
        return [(stage, a) for a in stage.actions if not_applicable(stage, a, party) is None], None
    return [(catch_up.stage, catch_up.action)], catch_up

