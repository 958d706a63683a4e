"""The daily plan: each account's stage, its due actions, a gate verdict for each, into the ledger.

Deterministic: the plan for ``day`` reads facts known before 00:00 UTC of that day and ledger
history planned before that day, so the same inputs and day give the same plan, rerun or not.
Set-based: one batch of accounts is loaded with a handful of queries and written with a few
bulk statements.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from outreach.kernel.clock import utcnow
from outreach.kernel.facts import LOOP_STAGE, AccountRecord, Destination, load_accounts
from outreach.kernel.ledger import (
    CONTACT_COLUMNS,
    CONTACT_TYPES,
    DECISION_COLUMNS,
    DECISION_TYPES,
    ON_CONFLICT_CONTACT,
    STATE_FOR_VERDICT,
    contact_key,
    decision_row,
)
from outreach.kernel.policy_settings import policy_settings
from outreach.measurement.experiments import ExperimentsConfig
from outreach.measurement.snapshots import SnapshotRow, snapshot_row, write_snapshots
from outreach.planning.experiment_arms import arm_ladders, write_assignments
from outreach.planning.history import (
    CatchUp,
    action_history,
    entry_actions,
    imported_history,
    notice_already_sent,
    prerequisite_block,
)
from outreach.planning.household import load_household
from outreach.planning.judging import (
    StepHook,
    candidate_destinations,
    choose,
    party_of,
    plan_step_hook,
)
from outreach.planning.ladder import Action, Ladder, Stage, loop_facts, not_applicable
from outreach.planning.loop import due_loop_actions
from outreach.storage.bulk import insert_rows, upsert_rows
from policies.model import COLLECTOR, SEND, AccountFacts, PastContact, Verdict
from policies.packs import assert_valid


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
            # A resolution action is once per anchor, whatever the delinquency episode: a
            # payment that moves the due date must not make a sent reminder new again.
            None if self.stage.id == LOOP_STAGE else self.account.episode,
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
    actions of other channels and stages. The ladder's resolution actions due today come
    after the stage's steps, whatever the stage (``loop_steps``)."""
    stage, dpd, steps = _stage_steps(ladder, account, day, role=role, trace=trace,
                                     step_hook=step_hook, scope=scope)  # fmt: skip
    if ladder.model.resolution_actions:
        steps += loop_steps(ladder, account, day, steps, role=role, trace=trace,
                            step_hook=step_hook, scope=scope)  # fmt: skip
    return stage, dpd, steps


def loop_steps(
    ladder: Ladder,
    account: AccountRecord,
    day: dt.date,
    earlier: list[PlannedStep],
    *,
    role: str = COLLECTOR,
    trace: bool = False,
    step_hook: StepHook | None = None,
    scope: PlanScope | None = None,
) -> list[PlannedStep]:
    """The resolution actions due today (outreach.planning.loop), judged after the stage's
    ``earlier`` steps, which they see as made (caps hold for the day's plan as a whole). The
    gate lets their purposes through the pauses of a promise or a kept arrangement."""
    stage = ladder.loop_stage
    if stage is None:
        return []
    due = due_loop_actions(ladder, account, day, party_of(account, role))
    if scope is not None:
        due = [(a, anchor) for a, anchor in due if scope.admits(stage, a)]
    if not due:
        return []
    facts = account.gate_facts(role)
    made = tuple(planned_contact(s) for s in earlier if s.verdict.verdict == SEND)
    if made:
        facts = replace(facts, history=facts.history + made)
    dpd = (day - account.due_date).days if account.due_date is not None else 0
    steps: list[PlannedStep] = []
    for action, anchor in due:
        destination, verdict, _ = choose(
            action, account, facts, day, trace=trace, step_hook=step_hook
        )
        step = PlannedStep(account, stage, action, anchor.slot, destination, verdict, dpd)
        steps.append(step)
        if verdict.verdict == SEND:
            facts = replace(facts, history=facts.history + (planned_contact(step),))
    return steps


def _stage_steps(
    ladder: Ladder,
    account: AccountRecord,
    day: dt.date,
    *,
    role: str = COLLECTOR,
    trace: bool = False,
    step_hook: StepHook | None = None,
    scope: PlanScope | None = None,
) -> tuple[Stage | None, int | None, list[PlannedStep]]:
    """The account's stage, days past due and the stage's due steps."""
    if account.due_date is None or account.past_due <= 0:
        return None, None, []
    dpd = (day - account.due_date).days
    if dpd < 1:
        return None, dpd, []
    party = party_of(account, role)
    stage = ladder.stage_for(dpd, account.balance, account.segment, account.product, party,
                             loop_facts(account, day), account.score_band)  # fmt: skip
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
            block = prerequisite_block(catch_up, account, role, day)
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


CATCH_UP = "ladder.catch_up"
# The account's score band, in the evidence of every decision of an account that has one: an
# input the ladder's stage entry may read (docs/score-bands.md), never the gate.
SCORE_BAND = "ladder.score_band"


def score_band_evidence(account: AccountRecord) -> dict[str, Any] | None:
    """What the decision records of the account's score band, or None when it has none."""
    if account.score_band is None:
        return None
    return {"outcome": "fact", "citation": "Score band (docs/score-bands.md)",
            "facts": {"score_band": account.score_band, "model_version": account.score_model}}  # fmt: skip


