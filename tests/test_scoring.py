"""The day's scoring: the active score model applied to every account in collections, set-based,
into account_score (score, band, the top three factors); nothing at all without an active model;
a rerun of the day replaces that day's rows; the batches do not change the result."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text, update

from outreach.measurement.score_config import score_config
from outreach.measurement.scoring import score_day
from outreach.services import daily
from outreach.services.daily import RunControls
from outreach.storage.models import ScoreModel
from tests import factories as f

DAY = dt.date(2026, 11, 23)
TRAINED = dt.datetime(2026, 11, 20, 6, 0)
BANDS = "bands:\n  - {name: high, min_score: 0.5}\n  - {name: medium, min_score: 0.2}\n" \
        "  - {name: low, min_score: 0.0}\n"  # fmt: skip

# A hand-written scorecard (the JSON a trained model is stored as): intercept and points chosen
# so that each test account's probability can be worked out by hand below.
DPD = {"name": "dpd", "type": "numeric", "edges": [31, 91], "categories": None,
       "points": [1.5, 0.0, -2.5, 0.0], "label_en": "Days past due", "label_zh": "逾期天数"}  # fmt: skip
PRODUCT = {"name": "product", "type": "category", "edges": None,
           "categories": ["credit_card", "consumer_loan"], "points": [0.2, -0.4, 0.0],
           "label_en": "Product", "label_zh": "产品"}  # fmt: skip
BALANCE = {"name": "balance", "type": "numeric", "edges": [1000], "categories": None,
           "points": [0.1, -0.1, 0.0], "label_en": "Balance", "label_zh": "余额"}  # fmt: skip
BROKEN = {"name": "promises_broken", "type": "numeric", "edges": [1], "categories": None,
          "points": [0.05, -0.8, 0.0], "label_en": "Promises broken", "label_zh": "违约承诺"}  # fmt: skip
MODEL = {"kind": "binned_logistic", "intercept": 0.0,
         "features": [DPD, PRODUCT, BALANCE, BROKEN]}  # fmt: skip


def p(*points: float) -> float:
    return 1 / (1 + math.exp(-sum(points)))


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OUTREACH_DATABASE_URL", url)
    (tmp_path / "score.yaml").write_text(BANDS, encoding="utf-8")
    monkeypatch.setenv("OUTREACH_SCORE", str(tmp_path / "score.yaml"))


def add_model(engine: Engine, version: str, model: dict[str, Any], state: str = "active") -> None:
    with engine.begin() as conn:
        conn.execute(insert(ScoreModel).values(
            version=version, kind="binned_logistic", label="pays_within_30d", state=state,
            trained_at=TRAINED, trained_by="test", window_from=DAY - dt.timedelta(days=120),
            window_to=DAY - dt.timedelta(days=30), features=[x["name"] for x in model["features"]],
            model=model, metrics={"auc": 0.7}))  # fmt: skip


def scores(engine: Engine, day: dt.date = DAY) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        return {r.account_id: dict(r._mapping) for r in conn.execute(text(
            "SELECT account_id, model_version, score, band, factors FROM account_score "
            "WHERE as_of = :d ORDER BY account_id"), {"d": day})}  # fmt: skip


def portfolio(engine: Engine) -> dict[str, int]:
    """Four accounts in collections whose points are worked out by hand, and one paid up."""
    ids = {
        "early": f.add_account(engine, as_of=DAY, dpd=10, balance="2400.00")["account_id"],
        "mid": f.add_account(engine, as_of=DAY, dpd=40, balance="2400.00")["account_id"],
        "late": f.add_account(engine, as_of=DAY, dpd=100, balance="800.00")["account_id"],
        "loan": f.add_account(engine, as_of=DAY, dpd=40, balance="2400.00",
                              product="consumer_loan")["account_id"],
        "paid_up": f.add_account(engine, as_of=DAY, dpd=40, past_due="0.00")["account_id"],
    }  # fmt: skip
    return ids


def test_without_an_active_model_nothing_is_scored_and_the_step_says_so(engine: Engine) -> None:
    portfolio(engine)
    add_model(engine, "m-trained", MODEL, state="trained")  # trained, never switched on
    result = daily.score(DAY)
    assert result["scored"] == 0 and result["skipped"] == "no active score model"
    assert scores(engine) == {}


def test_each_account_in_collections_gets_its_score_band_and_top_three_factors(
    engine: Engine,
) -> None:
    ids = portfolio(engine)
    add_model(engine, "m1", MODEL)
    result = daily.score(DAY)
    assert result == {"as_of": "2026-11-23", "model_version": "m1", "scored": 4,
                      "by_band": {"high": 2, "medium": 1, "low": 1}}  # fmt: skip
    got = scores(engine)
    assert ids["paid_up"] not in got  # nothing past due: not in collections, not scored
    expected = {
        # dpd, product, balance (>= 1000: -0.1), promises broken (none: 0.05)
        "early": (p(1.5, 0.2, -0.1, 0.05), "high"),
        "mid": (p(0.0, 0.2, -0.1, 0.05), "high"),
        "late": (p(-2.5, 0.2, 0.1, 0.05), "low"),
        "loan": (p(0.0, -0.4, -0.1, 0.05), "medium"),
    }
    for name, (probability, band) in expected.items():
        row = got[ids[name]]
        assert float(row["score"]) == pytest.approx(probability, abs=1e-5), name
        assert row["band"] == band and row["model_version"] == "m1", name
    # The factors: the three largest by |points|, with both labels, the value and the points.
    late = got[ids["late"]]["factors"]
    late = late if isinstance(late, list) else json.loads(late)
    assert [x["feature"] for x in late] == ["dpd", "product", "balance"]
    assert late[0]["label_en"] == "Days past due" and late[0]["label_zh"] == "逾期天数"
    assert late[0]["value"] == 100 and late[0]["points"] == -2.5
    assert [abs(x["points"]) for x in late] == sorted(
        (abs(x["points"]) for x in late), reverse=True
    )


def test_a_rerun_of_the_day_replaces_that_days_rows_only(engine: Engine) -> None:
    ids = portfolio(engine)
    add_model(engine, "m1", MODEL)
    config = score_config()
    score_day(engine, DAY - dt.timedelta(days=1), config)
    score_day(engine, DAY, config)
    before = scores(engine, DAY - dt.timedelta(days=1))
    # A new model is switched on and the day is scored again: its rows are the new model's.
    harsher = {**MODEL, "intercept": -3.0}
    with engine.begin() as conn:
        conn.execute(update(ScoreModel).where(ScoreModel.version == "m1").values(state="retired"))
    add_model(engine, "m2", harsher)
    score_day(engine, DAY, config)
    after = scores(engine)
    assert set(after) == {ids["early"], ids["mid"], ids["late"], ids["loan"]}
    assert {r["model_version"] for r in after.values()} == {"m2"}
    assert float(after[ids["early"]]["score"]) == pytest.approx(p(-3, 1.5, 0.2, -0.1, 0.05),
                                                                abs=1e-5)  # fmt: skip
    assert scores(engine, DAY - dt.timedelta(days=1)) == before  # the day before kept


def test_the_batch_size_does_not_change_the_scores(engine: Engine) -> None:
    portfolio(engine)
    add_model(engine, "m1", MODEL)
    config = score_config()
    score_day(engine, DAY, config, batch_size=1)
    one_by_one = scores(engine)
    score_day(engine, DAY, config, batch_size=1000)
    assert scores(engine) == one_by_one and len(one_by_one) == 4


def test_a_dry_run_writes_no_score(engine: Engine) -> None:
    portfolio(engine)
    add_model(engine, "m1", MODEL)
    assert daily.score(DAY, RunControls(dry_run=True))["skipped"] == "dry run"
    assert scores(engine) == {}


def test_outreach_plan_scores_first_when_a_model_is_active(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    from outreach.entry.cli import main

    ids = portfolio(engine)
    assert main(["plan", "--as-of", str(DAY)]) == 0
    assert scores(engine) == {}  # no model: the plan ran as before, nothing scored
    add_model(engine, "m1", MODEL)
    assert main(["plan", "--as-of", str(DAY)]) == 0
    assert set(scores(engine)) == {ids["early"], ids["mid"], ids["late"], ids["loan"]}
