"""The simulator's engine (outreach.simulation.engine): the real daily pipeline on a database of
its own, day after day, with consumers (a stand-in for the behavioural model, tests/
sim_stand_in.py) answering through the same services a real consumer's action goes through."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from outreach.simulation import engine as sim_engine
from outreach.simulation.engine import SimResult, SimulationError, simulate
from tests import sim_stand_in

START = dt.date(2025, 1, 6)  # a Monday
ACCOUNTS = 60
DAYS = 3
SEED = 5


def _rows(result: SimResult, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(result.database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the application's own database would be: the simulation must never touch it."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory, home: Path) -> SimResult:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OUTREACH_DATA_DIR", str(home))
        patch.setenv("OUTREACH_DATABASE_URL", f"sqlite:///{home / 'outreach.db'}")
        patch.setenv("OUTREACH_OUTBOX_URL", f"sqlite:///{home / 'outbox.db'}")
        return simulate(ACCOUNTS, DAYS, SEED, START, workdir=tmp_path_factory.mktemp("sim-a"),
                        model=sim_stand_in)  # fmt: skip


@pytest.fixture(scope="module")
def second_by_cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same simulation again, through ``outreach simulate --json``."""
    from outreach.entry import cli

    workdir = tmp_path_factory.mktemp("sim-b")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sim_engine, "behaviour", sim_stand_in)
        captured: list[str] = []
        patch.setattr("builtins.print", lambda *a, **k: captured.append(" ".join(map(str, a))))
        code = cli.main(["simulate", "--accounts", str(ACCOUNTS), "--days", str(DAYS), "--seed",
                         str(SEED), "--start", START.isoformat(), "--workdir", str(workdir),
                         "--json"])  # fmt: skip
    assert code == 0
    return {"summary": json.loads(captured[-1]), "workdir": workdir}


def test_the_same_seed_gives_the_same_days_and_the_same_amounts(
    first: SimResult, second_by_cli: dict[str, Any]
) -> None:
    again = second_by_cli["summary"]
    mine = first.summary()
    assert mine["payments"] > 0 and mine["collected"]
    for key in ("sent", "calls", "responses", "payments", "collected", "promises",
                "paid_within_horizon"):  # fmt: skip
        assert again[key] == mine[key], key
    theirs = create_engine(f"sqlite:///{second_by_cli['workdir'] / 'outreach.db'}")
    query = ("SELECT account_id, paid_on, amount FROM payment WHERE source <> 'import' "
             "ORDER BY payment_ref")  # fmt: skip
    with theirs.connect() as conn:
        their_payments = list(conn.execute(text(query)))
        their_truth = list(conn.execute(text("SELECT * FROM sim_truth ORDER BY account_id")))
    theirs.dispose()
    assert their_payments == _rows(first, query)
    assert their_truth == _rows(first, "SELECT * FROM sim_truth ORDER BY account_id")


def test_the_days_ran_the_real_pipeline(first: SimResult) -> None:
    assert [d["day"] for d in first.per_day] == [
        (START + dt.timedelta(days=n)).isoformat() for n in range(DAYS)
    ]
    sent = _rows(first, "SELECT channel, COUNT(*) FROM contact WHERE state = 'sent' "
                        "GROUP BY channel")  # fmt: skip
    assert {"sms", "letter", "call"} <= {c for c, _ in sent}
    phases = {p for (p,) in _rows(first, "SELECT DISTINCT phase FROM policy_decision")}
    assert phases == {"plan", "send"}
    dispositions = _rows(first, "SELECT disposition, COUNT(*) FROM call_task WHERE "
                                "agent = :agent GROUP BY disposition", agent=sim_engine.AGENT)  # fmt: skip
    assert sum(n for _, n in dispositions) == sum(first.summary()["calls"].values()) > 0
    allocated = _rows(first, "SELECT COUNT(*) FROM payment_allocation a JOIN payment p ON "
                             "p.id = a.payment_id WHERE p.source <> 'import'")  # fmt: skip
    assert allocated[0][0] > 0
    # Collected reconciles with the ledger's payments, per currency, to the cent.
    posted = _rows(first, "SELECT a.currency, SUM(p.amount) FROM payment p JOIN account a ON "
                          "a.id = p.account_id WHERE p.source <> 'import' GROUP BY a.currency")  # fmt: skip
    from decimal import Decimal

    assert {c: f"{Decimal(str(a)):.2f}" for c, a in posted} == first.summary()["collected"]


def test_the_truth_is_kept_for_every_account(first: SimResult) -> None:
    stored = _rows(first, "SELECT account_id, p_true, paid_within_horizon, first_paid_on "
                          "FROM sim_truth ORDER BY account_id")  # fmt: skip
    assert len(stored) == len(first.truth) == ACCOUNTS
    payers = {a for (a,) in _rows(first, "SELECT DISTINCT account_id FROM payment "
                                         "WHERE source <> 'import'")}  # fmt: skip
    assert {r.account_id for r in stored if r.paid_within_horizon} == payers
    assert all(0 <= r.p_true <= 1 for r in stored)


