"""Arrangement terms per score band: config/arrangements.yaml may give a band a longer maximum
term (``max_term`` with ``score_band``) or a settlement of its own (``score_bands``); an account
gets them by its band by the active model, and without a model every offer is what it was. Band
names are checked against config/score.yaml with their YAML path and line."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from outreach.resolution.arrangements import offers_for_account
from outreach.resolution.offers import offers
from outreach.resolution.policy import LATER_KEYS, parse_policy, resolution_policy
from outreach.services.config import arrangement_band_problems
from outreach.settings import PROJECT_ROOT
from outreach.storage.models import AccountScore, ScoreModel
from tests import factories as f

DAY = dt.date(2026, 11, 23)
BANDS = "bands:\n  - {name: high, min_score: 0.5}\n  - {name: medium, min_score: 0.2}\n" \
        "  - {name: low, min_score: 0.0}\n"  # fmt: skip
POLICY = """\
arrangements:
  instalments:
    min_instalment: {USD: 25}
    terms: [3, 6, 12, 24, 36]
    max_term:
      - {months: 12}
      - {country: US, months: 24}
      # The accounts most likely to pay may spread it longer.
      - {score_band: high, months: 36}
  settlements:
    - {id: early_settlement, dpd_min: 91, discount: 0.10}
    - {id: good_payer_settlement, dpd_min: 31, discount: 0.05, score_bands: [high]}
"""


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OUTREACH_DATABASE_URL", url)
    (tmp_path / "score.yaml").write_text(BANDS, encoding="utf-8")
    monkeypatch.setenv("OUTREACH_SCORE", str(tmp_path / "score.yaml"))
    (tmp_path / "arrangements.yaml").write_text(POLICY, encoding="utf-8")
    monkeypatch.setenv("OUTREACH_ARRANGEMENTS", str(tmp_path / "arrangements.yaml"))


def terms(band: str | None, *, dpd: int = 40, country: str = "US") -> list[tuple[str, int]]:
    found = offers(parse_policy(POLICY, "test"), balance=Decimal("2400.00"),
                   past_due=Decimal("600.00"), days_past_due=dpd, product="credit_card",
                   country=country, currency="USD", as_of=DAY, score_band=band)  # fmt: skip
    return [(o.band, o.term_months) for o in found]


def test_the_band_gets_its_longer_term_and_its_own_settlement() -> None:
    assert terms("high") == [("instalment_3m", 3), ("instalment_6m", 6), ("instalment_12m", 12),
                             ("instalment_24m", 24), ("instalment_36m", 36),
                             ("good_payer_settlement", 1)]  # fmt: skip
    # Another band, or no band at all (no model active): the terms everyone gets.
    usual = [("instalment_3m", 3), ("instalment_6m", 6), ("instalment_12m", 12),
             ("instalment_24m", 24)]  # fmt: skip
    assert terms("low") == terms(None) == usual
    # The most specific entry wins: a band counts more than a country.
    assert parse_policy(POLICY, "test").max_term("credit_card", "GB", "high") == 36
    assert parse_policy(POLICY, "test").max_term("credit_card", "GB", None) == 12


def test_an_account_gets_the_terms_of_its_band_by_the_active_model(engine: Engine) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=40, balance="2400.00", past_due="600.00")
    with engine.connect() as conn:
        before = offers_for_account(conn, acc["account_id"], DAY)
    assert max(o.term_months for o in before) == 24
    with engine.begin() as conn:
        conn.execute(insert(ScoreModel).values(
            version="m1", kind="binned_logistic", label="pays_within_30d", state="active",
            trained_at=dt.datetime(2026, 11, 20), trained_by="test",
            window_from=dt.date(2026, 7, 1), window_to=dt.date(2026, 10, 1), features=[],
            model={}, metrics={}))  # fmt: skip
        conn.execute(insert(AccountScore).values(
            account_id=acc["account_id"], as_of=DAY, model_version="m1", score="0.80000",
            band="high", factors=[]))  # fmt: skip
    with engine.connect() as conn:
        after = offers_for_account(conn, acc["account_id"], DAY)
    assert max(o.term_months for o in after) == 36
    assert "good_payer_settlement" in {o.band for o in after}


def test_an_unknown_band_is_named_with_its_yaml_path_and_line(tmp_path: Path) -> None:
    broken = POLICY.replace("score_band: high", "score_band: gold").replace(
        "score_bands: [high]", "score_bands: [high, vip]"
    )
    (tmp_path / "arrangements.yaml").write_text(broken, encoding="utf-8")
    problems = arrangement_band_problems(resolution_policy(), {"high", "medium", "low"})
    assert len(problems) == 2
    assert "arrangements.instalments.max_term[2].score_band (line 9): 'gold' is not a score " \
           "band of config/score.yaml (high, low, medium)" in problems[0]  # fmt: skip
    assert "arrangements.settlements[1].score_bands[1] (line 12): 'vip'" in problems[1]
    assert arrangement_band_problems(parse_policy(POLICY, "test"), {"high", "low"}) == []


def test_a_policy_without_band_terms_keeps_its_version() -> None:
    text = (PROJECT_ROOT / "config" / "arrangements.yaml").read_text(encoding="utf-8")
    policy = parse_policy(text, "arrangements.yaml")
    dumped: Any = policy.model_dump(mode="json")

    def drop(value: Any) -> Any:  # the policy as dumped before the band keys existed
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if k not in LATER_KEYS}
        return [drop(v) for v in value] if isinstance(value, list) else value

    old = hashlib.sha256(json.dumps(drop(dumped), sort_keys=True).encode()).hexdigest()[:12]
    assert policy.version == old
