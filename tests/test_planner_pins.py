"""Boundaries of the planner's judging that a mutation run of outreach/planning/planner.py found unpinned
(docs/testing.md): the first day past due, an account in no stage, a scoped run, the order of
text destinations, and explain's cadence on the day an action is due again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine

from outreach.kernel.facts import AccountRecord, load_accounts
from outreach.planning.explain import explain_account
from outreach.planning.judging import candidate_destinations
from outreach.planning.ladder import Ladder, load_ladder
from outreach.planning.planner import PlanScope, plan_account, plan_cutoff
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
MOBILE = {"type": "mobile", "zones": "America/New_York", "sms_consent": True,
          "call_consent": True}  # fmt: skip


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def ladder() -> Ladder:
    return load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")


def record(engine: Engine, account_id: int, day: dt.date = DAY) -> AccountRecord:
    with engine.connect() as conn:
        return load_accounts(conn, account_id, account_id, day=day, cutoff=plan_cutoff(day))[
            account_id
        ]


def test_an_account_one_day_past_due_is_in_the_first_stage(engine: Engine, ladder: Ladder
                                                           ) -> None:  # fmt: skip
    acc = f.add_account(engine, as_of=DAY, dpd=1, phones=[{"value": "+12125550101", **MOBILE}])
    stage, dpd, steps = plan_account(ladder, record(engine, acc["account_id"]), DAY)
    assert (stage.id if stage else None, dpd) == ("early_reminder", 1)
    assert steps


def test_an_account_in_no_stage_has_its_days_past_due_and_no_steps(engine: Engine,
                                                                   ladder: Ladder) -> None:  # fmt: skip
    # 5 days past due but a balance under every stage's minimum.
    acc = f.add_account(engine, as_of=DAY, dpd=5, balance="5.00", past_due="5.00")
    assert plan_account(ladder, record(engine, acc["account_id"]), DAY) == (None, 5, [])


def test_a_scoped_run_plans_only_its_stages_and_channels(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=5, phones=[{"value": "+12125550101", **MOBILE}],
                        emails=[{"value": "pat@example.com", "consent": True}])  # fmt: skip
    account = record(engine, acc["account_id"])
    everything = {s.action.channel for s in plan_account(ladder, account, DAY)[2]}
    assert {"sms", "email"} <= everything
    by_stage = plan_account(ladder, account, DAY, scope=PlanScope(stages=frozenset({"early_reminder"})))[2]  # noqa: E501
    assert {s.action.channel for s in by_stage} == everything
    only_sms = plan_account(ladder, account, DAY, scope=PlanScope(channels=frozenset({"sms"})))[2]
    assert {s.action.channel for s in only_sms} == {"sms"}
    other_stage = PlanScope(stages=frozenset({"final_notice"}))
    assert plan_account(ladder, account, DAY, scope=other_stage)[2] == []


def test_a_text_goes_to_the_debtors_own_mobile_before_an_estate_representatives(
    engine: Engine,
) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=5, phones=[
        {"value": "+12125550177", **MOBILE, "relation": "estate_representative"},
        {"value": "+12125550101", **MOBILE},
    ])  # fmt: skip
    first = candidate_destinations(record(engine, acc["account_id"]), "sms", "debtor")[0]
    assert first.relation == "self"


def test_explain_says_an_action_is_due_on_the_day_its_cadence_allows(engine: Engine,
                                                                     ladder: Ladder) -> None:  # fmt: skip
    acc = f.add_account(engine, as_of=DAY, dpd=5, phones=[{"value": "+12125550101", **MOBILE}])
    account = record(engine, acc["account_id"])
    sms = next(a for a in ladder.stages[0].actions if a.channel == "sms")
    # Last taken exactly every_days ago: due again today.
    account.ladder_history[(ladder.stages[0].id, sms.id)] = (
        1, DAY - dt.timedelta(days=sms.cadence.every_days))
    entry = next(e for e in explain_account(ladder, account, DAY)["actions"]
                 if e["action"] == sms.id)  # fmt: skip
    assert entry["due"] is True, entry
