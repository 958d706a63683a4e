"""The daily run's controls (its trigger form): a dry run writes and sends nothing; a scope
plans and sends only some channels, stages or accounts and leaves the rest of the day's plan as
it was."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from outreach.services import daily as service
from outreach.storage.db import get_engine
from tests import factories as f

DAY = dt.date(2026, 12, 1)


@pytest.fixture
def portfolio(app_data: Path) -> list[dict[str, Any]]:
    engine = f.database(str(get_engine().url))
    # Early reminders (SMS, email, the validation notice letter) and calls.
    return [f.add_account(engine, as_of=DAY, dpd=dpd, validation_notice_sent_on=DAY - dt.timedelta(20))
            for dpd in (3, 4, 20, 21)]  # fmt: skip


def plan(controls: service.RunControls) -> list[dict[str, int]]:
    return [service.plan_batch(DAY, b["lo"], b["hi"], controls)
            for b in service.plan_batches(DAY, 1000, controls)]  # fmt: skip


def ledger() -> dict[str, tuple[str, str, int]]:
    """key -> (channel, state, plan decisions on record)."""
    with get_engine().connect() as conn:
        return {r[0]: (r[1], r[2], int(r[3])) for r in conn.execute(text(
            "SELECT c.key, c.channel, c.state, (SELECT COUNT(*) FROM policy_decision d "
            "WHERE d.contact_key = c.key AND d.phase = 'plan') FROM contact c"))}


def test_a_dry_run_counts_the_plan_and_writes_and_sends_nothing(portfolio: list[Any]) -> None:
    controls = service.run_controls({"dry_run": True})
    counts = plan(controls)
    assert sum(c["steps"] for c in counts) > 0
    assert ledger() == {}
    assert all(service.dispatch_batches(DAY, ch, 1000, controls) == [] for ch in
               ("sms", "email", "call", "letter", "agency", "legal"))  # fmt: skip
    summary = service.summary(DAY, controls, counts)
    assert summary["dry_run"] is True and summary["plan"]["steps"] == sum(c["steps"] for c in counts)


def test_a_channel_scope_plans_and_sends_only_that_channel(portfolio: list[Any]) -> None:
    controls = service.run_controls({"channels": ["sms"]})
    plan(controls)
    assert {channel for channel, _, _ in ledger().values()} == {"sms"}
    assert service.dispatch_batches(DAY, "email", 1000, controls) == []
    assert service.dispatch_batches(DAY, "sms", 1000, controls) != []


def test_a_scoped_rerun_keeps_the_rest_of_the_days_plan_and_its_decisions(
    portfolio: list[Any],
) -> None:
    plan(service.run_controls({}))
    before = ledger()
    assert {channel for channel, _, _ in before.values()} >= {"sms", "email", "call"}
    plan(service.run_controls({"stages": ["collections_call"], "channels": ["call"]}))
    after = ledger()
    assert after.keys() == before.keys()
    # Every planned contact still has exactly one plan decision: the scoped run replaced only
    # the decisions of what it planned.
    assert all(n == 1 for _, _, n in after.values())


def test_an_account_scope_plans_and_dispatches_only_the_named_accounts(
    portfolio: list[Any],
) -> None:
    named = portfolio[2]
    controls = service.run_controls({"accounts": [named["account_ref"]]})
    plan(controls)
    with get_engine().connect() as conn:
        planned_for = set(conn.execute(text("SELECT DISTINCT account_id FROM contact")).scalars())
    assert planned_for == {named["account_id"]}
    plan(service.run_controls({}))  # the whole day: every account has its contacts now
    batches = service.dispatch_batches(DAY, "call", 1000, controls)
    assert batches == [{"lo": named["account_id"], "hi": named["account_id"]}]


@pytest.mark.parametrize(("params", "message"), [
    ({"channels": ["fax"]}, "params.channels: unknown channel 'fax'"),
    ({"stages": ["no_such_stage"]}, "params.stages: 'no_such_stage' is not a stage"),
    ({"accounts": [f"A{i}" for i in range(1001)]}, "params.accounts: at most 1000"),
])  # fmt: skip
def test_bad_controls_are_refused_with_the_param_named(
    app_data: Path, params: dict[str, Any], message: str
) -> None:
    f.database(str(get_engine().url))
    with pytest.raises(ValueError, match=message):
        service.run_controls(params)


def test_an_unknown_account_ref_is_refused_by_name(portfolio: list[Any]) -> None:
    with pytest.raises(ValueError, match="params.accounts: no account 'NOPE'"):
        service.plan_batches(DAY, 1000, service.run_controls({"accounts": ["NOPE"]}))