def test_a_consumer_who_says_stop_is_not_texted_again(first: SimResult) -> None:
    stopped = _rows(first, "SELECT a.id, o.recorded_at FROM opt_out o JOIN account a ON "
                           "a.person_id = o.person_id WHERE o.source = 'self_service' "
                           "AND o.channel = 'sms'")  # fmt: skip
    assert stopped, "the stand-in's consumers say STOP to their first text"
    assert all(a % sim_stand_in.SimParams().stop_every == 0 for a, _ in stopped)
    texted_after = _rows(first, "SELECT COUNT(*) FROM contact c JOIN account a ON a.id = "
                                "c.account_id JOIN opt_out o ON o.person_id = a.person_id AND "
                                "o.channel = 'sms' AND o.source = 'self_service' WHERE "
                                "c.channel = 'sms' AND c.state = 'sent' AND c.sent_at > o.recorded_at")  # fmt: skip
    assert texted_after[0][0] == 0


def test_a_consumer_who_disputes_gets_no_collection_contact_until_verified(
    first: SimResult,
) -> None:
    # Outside the US a dispute stops collection until its verification is sent
    # (core.dispute_open); a US collector's rule stops it only within the validation period
    # (us_reg_f.dispute_in_validation_period), so the US accounts are left out here.
    held = ("FROM contact c JOIN account a ON a.id = c.account_id JOIN account_hold h ON "
            "h.account_id = c.account_id AND h.kind = 'dispute' AND h.source IN "
            "('agent', 'self_service') JOIN verification_task v ON v.hold_id = h.id "
            "WHERE a.jurisdiction_country <> 'US' ")  # fmt: skip
    disputed = _rows(first, "SELECT COUNT(DISTINCT c.account_id) " + held)
    assert disputed[0][0] > 0
    # Sent after the day of the dispute and before its verification letter went out: nothing
    # but the verification letter itself (the gates stop the rest; the simulator does not).
    during = _rows(first, "SELECT c.action " + held + "AND c.state = 'sent' AND "
                          "c.plan_date > h.started_on AND (v.sent_at IS NULL OR "
                          "c.sent_at < v.sent_at)")  # fmt: skip
    assert {a for (a,) in during} <= {"verification_letter"}
    blocked = _rows(first, "SELECT COUNT(*) FROM policy_decision WHERE verdict = 'block' AND "
                           "reasons LIKE '%core.dispute_open%'")  # fmt: skip
    assert blocked[0][0] > 0


def test_the_simulation_never_touches_the_application_database(
    first: SimResult, home: Path
) -> None:
    assert not (home / "outreach.db").exists() and not (home / "outbox.db").exists()
    assert str(first.workdir) in first.database_url
    assert os.environ.get("OUTREACH_DATABASE_URL") != first.database_url


def test_a_simulation_refuses_the_application_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTREACH_DATABASE_URL", f"sqlite:///{tmp_path / 'outreach.db'}")
    with pytest.raises(SimulationError):
        simulate(10, 1, SEED, START, workdir=tmp_path, model=sim_stand_in)
    assert not (tmp_path / "outreach.db").exists()
    # Nor its data dir, whatever the database (the workdir's inbox and drops are wiped).
    monkeypatch.setenv("OUTREACH_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path))
    (tmp_path / "inbox").mkdir()
    with pytest.raises(SimulationError):
        simulate(10, 1, SEED, START, workdir=tmp_path, model=sim_stand_in)
    assert (tmp_path / "inbox").is_dir()


@pytest.mark.airflow
def test_through_airflow_each_day_is_a_dag_run(tmp_path: Path) -> None:
    result = simulate(50, 2, SEED, START, workdir=tmp_path / "sim", model=sim_stand_in,
                      through_airflow=True)  # fmt: skip
    assert [d["planned"]["task_instances"] > 0 for d in result.per_day] == [True, True]
    sent = _rows(result, "SELECT COUNT(*) FROM contact WHERE state = 'sent'")
    assert sent[0][0] > 0 and len(result.truth) == 50


def test_the_behavioural_model_plays_the_consumers_by_default(tmp_path: Path) -> None:
    from outreach.simulation import behaviour

    result = simulate(30, 2, SEED, START, workdir=tmp_path / "sim")
    params = behaviour.load_params()
    with create_engine(result.database_url).connect() as conn:
        profiles = conn.execute(text("SELECT COUNT(*) FROM account")).scalar_one()
    assert len(result.truth) == profiles == 30
    # The truth is the model's own: p_true as the model drew it for each account.
    assert all(0 < t.p_true < 1 for t in result.truth.values())
    horizon_end = START + dt.timedelta(days=params.horizon_days)
    assert all(
        t.paid_within_horizon == (t.first_paid_on is not None and t.first_paid_on < horizon_end)
        for t in result.truth.values()
    )
    assert sum(sum(d["responses"].values()) for d in result.per_day) > 0
