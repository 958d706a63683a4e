"""The daily plan: each account's stage, its due actions, a gate verdict for each, into the ledger.

Deterministic: the plan for ``day`` reads facts known before 00:00 UTC of that day and ledger
history planned before that day, so the same inputs and day give the same plan, rerun or not.
Set-based: one batch of accounts is loaded with a handful of queries and written with a few
bulk statements.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from outreach.kernel.clock import utcnow
from outreach.kernel.facts import AccountRecord, Destination, load_accounts
from outreach.kernel.policy_settings import policy_settings
from outreach.planning.household import Household, load_household, plan_household
from outreach.planning.ladder import Action, Ladder, Party, Stage, not_applicable
from outreach.planning.messages import template_traits
from outreach.storage.bulk import column_types, insert_rows, upsert_rows
from outreach.storage.models import Contact, PolicyDecision
from policies.gate import evaluate
from policies.model import (
    BLOCK,
    COLLECTOR,
    DEFER,
    EMERGENCY_CONTACT,
    ESTATE_REPRESENTATIVE,
    SELF,
    SEND,
    AccountFacts,
    PastContact,
    RuleResult,
    Step,
    Verdict,
)
from policies.packs import assert_valid, jurisdiction, pack_versions
from policies.timeblocks import format_blocks

STATE_FOR_VERDICT = {SEND: "planned", DEFER: "deferred", BLOCK: "suppressed"}
# Rows the planner may (re)write; anything the dispatcher has touched stays as it is.
REPLANNABLE = "('planned', 'deferred', 'expired')"


def contact_key(
    account_id: int,
    episode: dt.date | None,
    stage: str,
    action: str,
    slot: int,
    channel: str,
    contact_point_id: int | None,
) -> str:
    """The ledger key: what the contact is, never when or by which task try it was made.

    The account id leads (hex, fixed width) so that keys of one batch sit together in the
    key index: a million-row plan appends to it instead of scattering writes across it.
    """
    identity = f"{account_id}|{episode}|{stage}|{action}|{slot}|{channel}|{contact_point_id}"
    return f"{account_id:010x}" + hashlib.sha256(identity.encode()).hexdigest()[:22]


def plan_cutoff(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day)


@dataclass(slots=True)
class PlannedStep:
    """One due action of one account with its verdict: a ledger row and a decision row."""

    account: AccountRecord
    stage: Stage
    action: Action
    slot: int
    destination: Destination | None
    verdict: Verdict
    days_past_due: int
    # Set when the account entered at an earlier required step it lacked (catch-up): what was
    # missing and for which stage (CatchUp.facts), else None.
    catch_up: CatchUp | None = None

    key: str = field(init=False)

    def __post_init__(self) -> None:
        cp = self.destination.contact_point_id if self.destination else None
        self.key = contact_key(
            self.account.id,
            self.account.due_date,
            self.stage.id,
            self.action.id,
            self.slot,
            self.action.channel,
            cp,
        )


@dataclass
class PlanCounts:
    accounts: int = 0
    in_stage: int = 0
    steps: int = 0
    send: int = 0
    defer: int = 0
    block: int = 0
    catch_up: int = 0  # accounts that entered at an earlier required step they lacked

    def add(self, other: PlanCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


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


StepHook = Callable[[Step, AccountRecord], Step]


@dataclass(frozen=True, slots=True)
class PlanScope:
    """The part of the day a run plans (the daily DAG's run controls): only these channels,
    stages and accounts; None means all. A scoped run replaces only its own part of the plan."""

    channels: frozenset[str] | None = None
    stages: frozenset[str] | None = None
    account_refs: frozenset[str] | None = None

    def admits(self, stage: Stage, action: Action) -> bool:
        return (self.channels is None or action.channel in self.channels) and (
            self.stages is None or stage.id in self.stages
        )

    @property
    def whole(self) -> bool:
        return self.channels is None and self.stages is None and self.account_refs is None


def plan_step_hook(engine: Engine, day: dt.date) -> StepHook:
    """What the planner adds to a step before judging it, as the dispatcher's channel hooks
    will at send time: the agency a placement would go to (so the rules on approved agencies
    judge the plan as they will judge the send). Nothing is reserved by a plan."""
    from outreach.media.agency.placement import PlacementHooks

    placement = PlacementHooks(engine, day)

    def hook(step: Step, account: AccountRecord) -> Step:
        return placement.preview(step, account) if step.channel == "agency" else step

    return hook


def planned_contact(step: PlannedStep) -> PastContact:
    """A contact planned to be sent earlier in the same run, as the frequency rules count it
    for the account's later steps: made at its window's start, outcome unknown (so counted by
    every rule, attempt or communication)."""
    d = step.destination
    assert step.verdict.window_start is not None  # a send verdict always has its window
    return PastContact(
        step.verdict.window_start,
        step.action.channel,
        "attempted",
        d.contact_point_id if d else None,
        d.phone_type if d else None,
        bool(d and d.is_workplace),
    )


def planned_sends(steps: list[PlannedStep]) -> list[tuple[str, PastContact]]:
    """An account's steps planned to be sent, by ledger key, as its siblings count them."""
    return [(s.key, planned_contact(s)) for s in steps if s.verdict.verdict == SEND]


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


def notice_already_sent(action: Action, account: AccountRecord, stage_id: str | None = None) -> bool:
    """A validation notice goes out once per debt: not again once one is on record (ours,
    recorded at send, or a previous system's, imported). A notice this very step took on the
    plan day or later (``taken_since``) is the day's own: a replan of the day still plans it, so
    the day's plan and its decisions stay the same (a date recorded on the eve by an older
    dispatch, from the send instant's UTC date, included)."""
    if action.gate_purpose != "validation_notice" or account.validation_notice_sent_on is None:
        return False
    return stage_id is None or (stage_id, action.id) not in account.taken_since


def party_of(account: AccountRecord, role: str) -> Party:
    """What a stage's or an action's ``applies_to`` reads of the account."""
    return Party(account.country, account.region, account.product, role)


def account_pack_versions(account: AccountRecord, role: str, day: dt.date) -> str:
    j = jurisdiction(account.country, account.region, account.city, account.product, role)
    return pack_versions(j, day)


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
    if not account.imported_contacts or account.due_date is None:
        return out
    party = party_of(account, role)
    stages: dict[int, Stage | None] = {}
    for day, channel in account.imported_contacts:
        dpd = (day - account.due_date).days
        if dpd not in stages:
            stages[dpd] = ladder.stage_for(
                dpd, account.balance, account.segment, account.product, party
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
        if on is not None and (account.due_date is None or on >= account.due_date):
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


def _prerequisite_block(catch_up: CatchUp, account: AccountRecord, role: str, day: dt.date
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


def _due(
    action: Action, times: int, last: dt.date | None, account: AccountRecord, day: dt.date,
    stage_id: str | None = None,
) -> bool:
    """The action's cadence allows it today (and a validation notice is not on record)."""
    if times >= action.cadence.max_times or notice_already_sent(action, account, stage_id):
        return False
    return last is None or (day - last).days >= action.cadence.every_days


def plan_account(
    ladder: Ladder,
    account: AccountRecord,
    day: dt.date,
    *,
    role: str = COLLECTOR,
    trace: bool = False,
    step_hook: StepHook | None = None,
    scope: PlanScope | None = None,
) -> tuple[Stage | None, int | None, list[PlannedStep]]:
    """Stage, days past due and the due steps of one account for ``day`` (pure); ``role`` is
    the user's (policy settings), which decides the packs that apply. ``scope`` leaves out the
    actions of other channels and stages."""
    if account.due_date is None or account.past_due <= 0:
        return None, None, []
    dpd = (day - account.due_date).days
    if dpd < 1:
        return None, dpd, []
    party = party_of(account, role)
    stage = ladder.stage_for(dpd, account.balance, account.segment, account.product, party)
    if stage is None:
        return None, dpd, []
    imported = imported_history(ladder, account, role)
    entries, catch_up = entry_actions(ladder, stage, account, imported, role)
    facts: AccountFacts | None = None  # built for the first due step only
    steps: list[PlannedStep] = []
    for step_stage, action in entries:
        if scope is not None and not scope.admits(step_stage, action):
            continue
        times, last = action_history(step_stage.id, action, account, imported)
        if catch_up is not None and times >= action.cadence.max_times:
            # The required step's cadence is used up before the ladder's min_times: it can
            # never be met, so the stage's own actions stay blocked.
            block = _prerequisite_block(catch_up, account, role, day)
            for own in stage.actions:
                if scope is not None and not scope.admits(stage, own):
                    continue
                if not_applicable(stage, own, party) is not None:
                    continue
                own_times, own_last = action_history(stage.id, own, account, imported)
                if not _due(own, own_times, own_last, account, day, stage.id):
                    continue
                candidates = candidate_destinations(account, own.channel, own.audience)
                steps.append(PlannedStep(account, stage, own, own_times + 1,
                                         candidates[0] if candidates else None, block, dpd))
            continue
        if not _due(action, times, last, account, day, step_stage.id):
            continue
        if facts is None:
            facts = account.gate_facts(role)
        destination, verdict, _ = choose(
            action, account, facts, day, trace=trace, step_hook=step_hook
        )
        step = PlannedStep(
            account, step_stage, action, times + 1, destination, verdict, dpd, catch_up
        )
        steps.append(step)
        if verdict.verdict == SEND and action is not entries[-1][1]:
            # Later actions of the same day see this one as made: caps across channels (NYC,
            # Washington, Massachusetts) hold for the plan as a whole, not per action.
            facts = replace(facts, history=facts.history + (planned_contact(step),))
    return stage, dpd, steps


def account_ranges(engine: Engine, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive account-id ranges of ``batch_size`` accounts (the last may be shorter)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM account) t "
                    "WHERE (n - 1) % :size = 0 ORDER BY id"
                ),
                {"size": batch_size},
            )
        ]
        top = conn.execute(text("SELECT MAX(id) FROM account")).scalar() or 0
    return [(lo, (ids[i + 1] - 1) if i + 1 < len(ids) else int(top)) for i, lo in enumerate(ids)]


