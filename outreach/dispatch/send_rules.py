"""The rules a dispatch run judges with: the user's role, the ladder in force and what it says
of each planned row's stage and action, read once per run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine

from outreach.kernel.clock import utcnow
from outreach.kernel.facts import AccountRecord
from outreach.kernel.identity import Identity, identity
from outreach.kernel.ledger import DueContact
from outreach.kernel.policy_settings import policy_settings
from outreach.planning.experiment_arms import arm_ladders
from outreach.planning.judging import account_pack_versions, party_of
from outreach.planning.ladder import Action, Ladder, Stage, not_applicable
from policies.model import BLOCK, RuleResult, Verdict
from policies.packs import assert_valid


@dataclass(frozen=True)
class SendRules:
    """What the send-time gate needs besides the facts: the user's role and each ladder
    action's traits (purpose, dialer), looked up by the ledger row's stage and action."""

    role: str
    actions: dict[tuple[str, str], Action]
    stages: dict[str, Stage] = field(default_factory=dict)
    householding: bool = True  # core.household_one_per_day (config/policy.yaml)
    ladder: Ladder | None = None  # what the letters may say will follow (outreach.planning.consequences)
    # Read once per run rather than once per message (config/policy.yaml, the identity).
    approved_agencies: frozenset[str] = frozenset()
    who: Identity | None = None
    # The running experiments' arms' ladders by version, as (actions, stages): a contact
    # planned in an arm is judged with its arm's ladder (its config_version), never another's.
    arm_ladders: dict[str, tuple[dict[tuple[str, str], Action], dict[str, Stage]]] = field(
        default_factory=dict
    )

    def action(self, contact: DueContact) -> Action | None:
        # An action no longer in the ladder is judged by its channel's defaults.
        if contact.arm is not None and contact.config_version in self.arm_ladders:
            return self.arm_ladders[contact.config_version][0].get((contact.stage, contact.action))
        return self.actions.get((contact.stage, contact.action))

    def stage(self, contact: DueContact) -> Stage | None:
        if contact.arm is not None and contact.config_version in self.arm_ladders:
            return self.arm_ladders[contact.config_version][1].get(contact.stage)
        return self.stages.get(contact.stage)

    def not_applicable(self, contact: DueContact, account: AccountRecord, day: dt.date
                       ) -> Verdict | None:  # fmt: skip
        """A block when the ladder in force (or the contact's arm's) says the contact's stage or
        action does not apply to the account (``applies_to``): a row planned before the ladder
        changed is not sent."""
        stage, action = self.stage(contact), self.action(contact)
        if stage is None or action is None:
            return None
        why = not_applicable(stage, action, party_of(account, self.role))
        if why is None:
            return None
        result = RuleResult(NOT_APPLICABLE, BLOCK, "Ladder configuration (applies_to)", "",
                            {"stage": stage.id, "action": action.id, "why": why})  # fmt: skip
        return Verdict(BLOCK, (NOT_APPLICABLE,), results=(result,),
                       pack_versions=account_pack_versions(account, self.role, day))  # fmt: skip


NOT_APPLICABLE = "ladder.not_applicable"


def ladder_actions(ladder: Ladder) -> dict[tuple[str, str], Action]:
    """(stage id, action id) -> action, the resolution actions under their own stage."""
    return {(st.id, a.id): a for st in ladder.all_stages for a in st.actions}


def send_rules(engine: Engine, day: dt.date | None = None) -> SendRules:
    """The rules in force now: validated packs, the policy settings, the ladder in force (the
    approved version in ``engine``'s database, or the configured file before any approval)."""
    assert_valid()
    from outreach.planning.ladder_versions import ladder_in_force

    role = policy_settings().role
    # Who is writing must be configured before anything is sent: no message names a
    # placeholder company or sends disputes to a box nobody reads.
    who = identity(role)
    ladder = ladder_in_force(engine=engine)
    # The resolution actions are filed under their own stage (ladder.loop_stage).
    actions = ladder_actions(ladder)
    settings = policy_settings()
    # Experiments that ran recently may still have planned rows due: their arms' ladders.
    arms = arm_ladders(engine, day or utcnow().date(), ladder)
    return SendRules(role=role, actions=actions, householding=settings.householding,
                     stages={st.id: st for st in ladder.all_stages}, ladder=ladder,
                     approved_agencies=settings.approved_agencies, who=who,
                     arm_ladders={
                         version: (ladder_actions(lad), {st.id: st for st in lad.all_stages})
                         for version, lad in (arms.by_version() if arms else {}).items()
                     })  # fmt: skip

