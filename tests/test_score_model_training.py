"""Training the score on a stored history: the as-of days and their snapshots, the held-out
accounts, the stored version, the CLI (train, list, show, activate) and the one active model."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from outreach.entry.cli import main
from outreach.measurement import scorecard
from outreach.measurement.score_config import ScoreConfig
from outreach.measurement.score_training import as_of_days, held_out
from outreach.services import scores
from outreach.storage.models import AccountSnapshot, Payment, ScoreModel
from tests import factories

DAY = dt.date(2026, 6, 1)
CONFIG = ScoreConfig.model_validate({
    "training": {"window_days": 42, "step_days": 7, "min_rows": 100, "holdout_share": 0.3},
    "features": [
        {"name": "dpd", "bins": 5, "monotone": "decreasing"},
        {"name": "payments_90d", "edges": [1, 2], "monotone": "increasing"},
        {"name": "past_due", "bins": 3},
        {"name": "product"},
    ],
})  # fmt: skip


def _history(engine: Any, accounts: int, seed: int) -> dict[int, float]:
    """Accounts whose weekly chance of paying falls with days past due; a snapshot on each as-of
    day. Returns each account's weekly probability."""
    r = random.Random(seed)
    days = as_of_days(CONFIG, DAY)
    weekly: dict[int, float] = {}
    snapshots, payments = [], []
    for n in range(accounts):
        start_dpd = r.randint(5, 150)
        a = factories.add_account(
            engine, as_of=DAY, dpd=start_dpd + 90, postal=False, phones=[], emails=[],
            product=r.choice(["credit_card", "consumer_loan"]),
        )["account_id"]  # fmt: skip
        weekly[a] = p = scorecard.sigmoid(0.5 - start_dpd / 40)
        for day in days:
            dpd = start_dpd + (day - (DAY - dt.timedelta(days=90))).days
            snapshots.append({"as_of": day, "account_id": a, "dpd": dpd, "bucket": "x",
                              "past_due": Decimal(100 + n % 7 * 50), "balance": Decimal(2000),
                              "currency": "USD"})  # fmt: skip
        for week in range(13):
            if r.random() < p:
                paid_on = DAY - dt.timedelta(days=90 - 7 * week - r.randint(0, 6))
                payments.append({"payment_ref": f"P{a}-{week}", "account_id": a,
                                 "paid_on": paid_on, "amount": Decimal("25.00")})  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(AccountSnapshot), snapshots)
        conn.execute(insert(Payment), payments)
    return weekly


@pytest.fixture
def db(app_data: Path) -> Any:
    return factories.database(f"sqlite:///{app_data / 'outreach.db'}")


def test_the_as_of_days_end_a_horizon_before_the_training_day() -> None:
    days = as_of_days(CONFIG, DAY)
    assert days[0] == DAY - dt.timedelta(days=30)
    assert days[-1] == DAY - dt.timedelta(days=72)
    assert len(days) == 7


def test_held_out_accounts_are_chosen_by_hash_of_the_id_in_their_share() -> None:
    share = sum(held_out(a, 0.3) for a in range(10_000)) / 10_000
    assert 0.28 < share < 0.32
    assert [held_out(a, 0.3) for a in range(50)] == [held_out(a, 0.3) for a in range(50)]


def test_training_stores_a_version_with_its_window_metrics_and_calibration(db: Any) -> None:
    _history(db, 400, seed=7)
    result = scores.train(DAY, by="analyst", engine=db, config=CONFIG)
    m = result["metrics"]
    assert result["window_from"] == (DAY - dt.timedelta(days=72)).isoformat()
    assert result["window_to"] == (DAY - dt.timedelta(days=30)).isoformat()
    # Each account's days all fall on one side: the held-out rows are whole accounts.
    assert m["rows"] + m["train_rows"] == 400 * 7
    assert m["rows"] % 7 == 0
    assert m["auc"] > 0.7  # payers are the low-dpd accounts: a real signal to find
    assert len(m["calibration"]) == 10
    assert sum(g["count"] for g in m["calibration"]) == m["rows"]
    with db.connect() as conn:
        row = conn.execute(select(ScoreModel)).mappings().one()
    assert row["version"] == result["version"] and row["state"] == "trained"
    assert row["trained_by"] == "analyst" and row["label"] == "pays_within_30d"
    assert row["features"] == ["dpd", "payments_90d", "past_due", "product"]
    assert row["model"]["kind"] == "binned_logistic"
    # The same history trains the same version, stored once.
    again = scores.train(DAY, by="analyst", engine=db, config=CONFIG)
    assert again["version"] == result["version"]
    assert len(scores.list_models(engine=db)) == 1


def test_training_refuses_without_snapshots_in_the_window(db: Any) -> None:
    factories.add_account(db, as_of=DAY)
    with pytest.raises(scores.TrainingRefused, match="no account snapshots"):
        scores.train(DAY, engine=db, config=CONFIG)


def test_the_cli_trains_lists_shows_and_activates_one_model_at_a_time(
    db: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _history(db, 300, seed=11)
    config = tmp_path / "score.yaml"
    config.write_text(json.dumps(CONFIG.model_dump(mode="json")))  # JSON is YAML
    monkeypatch.setenv("OUTREACH_SCORE", str(config))
    assert main(["score", "train", "--as-of", DAY.isoformat(), "--by", "analyst", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["version"]
    assert main(["score", "train", "--as-of", (DAY - dt.timedelta(days=7)).isoformat()]) == 0
    out = capsys.readouterr().out
    assert "held-out AUC" in out and "calibration" in out
    second = out.split()[2]
    assert second != first
    assert scores.active_model(db) is None
    assert main(["score", "activate", first, "--by", "lead"]) == 0
    active = scores.active_model(db)
    assert active is not None and active["version"] == first
    assert main(["score", "activate", second, "--by", "lead"]) == 0
    capsys.readouterr()
    assert main(["score", "list", "--json"]) == 0
    states = {r["version"]: r["state"] for r in json.loads(capsys.readouterr().out)}
    assert states == {first: "retired", second: "active"}
    assert main(["score", "show", second]) == 0
    shown = capsys.readouterr().out
    assert "dpd (decreasing):" in shown and "held-out AUC" in shown
    assert main(["score", "show", "nosuchversion"]) == 3
    assert main(["score", "activate", "nosuchversion", "--by", "lead"]) == 3


def test_the_weekly_training_returns_the_version_or_why_not(db: Any, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:  # fmt: skip
    config = tmp_path / "score.yaml"
    config.write_text(json.dumps(CONFIG.model_dump(mode="json")))
    monkeypatch.setenv("OUTREACH_SCORE", str(config))
    refused = scores.train_weekly(DAY, engine=db)
    assert refused["version"] is None and "no account snapshots" in refused["refused"]
    _history(db, 200, seed=3)
    done = scores.train_weekly(DAY, engine=db)
    assert done["version"] and done["train_rows"] + done["held_out_rows"] == 200 * 7
    [row] = scores.list_models(engine=db)
    assert (row["version"], row["trained_by"], row["state"]) == (
        done["version"],
        "weekly",
        "trained",
    )


def test_the_weekly_dag_trains_the_score_beside_the_report() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dags = Path(__file__).resolve().parent.parent / "dags"
    dag = DagBag(dag_folder=str(dags / "outreach_weekly.py")).dags["outreach_weekly"]
    task = dag.get_task("train_score")
    assert task.upstream_task_ids == set()  # a failed report does not stop the training
    assert task.retries == 3
