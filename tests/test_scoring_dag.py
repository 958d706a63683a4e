"""The daily DAG's ``score`` task in a real Airflow: with a score model active, the day's run
scores the portfolio between settling and planning, and the plan reads the bands (every plan
decision records its account's band); the task's XCom is counts only."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, text

from tests.test_dag_run import DAY, LOGICAL_DATE, _load_airflow_local

pytestmark = pytest.mark.airflow

ACCOUNTS = 60
MODEL = {"kind": "binned_logistic", "intercept": -0.2, "features": [
    {"name": "dpd", "type": "numeric", "edges": [31, 91], "categories": None,
     "points": [1.2, 0.0, -1.5, 0.0], "label_en": "Days past due", "label_zh": "逾期天数"},
    {"name": "product", "type": "category", "edges": None,
     "categories": ["credit_card", "consumer_loan"], "points": [0.1, -0.1, 0.0],
     "label_en": "Product", "label_zh": "产品"},
]}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("score-dag")
    data = root / "data"
    data.mkdir()
    app_env = {
        "OUTREACH_DATA_DIR": str(data),
        "OUTREACH_DATABASE_URL": f"sqlite:///{data / 'outreach.db'}",
        "OUTREACH_OUTBOX_URL": f"sqlite:///{data / 'outbox.db'}",
    }
    runner = _load_airflow_local()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    base.update(app_env)
    env = runner.airflow_env(root / "airflow", base=base)
    log_path = root / "airflow.log"
    with log_path.open("w") as log:
        runner.bootstrap(env, log)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in app_env.items():
            patch.setenv(name, value)
        from outreach.portfolio.generator import generate
        from outreach.portfolio.importer import import_file
        from outreach.services import daily as service
        from outreach.storage.models import ScoreModel

        service.setup_database()
        portfolio = root / "portfolio.jsonl"
        generate(ACCOUNTS, seed=5, out=portfolio, as_of=DAY)
        engine = create_engine(app_env["OUTREACH_DATABASE_URL"])
        import_file(portfolio, engine=engine)
        with engine.begin() as conn:
            conn.execute(insert(ScoreModel).values(
                version="dag-m1", kind="binned_logistic", label="pays_within_30d",
                state="active", trained_at=dt.datetime(2025, 1, 6), trained_by="test",
                window_from=dt.date(2024, 9, 1), window_to=dt.date(2024, 12, 1),
                features=["dpd", "product"], model=MODEL, metrics={}))  # fmt: skip
        with log_path.open("a") as log:
            result = dict(runner.run_dag(env, "outreach_daily", LOGICAL_DATE,
                                         {"clock": "logical", "batch_size": 50}, log=log))  # fmt: skip
        assert result["state"] == "success", log_path.read_text(errors="replace")[-4000:]
        yield {"result": result, "engine": engine, "airflow_db": root / "airflow" / "airflow.db"}
        engine.dispose()


def test_the_day_is_scored_before_it_is_planned_and_the_plan_reads_the_bands(
    run: dict[str, Any],
) -> None:
    assert run["result"]["tasks"]["score"] == {"success": 1}
    with run["engine"].connect() as conn:
        scored = dict(conn.execute(text(
            "SELECT band, COUNT(*) FROM account_score WHERE as_of = :d AND model_version = 'dag-m1' "
            "GROUP BY band"), {"d": DAY}).all())  # fmt: skip
        evidence = [json.loads(r[0]) for r in conn.execute(text(
            "SELECT d.evidence FROM policy_decision d JOIN account_score s "
            "ON s.account_id = d.account_id AND s.as_of = d.as_of "
            "WHERE d.phase = 'plan' AND d.as_of = :d"), {"d": DAY})]  # fmt: skip
    assert sum(scored.values()) > 0
    assert evidence and all(e["ladder.score_band"]["facts"]["model_version"] == "dag-m1"
                            for e in evidence)  # fmt: skip
    with sqlite3.connect(run["airflow_db"]) as conn:
        raw = conn.execute(
            "select value from xcom where dag_id = 'outreach_daily' and task_id = 'score' "
            "and key = 'return_value'"
        ).fetchone()[0]
    xcom = json.loads(raw if isinstance(raw, str) else bytes(raw).decode())
    # Counts only: the day, the model, how many per band; no account, no score of anyone.
    assert xcom == {"as_of": DAY.isoformat(), "model_version": "dag-m1",
                    "scored": sum(scored.values()),
                    "by_band": {b: scored.get(b, 0) for b in ("high", "medium", "low")}}  # fmt: skip


def test_the_task_sits_between_settle_and_the_plan(run: dict[str, Any]) -> None:
    with sqlite3.connect(run["airflow_db"]) as conn:
        times = dict(conn.execute(
            "select task_id, min(start_date) from task_instance where dag_id = 'outreach_daily' "
            "and task_id in ('settle', 'score', 'plan_batches') group by task_id").fetchall())  # fmt: skip
    assert times["settle"] <= times["score"] <= times["plan_batches"]
