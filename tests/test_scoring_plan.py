"""The score band as a planning fact: a ladder stage may enter on it (``score_band``), the band is
in the evidence of every decision, explain and the timeline show the score and its top factors;
with no active model the band is None and every plan is what it was. A score never overrides a
policy gate: the gentler stage a band leads to is still judged, and blocked, by the gates."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text, update

from outreach.entry.cli import main
from outreach.kernel.facts import load_accounts
from outreach.operations.ledger_views import account_timeline
from outreach.planning.ladder import check_ladder_text, ladder_version, load_ladder
from outreach.planning.planner import iter_plan, plan_cutoff
from outreach.services.accounts import explain
from outreach.settings import PROJECT_ROOT
from outreach.storage.models import AccountScore, ScoreModel
from tests import factories as f
from tests.test_console import auth_manager, bearer  # noqa: F401  (the real console login)

DAY = dt.date(2026, 11, 23)  # a Monday
NOTICE_SENT = dt.date(2026, 10, 1)  # validation notice out: every channel is open
BANDS = "bands:\n  - {name: high, min_score: 0.5}\n  - {name: medium, min_score: 0.2}\n" \
        "  - {name: low, min_score: 0.0}\n"  # fmt: skip
# The lowest-risk band (the highest propensity to pay) gets a gentler stage: one SMS a week.
BANDED = """\
name: banded
stages:
  - id: gentle
    entry: {dpd_min: 1, dpd_max: 90, score_band: high}
    actions:
      - {id: gentle_sms, channel: sms, template: sms/reminder, cadence: {every_days: 7, max_times: 2}}
  - id: standard
    entry: {dpd_min: 1}
    actions:
      - {id: standard_sms, channel: sms, template: sms/reminder, cadence: {every_days: 2, max_times: 6}}
      - {id: standard_email, channel: email, template: email/reminder, cadence: {every_days: 3, max_times: 3}}
