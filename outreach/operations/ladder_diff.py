"""``outreach config diff OLD NEW --as-of DATE``: what switching ladders would change, before it does.

Both ladders plan the current portfolio for the same day, the way the planner would (same facts,
same gate, same ledger keys), batch by batch of account ids; nothing is sent and nothing is
written. The two plans are compared contact by contact (the ledger key's parts but the
destination: account, stage, action, cadence slot, channel; the key itself tells whether the
destination changed) and account by account. Only counts, reason codes and a few account
references are kept: never a name, a number or an address. The command itself (argument
parsing, printing) is in ``outreach/entry/cli_config.py``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from outreach.kernel.facts import AccountRecord, load_accounts
from outreach.kernel.policy_settings import policy_settings
from outreach.planning.judging import StepHook, party_of, plan_step_hook
from outreach.planning.ladder import Ladder, Party, Stage, not_applicable
from outreach.planning.planner import PlannedStep, account_ranges, plan_account, plan_cutoff
from policies.model import BLOCK, DEFER, SEND
from policies.packs import assert_valid

# What a contact is under a ladder that does not plan it at all (not due, or no such stage).
NOT_DUE = "none"
# What it is under a ladder whose action (or stage) does not apply to the account (applies_to).
NOT_APPLICABLE = "not_applicable"
# What an account is under one ladder, from its due steps: contacted at least once, stopped by
# at least one block with nothing sent, only deferred, or nothing due at all.
ALLOWED, BLOCKED, DEFERRED, IDLE = "allowed", "blocked", "deferred", "idle"
EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Judged:
    """One planned contact as the diff keeps it: its ledger key (PlannedStep.key, the key the
    planner would write), where it sits in the ladder, and its verdict."""

    key: str
    stage: str
    action: str
    slot: int
    channel: str
    verdict: str
    reasons: tuple[str, ...]


# One account's plan by (stage, action, slot, channel): the ledger key without the
# destination. A plan has at most one step per action, so the same identity under both ladders
# is the same contact, perhaps sent to another destination (then its ledger key differs).
AccountPlan = dict[tuple[str, str, int, str], Judged]


def judged_steps(steps: list[PlannedStep]) -> AccountPlan:
    return {
        (s.stage.id, s.action.id, s.slot, s.action.channel): Judged(
            s.key, s.stage.id, s.action.id, s.slot, s.action.channel, s.verdict.verdict,
            tuple(s.verdict.reasons))
        for s in steps
    }


def account_status(plan: AccountPlan) -> str:
    verdicts = {j.verdict for j in plan.values()}
    if SEND in verdicts:
        return ALLOWED
    if BLOCK in verdicts:
        return BLOCKED
    if DEFER in verdicts:
        return DEFERRED
    return IDLE


def holding_reasons(plan: AccountPlan) -> set[str]:
    """The codes that kept an account's contacts from going out (its block and defer verdicts)."""
    return {code for j in plan.values() if j.verdict != SEND for code in j.reasons}


@dataclass
class StepChanges:
    """Changes of one (stage, action, channel): sends gained, sends lost, verdict moves and
    contacts that go to another destination (another contact point, so another ledger key)."""

    added: int = 0
    removed: int = 0
    rerouted: int = 0
    # "old->new" verdict of the same contact (ledger key); NOT_DUE when one ladder lacks it.
    moves: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> int:
        """Verdict changes of contacts both ladders plan (defer <-> send <-> block)."""
        return sum(n for move, n in self.moves.items()
                   if not {NOT_DUE, NOT_APPLICABLE} & set(move.split("->")))  # fmt: skip


@dataclass
class AccountShift:
    """Accounts that moved into one status (newly blocked, newly allowed) and why."""

    accounts: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    came_from: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, account_ref: str, was: str, reasons: set[str]) -> None:
        self.accounts += 1
        self.came_from[was] += 1
        self.by_reason.update(reasons)
        if len(self.examples) < EXAMPLES:
            self.examples.append(account_ref)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "by_reason": dict(sorted(self.by_reason.items())),
            "from": dict(sorted(self.came_from.items())),
            "examples": list(self.examples),
        }