CONTACT_COLUMNS = (
    "key",
    "account_id",
    "episode",
    "stage",
    "action",
    "slot",
    "channel",
    "contact_point_id",
    "template",
    "plan_date",
    "state",
    "verdict",
    "reasons",
    "window_start",
    "window_end",
    "defer_until",
    "config_version",
    "pack_versions",
    "attempts",
    "updated_at",
    "catch_up",
)
CONTACT_TYPES = column_types(Contact, CONTACT_COLUMNS)
ON_CONFLICT_CONTACT = (
    "ON CONFLICT (key) DO UPDATE SET plan_date = excluded.plan_date, state = excluded.state, "
    "verdict = excluded.verdict, reasons = excluded.reasons, "
    "window_start = excluded.window_start, window_end = excluded.window_end, "
    "defer_until = excluded.defer_until, template = excluded.template, "
    "config_version = excluded.config_version, pack_versions = excluded.pack_versions, "
    "updated_at = excluded.updated_at, catch_up = excluded.catch_up, claim_token = NULL, "
    "claimed_at = NULL "
    f"WHERE contact.state IN {REPLANNABLE} "
    "OR (contact.state = 'suppressed' AND (contact.plan_date < excluded.plan_date "
    "OR contact.claimed_at IS NULL))"
)

DECISION_COLUMNS = (
    "contact_key",
    "account_id",
    "phase",
    "as_of",
    "decided_at",
    "verdict",
    "reasons",
    "window_start",
    "window_end",
    "defer_until",
    "config_version",
    "pack_versions",
    "evidence",
)
# The evidence is JSON text already: stored as given, not encoded again.
DECISION_TYPES = column_types(PolicyDecision, DECISION_COLUMNS, as_given=("evidence",))


