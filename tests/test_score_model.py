"""The propensity-to-pay score: its configuration, the scorecard's points and explanations, the
features as of a day (no future leakage), training, versions and activation."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from outreach.measurement import scorecard
from outreach.measurement.features import CATALOG, feature_rows, label_rows
from outreach.measurement.score_config import (
    ScoreConfig,
    ScoreConfigError,
    check_score_text,
    score_config,
)
from outreach.storage.models import (
    AccountSnapshot,
    Arrangement,
    DelinquencyCause,
    Payment,
    Promise,
    StatedMeans,
)
from tests import factories

DAY = dt.date(2026, 3, 2)
ROOT = Path(__file__).resolve().parents[1]


# --- configuration --------------------------------------------------------------------------


def test_the_shipped_score_config_is_valid_and_names_known_features() -> None:
    cfg = score_config(ROOT / "config" / "score.yaml")
    assert cfg.label.horizon_days == 30
    assert {f.name for f in cfg.features} <= set(CATALOG)
    assert [b.name for b in cfg.bands] == ["high", "medium", "low"]
    assert cfg.band_for(0.9) == "high"
    assert cfg.band_for(0.2) == "medium"
    assert cfg.band_for(0.0) == "low"


@pytest.mark.parametrize(
    ("text", "path", "line", "words"),
    [
        ("features:\n  - {name: dpd}\n  - {name: shoe_size}\n", "features[1].name", 3,
         "unknown feature"),
        ("label:\n  horizon_days: 0\n", "label.horizon_days", 2, "greater than or equal"),
        ("bands:\n  - {name: high, min_score: 0.5}\n  - {name: mid, min_score: 0.6}\n"
         "  - {name: low, min_score: 0}\n",
         "bands[1].min_score", 3, "highest first"),
        ("bands:\n  - {name: high, min_score: 0.5}\n", "bands[0].min_score", 2, "start at 0"),
        ("training:\n  window: 3\n", "training.window", 2, "unknown key"),
        ("features:\n  - {name: product, bins: 3}\n", "features[0].bins", 2, "categories"),
        ("features:\n  - {name: dpd, edges: [30, 10]}\n", "features[0].edges", 2, "increasing"),
    ],
)  # fmt: skip
def test_a_bad_score_config_names_the_yaml_path_and_line(
    text: str, path: str, line: int, words: str
) -> None:
    model, errors = check_score_text(text)
    assert model is None
    assert [(e.path, e.line) for e in errors] == [(path, line)]
    assert words in errors[0].message


def test_a_bad_score_config_file_fails_the_whole_configuration_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "score.yaml"
    bad.write_text("bands:\n  - {name: only, min_score: 0.5}\n")
    monkeypatch.setenv("OUTREACH_SCORE", str(bad))
    with pytest.raises(ScoreConfigError) as caught:
        score_config()
    assert "bands[0].min_score (line 2)" in str(caught.value)


# --- the scorecard ----------------------------------------------------------------------------

MODEL: dict[str, Any] = {
    "kind": "binned_logistic",
    "intercept": -1.0,
    "features": [
        {"name": "dpd", "type": "numeric", "edges": [30, 90], "categories": None,
         "points": [0.8, 0.1, -0.9, 0.0], "label_en": "Days past due", "label_zh": "逾期天数"},
        {"name": "promises_broken", "type": "numeric", "edges": [1], "categories": None,
         "points": [0.2, -0.5, 0.0], "label_en": "Promises broken", "label_zh": "违约承诺次数"},
        {"name": "product", "type": "category", "edges": None,
         "categories": ["consumer_loan", "credit_card"], "points": [0.05, -0.05, 0.3],
         "label_en": "Product", "label_zh": "产品"},
        {"name": "cause", "type": "category", "edges": None, "categories": ["job_loss"],
         "points": [-0.3, 0.01], "label_en": "Cause", "label_zh": "原因"},
    ],
}  # fmt: skip


def test_apply_adds_the_points_of_each_bin_and_explains_with_the_three_largest() -> None:
    row = {"dpd": 95, "promises_broken": 0, "product": "credit_card", "cause": "job_loss"}
    [(p, factors)] = list(scorecard.apply(MODEL, [row]))
    assert p == pytest.approx(scorecard.sigmoid(-1.0 - 0.9 + 0.2 - 0.05 - 0.3))
    assert [f["feature"] for f in factors] == ["dpd", "cause", "promises_broken"]
    assert factors[0] == {"feature": "dpd", "label_en": "Days past due", "label_zh": "逾期天数",
                          "value": 95, "bin": ">= 90", "points": -0.9}  # fmt: skip


def test_bin_edges_missing_values_and_unknown_categories() -> None:
    dpd, _, product, _ = MODEL["features"]
    assert [scorecard.bin_index(dpd, v) for v in (0, 29.9, 30, 89, 90, None)] == [0, 0, 1, 1, 2, 3]
    assert scorecard.bin_label(dpd, 1) == "30 – 90"
    assert scorecard.bin_label(dpd, 3) == "missing"
    assert scorecard.bin_index(product, "mortgage") == 2
    assert scorecard.bin_index(product, None) == 2
    assert scorecard.bin_label(product, 2) == "other or missing"


def _synthetic(n: int, seed: int) -> tuple[list[dict[str, Any]], list[int], list[float]]:
    """Rows whose true probability falls with days past due and broken promises."""
    r = random.Random(seed)
    rows, labels, truth = [], [], []
    for _ in range(n):
        row: dict[str, Any] = {"dpd": r.randint(1, 200), "promises_broken": r.choice([0, 0, 0, 1, 2, 3]),
               "product": r.choice(["credit_card", "consumer_loan"]),
               "balance": r.uniform(100, 5000)}  # fmt: skip
        p = scorecard.sigmoid(1.0 - row["dpd"] / 60 - 0.5 * row["promises_broken"])
        rows.append(row)
        truth.append(p)
        labels.append(int(r.random() < p))
    return rows, labels, truth


def test_the_fitted_scorecard_is_json_data_that_ranks_close_to_the_truth() -> None:
    rows, labels, _ = _synthetic(4000, 1)
    cfg = ScoreConfig.model_validate({"features": [
        {"name": "dpd", "bins": 6, "monotone": "decreasing"},
        {"name": "promises_broken", "edges": [1, 2, 3], "monotone": "decreasing"},
        {"name": "product"}, {"name": "balance", "bins": 4},
    ]})  # fmt: skip
    model = scorecard.fit(cfg, rows, labels)
    assert json.loads(json.dumps(model)) == model  # data, not objects
    test_rows, test_labels, truth = _synthetic(3000, 2)
    auc = scorecard.evaluate(scorecard.probabilities(model, test_rows), test_labels)["auc"]
    best = scorecard.evaluate(truth, test_labels)["auc"]
    assert best - auc < 0.02
    # Centred points: each feature's mean points over the training rows is zero.
    for feature in model["features"]:
        mean = sum(feature["points"][scorecard.bin_index(feature, r.get(feature["name"]))]
                   for r in rows) / len(rows)  # fmt: skip
        assert mean == pytest.approx(0, abs=1e-5)


def test_a_monotone_feature_is_refitted_with_violating_bins_merged() -> None:
    # In the data, one broken promise pays MORE than none: the fitted points would rise there;
    # the constraint merges the bins until the points never rise with more broken promises.
    r = random.Random(3)
    rows, labels = [], []
    for _ in range(3000):
        broken = r.choice([0, 1, 2, 3])
        p = {0: 0.3, 1: 0.45, 2: 0.2, 3: 0.1}[broken]
        rows.append({"promises_broken": broken})
        labels.append(int(r.random() < p))
    free = ScoreConfig.model_validate({"features": [{"name": "promises_broken",
                                                     "edges": [1, 2, 3]}]})  # fmt: skip
    unconstrained = scorecard.fit(free, rows, labels)["features"][0]["points"][:4]
    assert unconstrained[1] > unconstrained[0]
    cfg = ScoreConfig.model_validate({"features": [{"name": "promises_broken",
                                                    "edges": [1, 2, 3],
                                                    "monotone": "decreasing"}]})  # fmt: skip
    model = scorecard.fit(cfg, rows, labels)
    feature = model["features"][0]
    assert model["merges"] >= 1
    assert len(feature["edges"]) < 3
    steps = feature["points"][: len(feature["edges"]) + 1]
    assert all(b <= a + 1e-9 for a, b in zip(steps, steps[1:], strict=False))


def test_calibration_groups_by_predicted_probability() -> None:
    predicted = [i / 100 for i in range(100)]
    observed = [int(i >= 50) for i in range(100)]
    table = scorecard.calibration(predicted, observed)
    assert len(table) == 10 and sum(g["count"] for g in table) == 100
    assert table[0]["observed"] == 0.0 and table[-1]["observed"] == 1.0
    assert table[0]["predicted"] == pytest.approx(0.045)


# --- features as of a day -----------------------------------------------------------------------


def _add(engine: Any, table: Any, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(insert(table).values(**values))


def _noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12))


def test_features_read_only_what_was_known_on_the_day(engine: Any) -> None:
    acct = factories.add_account(engine, as_of=DAY, dpd=40, past_due="200.00", balance="900.00")
    a = acct["account_id"]
    before, after = DAY - dt.timedelta(days=10), DAY + dt.timedelta(days=5)
    factories.add_payment(engine, a, before, "50.00")
    factories.add_payment(engine, a, after, "70.00")  # after the day: never a feature
    factories.add_event(engine, a, _noon(before), "sms", "sent")
    factories.add_event(engine, a, _noon(before), "call", "conversation")
    factories.add_event(engine, a, _noon(DAY), "call", "wrong_number")
    factories.add_event(engine, a, _noon(after), "call", "conversation")
    common = {"account_id": a, "amount": Decimal("20"), "source": "agent",
              "recorded_at": _noon(before)}  # fmt: skip
    _add(engine, Promise, **common, due_on=before, status="kept", settled_on=before,
         made_at=_noon(before - dt.timedelta(days=3)))  # fmt: skip
    # Broken only after the day: on the day it was an open promise.
    _add(engine, Promise, **common, due_on=after, status="broken", settled_on=after,
         made_at=_noon(before))  # fmt: skip
    _add(engine, DelinquencyCause, account_id=a, cause="illness", source="agent",
         recorded_at=_noon(before))  # fmt: skip
    _add(engine, DelinquencyCause, account_id=a, cause="job_loss", source="agent",
         recorded_at=_noon(after))  # fmt: skip
    _add(engine, StatedMeans, account_id=a, monthly_income=Decimal("1000"),
         monthly_expenses=Decimal("900"), stated_on=before, source="agent",
         recorded_at=_noon(before))  # fmt: skip
    _add(engine, Arrangement, arrangement_ref="ARR1", account_id=a, kind="instalment",
         state="broken", total=Decimal("200"), term_months=2, instalment_amount=Decimal("100"),
         first_due_on=before, balance_at_offer=Decimal("900"), past_due_at_offer=Decimal("200"),
         created_at=_noon(before), accepted_at=_noon(before), ended_on=after,
         updated_at=_noon(after))  # fmt: skip
    with engine.connect() as conn:
        [row] = list(feature_rows(conn, DAY))
    assert row["account_id"] == a and row["snapshot"] is False
    assert row["dpd"] == 40 and row["past_due"] == 200.0 and row["balance"] == 900.0
    assert row["payments_90d"] == 1 and row["paid_share_90d"] == pytest.approx(0.25)
    assert row["days_since_payment"] == 10
    assert (row["sent_30d"], row["right_party_30d"], row["wrong_party_90d"]) == (1, 1, 1)
    assert (row["promises_made"], row["promises_kept"], row["promises_broken"]) == (2, 1, 0)
    assert (row["arrangement_active"], row["arrangements_broken"]) == (1, 0)
    assert row["cause"] == "illness"
    assert row["means_ratio"] == pytest.approx(0.5)
    assert (row["product"], row["country"], row["region"]) == ("credit_card", "US", "US-NY")
    # Five days later the later rows count.
    with engine.connect() as conn:
        [later] = list(feature_rows(conn, after))
    assert later["payments_90d"] == 2 and later["days_since_payment"] == 0
    assert later["promises_broken"] == 1 and later["arrangements_broken"] == 1
    assert later["arrangement_active"] == 0 and later["cause"] == "job_loss"
    assert later["right_party_30d"] == 2


def test_a_payment_reversed_after_the_day_still_counted_on_the_day(engine: Any) -> None:
    a = factories.add_account(engine, as_of=DAY)["account_id"]
    _add(
        engine,
        Payment,
        payment_ref="R1",
        account_id=a,
        paid_on=DAY - dt.timedelta(days=3),
        amount=Decimal("40"),
        status="reversed",
        reversed_on=DAY + dt.timedelta(days=2),
    )
    with engine.connect() as conn:
        [on_day] = list(feature_rows(conn, DAY))
        [later] = list(feature_rows(conn, DAY + dt.timedelta(days=2)))
    assert on_day["payments_90d"] == 1
    assert later["payments_90d"] == 0 and later["days_since_payment"] is None


def test_the_days_snapshot_says_where_the_account_stood(engine: Any) -> None:
    a = factories.add_account(engine, as_of=DAY, dpd=70, past_due="300.00")["account_id"]
    earlier = DAY - dt.timedelta(days=30)
    _add(
        engine,
        AccountSnapshot,
        as_of=earlier,
        account_id=a,
        dpd=40,
        bucket="31-60",
        past_due=Decimal("150"),
        balance=Decimal("800"),
        currency="USD",
    )
    with engine.connect() as conn:
        [row] = list(feature_rows(conn, earlier))
    assert (row["snapshot"], row["dpd"], row["past_due"], row["balance"]) == (
        True,
        40,
        150.0,
        800.0,
    )


def test_accounts_with_nothing_past_due_are_not_scored_and_ranges_split_the_work(
    engine: Any,
) -> None:
    ids = [factories.add_account(engine, as_of=DAY)["account_id"] for _ in range(4)]
    cured = factories.add_account(engine, as_of=DAY, past_due="0.00")["account_id"]
    with engine.connect() as conn:
        every = [r["account_id"] for r in feature_rows(conn, DAY)]
        halves = [r["account_id"] for r in feature_rows(conn, DAY, ids[0], ids[2])] + [
            r["account_id"] for r in feature_rows(conn, DAY, ids[2], cured + 1)
        ]
        with_cured = [r["account_id"] for r in feature_rows(conn, DAY, delinquent_only=False)]
    assert every == halves == ids
    assert cured in with_cured


def test_the_label_is_a_payment_within_the_horizon_not_reversed(engine: Any) -> None:
    payer, late, reversed_, none = (factories.add_account(engine, as_of=DAY)["account_id"]
                                    for _ in range(4))  # fmt: skip
    factories.add_payment(engine, payer, DAY + dt.timedelta(days=30), "10.00")
    factories.add_payment(engine, late, DAY + dt.timedelta(days=31), "10.00")
    factories.add_payment(engine, none, DAY, "10.00")  # on the day itself: a feature, not label
    _add(
        engine,
        Payment,
        payment_ref="RV",
        account_id=reversed_,
        paid_on=DAY + dt.timedelta(days=3),
        amount=Decimal("40"),
        status="reversed",
        reversed_on=DAY + dt.timedelta(days=9),
    )
    with engine.connect() as conn:
        labels = {r["account_id"]: r["label"] for r in label_rows(conn, DAY, 30)}
    assert labels == {payer: 1, late: 0, reversed_: 0, none: 0}