def catch_up_evidence(verdict: Verdict, catch_up: CatchUp) -> dict[str, Any]:
    """The verdict's evidence with why the step was taken out of its stage's order."""
    return {
        **verdict.evidence(),
        CATCH_UP: {"outcome": "catch_up", "citation": "Ladder configuration",
                   "facts": catch_up.facts},
    }  # fmt: skip


def _rows(
    steps: list[PlannedStep],
    day: dt.date,
    ladder: Ladder,
    now: dt.datetime,
    arm_of: dict[int, tuple[str, Ladder]] | None = None,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The ledger and decision rows of ``steps``; an account in an experiment (``arm_of``)
    carries its arm and its arm's ladder version."""
    contacts, decisions = [], []
    arm_of = arm_of or {}
    cutoff = plan_cutoff(day)
    evidence_cache: dict[tuple[int, str | None, str | None], str] = {}
    for s in steps:
        v = s.verdict
        reasons = " ".join(v.reasons)
        arm, arm_ladder = arm_of.get(s.account.id, (None, ladder))
        version = arm_ladder.version
        cp = s.destination.contact_point_id if s.destination else None
        contacts.append(
            (
                s.key,
                s.account.id,
                s.account.episode,
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
                version,
                v.pack_versions,
                0,
                now,
                s.catch_up is not None,
                arm,
            )
        )
        # Verdicts are shared between the steps that judged alike (see policies.gate); so is
        # their evidence text.
        # With the account's score band when it has one (accounts of a band share the text).
        cache_key = (id(v), s.account.score_band, s.account.score_model)
        evidence = evidence_cache.get(cache_key) if s.catch_up is None else None
        if evidence is None:
            full = v.evidence() if s.catch_up is None else catch_up_evidence(v, s.catch_up)
            band = score_band_evidence(s.account)
            if band is not None:
                full = {**full, SCORE_BAND: band}
            evidence = json.dumps(full, separators=(",", ":"))
            if s.catch_up is None:
                evidence_cache[cache_key] = evidence
        decisions.append(
            decision_row(s.key, s.account.id, "plan", day, cutoff, v, version, evidence, arm)
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
    experiments: ExperimentsConfig | None = None,
) -> PlanCounts:
    """Plan accounts ``lo..hi`` for ``day``: read and judge first, then write in one short
    transaction (only this batch writes these accounts' plan rows). ``write=False`` (a dry
    run) judges and counts, and writes nothing.

    An account in a running experiment (config/experiments.yaml, or ``experiments``) is planned
    with its arm's ladder, its rows carry the arm; its first assignment is stored with the plan."""
    counts = PlanCounts()
    settings = policy_settings()
    role = settings.role
    arms = arm_ladders(engine, day, ladder, experiments=experiments)
    arm_of: dict[int, tuple[str, Ladder]] = {}
    new_assignments: list[tuple[str, int, str]] = []
    with relaxed_gc():
        with engine.connect() as conn:
            accounts = load_accounts(conn, lo, hi, day=day, cutoff=plan_cutoff(day))
            # A person's accounts are judged together (outreach.planning.household), those outside
            # this batch too: judged, never written here.
            household = load_household(
                conn, accounts, lo, hi, day=day, cutoff=plan_cutoff(day),
                enabled=settings.householding,
            )  # fmt: skip
            if arms is not None:
                arm_of, new_assignments = arms.assign(conn, household.order(day))
        by_account: dict[int, list[PlannedStep]] = {}
        snapshots: list[SnapshotRow] = []  # where each planned account stood (KPIs)
        hook = plan_step_hook(engine, day)
        refs = scope.account_refs if scope is not None else None
        for account in household.order(day):
            written = account.id in accounts and (refs is None or account.account_ref in refs)
            shared = household.shared(account)
            if not written and not shared:
                continue
            household.prime(account)
            arm, account_ladder = arm_of.get(account.id, (None, ladder))
            stage, dpd, account_steps = plan_account(
                account_ladder, account, day, role=role, step_hook=hook, scope=scope
            )
            if shared:
                household.record(account, planned_sends(account_steps))
            if not written:
                continue
            counts.accounts += 1
            counts.in_stage += stage is not None
            counts.catch_up += any(s.catch_up is not None for s in account_steps)
            by_account[account.id] = account_steps
            if write:
                snapshots.append(snapshot_row(day, account, stage.id if stage else None, dpd,
                                              account_ladder.version, arm))  # fmt: skip
        # In account order, as the ledger's keys lead with the account id.
        steps = [s for account_id in sorted(by_account) for s in by_account[account_id]]
        for s in steps:
            setattr(counts, s.verdict.verdict, getattr(counts, s.verdict.verdict) + 1)
        counts.steps = len(steps)
        now = utcnow()
        if not write:
            return counts
        contacts, decisions = _rows(steps, day, ladder, now, arm_of)
        partial = scope is not None and not scope.whole
        # Only this batch's accounts are assigned here (their siblings by their own batch).
        new_assignments = [n for n in new_assignments
                           if n[1] in by_account]  # fmt: skip
        with writer_turn(engine), engine.begin() as conn:
            write_plan(conn, contacts, decisions, day, lo, hi, now, only_written=partial)
            write_assignments(conn, new_assignments, day)
            write_snapshots(conn, snapshots)
    return counts


def iter_plan(
    engine: Engine, ladder: Ladder, day: dt.date, batch_size: int
) -> Iterator[PlanCounts]:
    assert_valid()
    for lo, hi in account_ranges(engine, batch_size):
        yield plan_range(engine, ladder, day, lo, hi)