"""
FACTORS = [
    {"feature": "promises_kept", "label_en": "Promises kept", "label_zh": "履约承诺",
     "value": 2, "bin": ">= 2", "points": 1.2},
    {"feature": "dpd", "label_en": "Days past due", "label_zh": "逾期天数", "value": 40,
     "bin": "31 – 91", "points": -0.4},
    {"feature": "product", "label_en": "Product", "label_zh": "产品", "value": "credit_card",
     "bin": "credit_card", "points": 0.1},
]  # fmt: skip


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OUTREACH_DATABASE_URL", url)
    (tmp_path / "score.yaml").write_text(BANDS, encoding="utf-8")
    monkeypatch.setenv("OUTREACH_SCORE", str(tmp_path / "score.yaml"))
    (tmp_path / "banded.yaml").write_text(BANDED, encoding="utf-8")
    monkeypatch.setenv("OUTREACH_LADDER", str(tmp_path / "banded.yaml"))


@pytest.fixture
def ladder(tmp_path: Path) -> Any:
    return load_ladder(tmp_path / "banded.yaml")


def debtor(engine: Engine, **kw: Any) -> dict[str, Any]:
    emails = [{"value": "pat@example.com", "consent": True}]
    columns: dict[str, Any] = {"validation_notice_sent_on": NOTICE_SENT,
                               "initial_communication_on": NOTICE_SENT, **kw}  # fmt: skip
    return f.add_account(engine, as_of=DAY, dpd=40, balance="2400.00", past_due="600.00",
                         emails=emails, **columns)  # fmt: skip


def add_model(engine: Engine, version: str = "m1", state: str = "active") -> None:
    with engine.begin() as conn:
        conn.execute(insert(ScoreModel).values(
            version=version, kind="binned_logistic", label="pays_within_30d", state=state,
            trained_at=dt.datetime(2026, 11, 20, 6), trained_by="test",
            window_from=dt.date(2026, 7, 1), window_to=dt.date(2026, 10, 1), features=[],
            model={"kind": "binned_logistic", "intercept": 0.0, "features": []},
            metrics={}))  # fmt: skip


def add_score(engine: Engine, account_id: int, band: str, *, as_of: dt.date = DAY,
              version: str = "m1", score: str = "0.81000") -> None:  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(AccountScore).values(
            account_id=account_id, as_of=as_of, model_version=version, score=score, band=band,
            factors=FACTORS))  # fmt: skip


def plan(engine: Engine, ladder: Any, day: dt.date = DAY) -> dict[int, list[dict[str, Any]]]:
    for _ in iter_plan(engine, ladder, day, 1000):
        pass
    out: dict[int, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for r in conn.execute(text(
            "SELECT c.account_id, c.stage, c.action, c.verdict, c.reasons, d.evidence "
            "FROM contact c JOIN policy_decision d ON d.contact_key = c.key AND d.phase = 'plan' "
            "WHERE c.plan_date = :d ORDER BY c.account_id, c.action"), {"d": day}):  # fmt: skip
            row = dict(r._mapping)
            row["evidence"] = json.loads(row["evidence"])
            out.setdefault(row["account_id"], []).append(row)
    return out


# --- the ladder's entry key -------------------------------------------------------------------


def test_a_stage_enters_on_the_listed_bands_only(ladder: Any) -> None:
    from decimal import Decimal

    assert ladder.stage_for(40, Decimal(600), None, "credit_card", score_band="high").id == "gentle"
    assert (
        ladder.stage_for(40, Decimal(600), None, "credit_card", score_band="low").id == "standard"
    )
    # No band (no model active, or the account not scored): the banded stage is not entered.
    assert ladder.stage_for(40, Decimal(600), None, "credit_card").id == "standard"


def test_an_unknown_band_is_refused_with_its_yaml_path_and_line() -> None:
    model, errors = check_ladder_text(BANDED.replace("score_band: high", "score_band: [high, vip]"))
    assert model is None
    assert [(e.path, e.line) for e in errors] == [("stages[0].entry.score_band[1]", 4)]
    assert "'vip' is not a score band of config/score.yaml (high, medium, low)" in errors[0].message


def test_the_bands_are_read_again_when_score_yaml_changes(tmp_path: Path) -> None:
    gold = BANDED.replace("score_band: high", "score_band: gold")
    assert check_ladder_text(gold)[0] is None
    (tmp_path / "score.yaml").write_text(
        "bands:\n  - {name: gold, min_score: 0.7}\n  - {name: rest, min_score: 0.0}\n",
        encoding="utf-8")  # fmt: skip
    # A later modification time, whatever the clock's granularity (the file is read again on it).
    later = (tmp_path / "score.yaml").stat().st_mtime_ns + 2_000_000_000
    os.utime(tmp_path / "score.yaml", ns=(later, later))
    model, errors = check_ladder_text(gold)
    assert errors == [] and model is not None
    assert model.stages[0].entry.score_band == ("gold",)


def test_a_ladder_without_the_key_keeps_its_version() -> None:
    default = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")
    dumped = default.model.model_dump(mode="json")
    assert all(stage["entry"]["score_band"] is None for stage in dumped["stages"])
    # The version a ladder had before the key existed: its meaning without the key at all.
    import hashlib

    from outreach.planning.ladder import _without_unset_applies_to

    for stage in dumped["stages"]:
        del stage["entry"]["score_band"]
    canonical = json.dumps(_without_unset_applies_to(dumped), sort_keys=True,
                           separators=(",", ":"))  # fmt: skip
    assert default.version == ladder_version(default.model)
    assert default.version == hashlib.sha256(canonical.encode()).hexdigest()[:12]


# --- the band as a fact of the plan -------------------------------------------------------------


def test_without_an_active_model_there_is_no_band_and_the_plan_is_as_before(
    engine: Engine, ladder: Any
) -> None:
    acc = debtor(engine)
    add_model(engine, state="trained")
    add_score(engine, acc["account_id"], "high")  # a score of a model that is not in force
    with engine.connect() as conn:
        record = load_accounts(conn, acc["account_id"], acc["account_id"], day=DAY,
                               cutoff=plan_cutoff(DAY))[acc["account_id"]]  # fmt: skip
    assert record.score_band is None
    rows = plan(engine, ladder)[acc["account_id"]]
    assert {r["stage"] for r in rows} == {"standard"}
    assert all("ladder.score_band" not in r["evidence"] for r in rows)


def test_the_lowest_risk_band_gets_the_gentler_stage_and_the_band_is_in_the_evidence(
    engine: Engine, ladder: Any
) -> None:
    high, low = debtor(engine), debtor(engine)
    add_model(engine)
    add_score(engine, high["account_id"], "high", as_of=DAY - dt.timedelta(days=1))
    add_score(engine, low["account_id"], "low", score="0.10000")
    # A score after the plan day is not read.
    add_score(engine, high["account_id"], "low", as_of=DAY + dt.timedelta(days=1))
    planned = plan(engine, ladder)
    gentle = planned[high["account_id"]]
    assert [(r["stage"], r["action"], r["verdict"]) for r in gentle] == [
        ("gentle", "gentle_sms", "send")
    ]
    assert gentle[0]["evidence"]["ladder.score_band"]["facts"] == {
        "score_band": "high",
        "model_version": "m1",
    }
    standard = planned[low["account_id"]]
    assert {r["action"] for r in standard} == {"standard_sms", "standard_email"}
    assert all(r["evidence"]["ladder.score_band"]["facts"]["score_band"] == "low"
               for r in standard)  # fmt: skip


@pytest.mark.parametrize(
    ("blocked_by", "reason"),
    [
        ("opt_out", "core.opted_out"),
        ("cease_communication", "us_reg_f.cease_communication"),
        # A US dispute stops collection within the validation period (notice sent 10 days ago).
        ("dispute", "us_reg_f.dispute_in_validation_period"),
    ],
)
def test_a_score_never_overrides_a_policy_gate(
    engine: Engine, ladder: Any, blocked_by: str, reason: str
) -> None:
    notice = DAY - dt.timedelta(days=10) if blocked_by == "dispute" else NOTICE_SENT
    acc = debtor(engine, validation_notice_sent_on=notice, initial_communication_on=notice)
    if blocked_by == "opt_out":
        f.add_opt_out(engine, acc["person_id"], "sms", "*", dt.datetime(2026, 11, 1, 12))
    else:
        f.add_hold(engine, acc["account_id"], blocked_by, DAY - dt.timedelta(days=3))
    add_model(engine)
    add_score(engine, acc["account_id"], "high")
    rows = plan(engine, ladder)[acc["account_id"]]
    # The band chose the gentler stage; the gate still blocks its step, with the gate's reason.
    assert [(r["stage"], r["action"], r["verdict"]) for r in rows] == [
        ("gentle", "gentle_sms", "block")
    ]
    assert reason in rows[0]["reasons"].split()
    assert rows[0]["evidence"][reason]["outcome"] == "block"
    assert rows[0]["evidence"]["ladder.score_band"]["facts"]["score_band"] == "high"


# --- explain and the timeline -------------------------------------------------------------------


def test_explain_shows_the_score_band_model_and_top_factors(
    engine: Engine, ladder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    acc = debtor(engine)
    add_model(engine)
    add_score(engine, acc["account_id"], "high")
    ref = acc["account_ref"]
    e = explain(engine, ladder, ref, DAY)
    assert e is not None
    assert e["stage"] == "gentle" and e["facts"]["score_band"] == "high"
    assert e["score"] == {"as_of": "2026-11-23", "model_version": "m1", "score": "0.81000",
                          "band": "high", "factors": FACTORS}  # fmt: skip
    assert main(["explain", ref, "--as-of", str(DAY)]) == 0
    out = capsys.readouterr().out
    assert "score 0.81000, band high (model m1, scored 2026-11-23)" in out
    assert "+1.200 Promises kept = 2" in out and "-0.400 Days past due = 40" in out
    # The model retired: no band, no score, the standard stage.
    with engine.begin() as conn:
        conn.execute(update(ScoreModel).values(state="retired"))
    e = explain(engine, ladder, ref, DAY)
    assert e is not None and e["score"] is None and e["stage"] == "standard"


def test_the_timeline_shows_the_latest_score(engine: Engine) -> None:
    acc = debtor(engine)
    add_model(engine)
    add_score(engine, acc["account_id"], "medium", as_of=DAY - dt.timedelta(days=1),
              score="0.30000")  # fmt: skip
    add_score(engine, acc["account_id"], "high")
    t = account_timeline(engine, acc["account_ref"], pii=False)
    assert t is not None
    assert t["score"]["band"] == "high" and t["score"]["as_of"] == "2026-11-23"
    assert [x["label_zh"] for x in t["score"]["factors"]] == ["履约承诺", "逾期天数", "产品"]


def test_the_console_timeline_page_shows_the_band_and_factors_in_both_languages(
    engine: Engine, auth_manager: Any  # noqa: F811
) -> None:
    from fastapi.testclient import TestClient

    from outreach.entry.console import create_app

    acc = debtor(engine)
    client = TestClient(create_app(engine=engine, now=lambda: dt.datetime(2026, 11, 23, 18)))
    headers = bearer(auth_manager, "vic", "VIEWER")
    page = client.get("/timeline", params={"account_ref": acc["account_ref"]}, headers=headers)
    assert page.status_code == 200 and "No score (no active score model" in page.text
    add_model(engine)
    add_score(engine, acc["account_id"], "high")
    page = client.get("/timeline", params={"account_ref": acc["account_ref"]}, headers=headers)
    assert page.status_code == 200
    assert "band <strong>high</strong>" in page.text and "model m1" in page.text
    for label in ("Promises kept", "履约承诺", "Days past due", "逾期天数", "+1.200", "-0.400"):
        assert label in page.text
    api = client.get("/api/timeline", params={"account_ref": acc["account_ref"]}, headers=headers)
    assert api.json()["score"]["factors"][0]["feature"] == "promises_kept"
    # The ladder page says which stage enters on which band.
    ladder = client.get("/ladder", headers=headers)
    assert ladder.status_code == 200 and "score band high" in ladder.text