@dataclass
class LadderDiff:
    """The running comparison: bounded by the ladders' size, never by the portfolio's."""

    as_of: dt.date
    old: Ladder
    new: Ladder
    accounts: int = 0
    steps: Counter[str] = field(default_factory=Counter)  # "old"/"new" -> due steps
    sends: Counter[str] = field(default_factory=Counter)  # "old"/"new" -> send verdicts
    by_step: dict[tuple[str, str, str], StepChanges] = field(default_factory=dict)
    newly_blocked: AccountShift = field(default_factory=AccountShift)
    newly_allowed: AccountShift = field(default_factory=AccountShift)

    def compare_account(
        self, account_ref: str, old: AccountPlan, new: AccountPlan,
        not_applicable: tuple[set[tuple[str, str]], set[tuple[str, str]]] = (set(), set()),
    ) -> None:
        """``not_applicable``: the (stage, action) pairs of the account's stage that do not apply
        to it under OLD and under NEW; a contact one side lacks for that reason shows as
        NOT_APPLICABLE rather than NOT_DUE."""
        self.accounts += 1
        for side, plan in (("old", old), ("new", new)):
            self.steps[side] += len(plan)
            self.sends[side] += sum(j.verdict == SEND for j in plan.values())
        for identity in old.keys() | new.keys():
            before, after = old.get(identity), new.get(identity)
            pair = identity[:2]
            was = before.verdict if before else (
                NOT_APPLICABLE if pair in not_applicable[0] else NOT_DUE)
            now = after.verdict if after else (
                NOT_APPLICABLE if pair in not_applicable[1] else NOT_DUE)
            rerouted = before is not None and after is not None and before.key != after.key
            if was == now and not rerouted:
                continue
            stage, action, _slot, channel = identity
            row = self.by_step.setdefault((stage, action, channel), StepChanges())
            row.rerouted += rerouted
            if was != now:
                row.moves[f"{was}->{now}"] += 1
                row.added += now == SEND
                row.removed += was == SEND
        status_old, status_new = account_status(old), account_status(new)
        if status_new == BLOCKED and status_old != BLOCKED:
            # Why it is stopped now: the codes of the new plan's blocks and defers.
            self.newly_blocked.add(account_ref, status_old, holding_reasons(new))
        if status_new == ALLOWED and status_old != ALLOWED:
            # Why it was held back before (nothing, when the old ladder had nothing due).
            self.newly_allowed.add(account_ref, status_old, holding_reasons(old))

    @property
    def empty(self) -> bool:
        return not self.by_step and not self.newly_blocked.accounts and not self.newly_allowed.accounts

    def as_dict(self) -> dict[str, Any]:
        rows = [
            {
                "stage": stage,
                "action": action,
                "channel": channel,
                "added": c.added,
                "removed": c.removed,
                "changed": c.changed,
                "rerouted": c.rerouted,
                "moves": dict(sorted(c.moves.items())),
            }
            for (stage, action, channel), c in sorted(self.by_step.items())
        ]
        return {
            "as_of": self.as_of.isoformat(),
            "old": {"file": self.old.source, "version": self.old.version,
                    "steps": self.steps["old"], "send": self.sends["old"]},
            "new": {"file": self.new.source, "version": self.new.version,
                    "steps": self.steps["new"], "send": self.sends["new"]},
            "accounts": self.accounts,
            "empty": self.empty,
            "totals": {
                "added": sum(r["added"] for r in rows),
                "removed": sum(r["removed"] for r in rows),
                "changed": sum(r["changed"] for r in rows),
                "rerouted": sum(r["rerouted"] for r in rows),
            },
            "contacts": rows,
            "newly_blocked": self.newly_blocked.as_dict(),
            "newly_allowed": self.newly_allowed.as_dict(),
        }


