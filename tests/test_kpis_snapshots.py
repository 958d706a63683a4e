"""The daily plan writes where each account stood (account_snapshot); a rerun replaces the rows;
attribution and config/measurement.yaml's checks (docs/kpis.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from outreach.measurement.attribution import (
    RIGHT_PARTY_DISPOSITIONS,
    UNATTRIBUTED,
    Attributor,
    received_instant,
    touch_of,
)
from outreach.measurement.measurement_config import (
    MeasurementConfigError,
    bucket_of,
    check_measurement_text,
    measurement_config,
)
from outreach.media.calls.dispositions import DISPOSITIONS
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import plan_range
from outreach.settings import PROJECT_ROOT
from outreach.storage.models import AccountScore, AccountSnapshot, Placement
from tests import factories

DAY = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 1)


def _snapshots(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(AccountSnapshot).order_by(AccountSnapshot.account_id, AccountSnapshot.as_of))]  # fmt: skip


def test_the_daily_plan_writes_one_snapshot_per_account_and_a_rerun_replaces_them(
    engine: Engine,
) -> None:
    ladder = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")
    late = factories.add_account(engine, as_of=DAY, dpd=40, past_due="120.00", balance="900.00",
                                 segment="prime")["account_id"]  # fmt: skip
    current = factories.add_account(engine, as_of=DAY, dpd=0, past_due="0")["account_id"]
    placed = factories.add_account(engine, as_of=DAY, dpd=200, past_due="700.00",
                                   country="CN", region="BJ")["account_id"]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Placement).values(
            account_id=placed, agency="huaxin_collect", ledger_key="PL", placed_on=DAY,
            balance_at_placement=Decimal(700), recall_due_on=DAY + dt.timedelta(days=90),
            state="open", updated_at=NOW))  # fmt: skip
        # The latest score on or before the day gives the band; a later one does not.
        conn.execute(insert(AccountScore), [
            dict(account_id=late, as_of=DAY - dt.timedelta(days=3), model_version="m1",
                 score=0.2, band="high_risk", factors=[]),
            dict(account_id=late, as_of=DAY - dt.timedelta(days=1), model_version="m1",
                 score=0.7, band="low_risk", factors=[]),
            dict(account_id=late, as_of=DAY + dt.timedelta(days=1), model_version="m1",
                 score=0.1, band="later", factors=[]),
        ])  # fmt: skip
    # A dry run writes nothing.
    plan_range(engine, ladder, DAY, 1, 10, write=False)
    assert _snapshots(engine) == []

    plan_range(engine, ladder, DAY, 1, 10)
    rows = {r["account_id"]: r for r in _snapshots(engine)}
    assert set(rows) == {late, current, placed}
    r = rows[late]
    assert (r["as_of"], r["dpd"], r["bucket"], r["past_due"], r["balance"], r["currency"]) == (
        DAY,
        40,
        "31-60",
        Decimal("120.00"),
        Decimal("900.00"),
        "USD",
    )
    assert r["stage"] is not None and r["segment"] == "prime"
    assert (r["jurisdiction"], r["score_band"], r["agency"], r["arm"]) == (
        "US-NY",
        "low_risk",
        None,
        None,
    )
    assert r["ladder_version"] == ladder.version
    c = rows[current]
    assert (c["dpd"], c["bucket"], c["stage"], c["past_due"]) == (0, "current", None, Decimal(0))
    p = rows[placed]
    assert (p["bucket"], p["currency"], p["jurisdiction"], p["agency"]) == (
        "180+",
        "CNY",
        "CN-BJ",
        "huaxin_collect",
    )

    # A payment, then the same day planned again: the rows are replaced, not added.
    factories.add_payment(engine, late, DAY, "20.00")
    plan_range(engine, ladder, DAY, 1, 10)
    again = _snapshots(engine)
    assert len(again) == 3
    assert {r["account_id"]: r["past_due"] for r in again}[late] == Decimal("100.00")

    plan_range(engine, ladder, DAY + dt.timedelta(days=1), 1, 10)
    assert len(_snapshots(engine)) == 6


@pytest.mark.parametrize(("dpd", "bucket"), [
    (None, "current"), (0, "current"), (1, "1-30"), (30, "1-30"), (31, "31-60"), (60, "31-60"),
    (61, "61-90"), (90, "61-90"), (91, "91-120"), (120, "91-120"), (121, "121-180"),
    (180, "121-180"), (181, "180+"),
])  # fmt: skip
def test_days_past_due_buckets(dpd: int | None, bucket: str) -> None:
    assert bucket_of(dpd) == bucket


def test_right_party_dispositions_are_the_call_queues_conversations() -> None:
    conversations = {d for d, e in DISPOSITIONS.items() if e.event_outcome == "conversation"}
    assert conversations == RIGHT_PARTY_DISPOSITIONS


def test_a_payment_goes_to_the_last_touch_within_the_window() -> None:
    t = dt.datetime
    touches = [
        touch_of("k1", 1, "sms", "early", None, t(2026, 3, 1, 9), None, None),
        touch_of("k2", 1, "email", "early", "e/a", t(2026, 3, 5, 9), None, None),
        # A call that was not answered is no touch; one answered counts when it ended.
        touch_of("k3", 1, "call", "late", None, t(2026, 3, 6, 9), "no_answer", t(2026, 3, 6, 10)),
        touch_of("k4", 2, "call", "late", None, t(2026, 3, 6, 9), "promise_to_pay",
                 t(2026, 3, 6, 17)),
    ]  # fmt: skip
    assert touches[2] is None
    attributor = Attributor([x for x in touches if x is not None], window_days=7)
    # The last touch before receipt, within 7 days.
    assert attributor.attribute(1, t(2026, 3, 12, 9)).contact_key == "k2"
    assert attributor.attribute(1, t(2026, 3, 12, 9)).arm == "e/a"
    # Exactly 7 days is within; a moment more is not.
    assert attributor.attribute(1, t(2026, 3, 12, 9, 0, 1)).channel == UNATTRIBUTED
    # Before any touch.
    assert attributor.attribute(1, t(2026, 2, 28)).stage == UNATTRIBUTED
    # A payment known by its day only: received at the day's end, after that day's touches.
    assert attributor.attribute(2, received_instant(dt.date(2026, 3, 6), None)).channel == "call"
    assert attributor.attribute(2, t(2026, 3, 6, 12)).channel == UNATTRIBUTED


def test_measurement_config_errors_name_the_yaml_path_and_line() -> None:
    text = (
        "reporting_currency: usd\n"
        "fx_rates:\n"
        "  CNY: -1\n"
        "unit_costs:\n"
        "  fax: 1\n"
        "attribution:\n"
        "  window_days: 14\n"
        "  window: 3\n"
        "targets:\n"
        "  recovery_rate:\n"
        "    bucket:\n"
        "      '1-31': 0.3\n"
        "  promise_kept_rate:\n"
        "    overall: 1.5\n"
        "  smiles: {overall: 1}\n"
    )
    model, errors = check_measurement_text(text)
    assert model is None
    # The unknown key is a schema error: reported first, on its own.
    assert [(e.path, e.line) for e in errors] == [("attribution.window", 8)]
    assert "known keys" in errors[0].message
    model, errors = check_measurement_text(text.replace("  window: 3\n", ""))
    found = {e.path: (e.line, e.message) for e in errors}
    assert found == {
        "reporting_currency": (1, "not an ISO 4217 currency code"),
        "fx_rates.CNY": (3, "must be more than 0"),
        "unit_costs.fax": (5, "unknown channel; known channels: sms, email, call, letter, "
                              "agency, legal"),
        "targets.recovery_rate.bucket.1-31": (11, "unknown bucket; known buckets: current, "
                                                  "1-30, 31-60, 61-90, 91-120, 121-180, 180+"),
        "targets.promise_kept_rate.overall": (13, "a rate's target is between 0 and 1"),
        "targets.smiles": (14, found["targets.smiles"][1]),
    }  # fmt: skip
    assert found["targets.smiles"][1].startswith("unknown metric")


def test_the_measurement_knob_names_the_file_and_the_shipped_file_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = measurement_config()
    assert shipped.attribution.window_days > 0 and "recovery_rate" in shipped.targets
    bad = tmp_path / "m.yaml"
    bad.write_text("attribution:\n  window_days: -2\n", encoding="utf-8")
    monkeypatch.setenv("OUTREACH_MEASUREMENT", str(bad))
    with pytest.raises(MeasurementConfigError) as err:
        measurement_config()
    assert f"{bad}: attribution.window_days (line 2)" in err.value.lines()[0]

    from outreach.services.config import ConfigInvalid, config_files, load_config

    assert bad in config_files()
    with pytest.raises(ConfigInvalid) as invalid:
        load_config()
    assert any("attribution.window_days (line 2)" in e for e in invalid.value.errors)