CATCH_UP = "ladder.catch_up"


def catch_up_evidence(verdict: Verdict, catch_up: CatchUp) -> dict[str, Any]:
    """The verdict's evidence with why the step was taken out of its stage's order."""
    return {
        **verdict.evidence(),
        CATCH_UP: {"outcome": "catch_up", "citation": "Ladder configuration",
                   "facts": catch_up.facts},
    }  # fmt: skip


def decision_row(
    key: str,
    account_id: int,
    phase: str,
    as_of: dt.date,
    decided_at: dt.datetime,
    verdict: Verdict,
    config_version: str,
    evidence: str | None = None,
) -> tuple[Any, ...]:
    """A policy_decision row in DECISION_COLUMNS order, for the plan and the send phase alike."""
    if evidence is None:
        evidence = json.dumps(verdict.evidence(), separators=(",", ":"))
    return (
        key,
        account_id,
        phase,
        as_of,
        decided_at,
        verdict.verdict,
        " ".join(verdict.reasons),
        verdict.window_start,
        verdict.window_end,
        verdict.defer_until,
        config_version,
        verdict.pack_versions,
        evidence,
    )


def _rows(
    steps: list[PlannedStep], day: dt.date, ladder: Ladder, now: dt.datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    contacts, decisions = [], []
    cutoff = plan_cutoff(day)
    evidence_cache: dict[int, str] = {}
    for s in steps:
        v = s.verdict
        reasons = " ".join(v.reasons)
        cp = s.destination.contact_point_id if s.destination else None
        contacts.append(
            (
                s.key,
                s.account.id,
                s.account.due_date,
                s.stage.id,
                s.action.id,
                s.slot,
                s.action.channel,
                cp,
                s.action.template,
                day,
                STATE_FOR_VERDICT[v.verdict],
                v.verdict,
                reasons,
                v.window_start,
                v.window_end,
                v.defer_until,
                ladder.version,
                v.pack_versions,
                0,
                now,
                s.catch_up is not None,
            )
        )
        # Verdicts are shared between the steps that judged alike (see policies.gate); so is
        # their evidence text.
        evidence = evidence_cache.get(id(v))
        if s.catch_up is not None:
            evidence = json.dumps(catch_up_evidence(v, s.catch_up), separators=(",", ":"))
        elif evidence is None:
            evidence = json.dumps(v.evidence(), separators=(",", ":"))
            evidence_cache[id(v)] = evidence
        decisions.append(
            decision_row(s.key, s.account.id, "plan", day, cutoff, v, ladder.version, evidence)
        )
    return contacts, decisions


def write_plan(
    conn: Connection,
    contacts: list[tuple[Any, ...]],
    decisions: list[tuple[Any, ...]],
    day: dt.date,
    lo: int,
    hi: int,
    now: dt.datetime,
    *,
    only_written: bool = False,
) -> None:
    """Replace this batch's plan for ``day``: expire stale planned rows, upsert, record decisions.

    Rows the dispatcher already took (sending, sent, failed, uncertain) are never rewritten.
    ``only_written`` (a scoped run): replace only the decisions of the contacts written, so the
    rest of the day's plan keeps its own.
    """
    conn.execute(
        text(
            "UPDATE contact SET state = 'expired', updated_at = :now WHERE account_id BETWEEN :lo "
            "AND :hi AND plan_date < :day AND state IN ('planned', 'deferred')"
        ),
        {"now": now, "lo": lo, "hi": hi, "day": day},
    )
    if only_written:
        keys = [d[0] for d in decisions]
        if keys:
            conn.execute(
                text(
                    "DELETE FROM policy_decision WHERE phase = 'plan' AND as_of = :day "
                    "AND contact_key IN :keys"
                ).bindparams(bindparam("keys", expanding=True)),
                {"day": day, "keys": keys},
            )
    else:
        conn.execute(
            text(
                "DELETE FROM policy_decision WHERE phase = 'plan' AND as_of = :day "
                "AND account_id BETWEEN :lo AND :hi"
            ),
            {"day": day, "lo": lo, "hi": hi},
        )
    upsert_rows(conn, "contact", CONTACT_COLUMNS, contacts, CONTACT_TYPES, ON_CONFLICT_CONTACT)
    insert_rows(conn, "policy_decision", DECISION_COLUMNS, decisions, DECISION_TYPES)


@contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """SQLite has one writer at a time, and a writer that finds the lock taken sleeps in steps
    of up to 100 ms before trying again. Planning workers queue on an OS file lock instead,
    which wakes the next one the moment the lock is free. Other databases need no turn."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.plan-lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def relaxed_gc() -> Iterator[None]:
    """A batch builds ~10^5 small objects that hold no reference cycles; the cyclic collector
    would rescan them again and again. Pause it for the batch (reference counting still frees
    everything) and restore it as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def plan_range(
    engine: Engine,
    ladder: Ladder,
    day: dt.date,
    lo: int,
    hi: int,
    *,
    scope: PlanScope | None = None,
    write: bool = True,
) -> PlanCounts:
    """Plan accounts ``lo..hi`` for ``day``: read and judge first, then write in one short
    transaction (only this batch writes these accounts' plan rows). ``write=False`` (a dry
    run) judges and counts, and writes nothing."""
    counts = PlanCounts()
    settings = policy_settings()
    role = settings.role
    with relaxed_gc():
        with engine.connect() as conn:
            accounts = load_accounts(conn, lo, hi, day=day, cutoff=plan_cutoff(day))
            # A person's accounts are judged together (outreach.planning.household), those outside
            # this batch too: judged, never written here.
            household = load_household(
                conn, accounts, lo, hi, day=day, cutoff=plan_cutoff(day),
                enabled=settings.householding,
            )  # fmt: skip
        by_account: dict[int, list[PlannedStep]] = {}
        hook = plan_step_hook(engine, day)
        refs = scope.account_refs if scope is not None else None
        for account in household.order(day):
            written = account.id in accounts and (refs is None or account.account_ref in refs)
            shared = household.shared(account)
            if not written and not shared:
                continue
            household.prime(account)
            stage, _dpd, account_steps = plan_account(
                ladder, account, day, role=role, step_hook=hook, scope=scope
            )
            if shared:
                household.record(account, planned_sends(account_steps))
            if not written:
                continue
            counts.accounts += 1
            counts.in_stage += stage is not None
            counts.catch_up += any(s.catch_up is not None for s in account_steps)
            by_account[account.id] = account_steps
        # In account order, as the ledger's keys lead with the account id.
        steps = [s for account_id in sorted(by_account) for s in by_account[account_id]]
        for s in steps:
            setattr(counts, s.verdict.verdict, getattr(counts, s.verdict.verdict) + 1)
        counts.steps = len(steps)
        now = utcnow()
        if not write:
            return counts
        contacts, decisions = _rows(steps, day, ladder, now)
        partial = scope is not None and not scope.whole
        with writer_turn(engine), engine.begin() as conn:
            write_plan(conn, contacts, decisions, day, lo, hi, now, only_written=partial)
    return counts


def iter_plan(
    engine: Engine, ladder: Ladder, day: dt.date, batch_size: int
) -> Iterator[PlanCounts]:
    assert_valid()
    for lo, hi in account_ranges(engine, batch_size):
        yield plan_range(engine, ladder, day, lo, hi)


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
        "past_due": str(account.past_due),
        "balance": str(account.balance),
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
    stage, dpd, _ = plan_account(ladder, account, day, role=role, step_hook=step_hook)
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
            prerequisite = _prerequisite_block(catch_up, account, role, day)
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
                account.due_date,
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


def _forget_inherited_pool(url: str) -> None:
    """A forked worker must not use the parent's pooled connections (SQLAlchemy's recipe:
    dispose without closing them, so the parent keeps its own)."""
    from outreach.storage.db import engine_for

    engine_for(url).dispose(close=False)


def _plan_worker(args: tuple[str, str, dt.date, int, int]) -> PlanCounts:
    from outreach.planning.ladder import load_ladder
    from outreach.storage.db import engine_for

    url, ladder_file, day, lo, hi = args
    return plan_range(engine_for(url), load_ladder(Path(ladder_file)), day, lo, hi)


def plan_parallel(
    url: str, ladder: Ladder, day: dt.date, batch_size: int, workers: int
) -> Iterator[PlanCounts]:
    """Plan batches in ``workers`` processes, as parallel mapped tasks of the DAG would.

    Each batch is its own transaction; on SQLite the writes take turns (WAL, busy timeout)
    while the reading and judging of other batches goes on.
    """
    from concurrent.futures import ProcessPoolExecutor

    from outreach.storage.db import engine_for

    assert_valid()
    ranges = account_ranges(engine_for(url), batch_size)
    jobs = [(url, ladder.source, day, lo, hi) for lo, hi in ranges]
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_forget_inherited_pool, initargs=(url,)
    ) as pool:
        yield from pool.map(_plan_worker, jobs)