def _skipped(stage: Stage | None, party: Party) -> set[tuple[str, str]]:
    """The (stage, action) pairs of ``stage`` that do not apply to ``party`` (applies_to)."""
    if stage is None:
        return set()
    return {(stage.id, a.id) for a in stage.actions if not_applicable(stage, a, party) is not None}


def diff_accounts(
    diff: LadderDiff,
    accounts: dict[int, AccountRecord],
    *,
    role: str,
    step_hook: StepHook,
) -> None:
    """Plan one batch under both ladders (pure: plan_account, as the planner calls it)."""
    for account in accounts.values():
        party = party_of(account, role)
        old_stage, _, old_steps = plan_account(diff.old, account, diff.as_of, role=role,
                                               step_hook=step_hook)
        new_stage, _, new_steps = plan_account(diff.new, account, diff.as_of, role=role,
                                               step_hook=step_hook)
        diff.compare_account(account.account_ref, judged_steps(old_steps),
                             judged_steps(new_steps),
                             (_skipped(old_stage, party), _skipped(new_stage, party)))


def diff_ladders(
    engine: Engine, old: Ladder, new: Ladder, day: dt.date, batch_size: int = 10000
) -> LadderDiff:
    """Compare what ``old`` and ``new`` would plan for ``day``, one account-id batch at a time;
    reads the portfolio and ledger history as the planner does and writes nothing."""
    assert_valid()
    role = policy_settings().role
    diff = LadderDiff(day, old, new)
    for lo, hi in account_ranges(engine, batch_size):
        with engine.connect() as conn:
            accounts = load_accounts(conn, lo, hi, day=day, cutoff=plan_cutoff(day))
        # The placement preview has no side effect, so one hook serves both ladders; built per
        # batch as plan_range builds it.
        diff_accounts(diff, accounts, role=role, step_hook=plan_step_hook(engine, day))
        del accounts  # only the counters outlive the batch
    return diff


def format_diff(d: dict[str, Any]) -> str:
    """The diff (LadderDiff.as_dict) as a table for a terminal."""
    lines = [
        f"Ladder diff as of {d['as_of']}, {d['accounts']} accounts",
        f"  old: {d['old']['file']} version {d['old']['version']} "
        f"({d['old']['steps']} due steps, {d['old']['send']} send)",
        f"  new: {d['new']['file']} version {d['new']['version']} "
        f"({d['new']['steps']} due steps, {d['new']['send']} send)",
    ]
    if d["empty"]:
        lines.append("No differences: both ladders plan the same contacts with the same verdicts.")
        return "\n".join(lines)
    rows = d["contacts"]
    if rows:
        head = ("stage", "action", "channel", "added", "removed", "changed", "rerouted",
                "verdict moves")
        table = [head] + [
            (r["stage"], r["action"], r["channel"], str(r["added"]), str(r["removed"]),
             str(r["changed"]), str(r["rerouted"]),
             ", ".join(f"{m} {n}" for m, n in r["moves"].items()))
            for r in rows
        ]
        t = d["totals"]
        table.append(("total", "", "", str(t["added"]), str(t["removed"]), str(t["changed"]),
                      str(t["rerouted"]), ""))
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        lines.append("")
        lines.append("Contacts (added: send under new only; removed: send under old only)")
        for row in table:
            cells = [
                cell.rjust(w) if 3 <= i <= 6 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  " + "  ".join(cells).rstrip())
    for title, shift in (("newly blocked", d["newly_blocked"]),
                         ("newly allowed", d["newly_allowed"])):
        lines.append("")
        lines.append(f"Accounts {title}: {shift['accounts']}")
        if not shift["accounts"]:
            continue
        lines.append("  before: " + ", ".join(f"{k} {n}" for k, n in shift["from"].items()))
        reasons = ", ".join(f"{k} {n}" for k, n in shift["by_reason"].items())
        lines.append(f"  reasons: {reasons or 'none (nothing was due)'}")
        lines.append("  e.g. " + ", ".join(shift["examples"]))
    return "\n".join(lines)
