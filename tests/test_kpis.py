"""Every KPI of every grouping against a small portfolio computed by hand (docs/kpis.md).

The period is Monday 2026-03-23 to Sunday 2026-04-05: ISO weeks 2026-W13 and 2026-W14, months
2026-03 (23rd-31st) and 2026-04 (1st-5th). Snapshots on three days: D1 = 03-23, D2 = 03-30,
D3 = 04-02. Seven accounts (A7 has no snapshot), USD except A4 (CNY, at 0.14 USD).

    acct seg       juris  ladder arm    band  agency   D1 (dpd/pd/stage)  D2            D3
    A1   prime     US-NY  L1     exp/a  low   -        10/100/early       17/100/early  0/0/-
    A2   prime     US-CA  L1     exp/b  high  -        40/200/call        47/200/call   50/150/call
    A3   subprime  US-NY  L2     exp/a  med   harbor   100/500/agency     107/500/agcy  110/500/agcy
    A4   -         CN-BJ  L2     -      -     -        5/1000/early       12/1000/early 15/1000/early
    A5   prime     US-NY  L1     exp/b  high  -        (none)             31/300/call   34/300/call
    A6   prime     US-NY  L1     exp/a  low   -        0/0/-              0/0/-         0/0/-

Payments (in the period unless said): P1 A1 03-31 100 (received 10:00), P2 A2 03-31 50, P3 A3
03-26 80, P4 A4 04-03 300 CNY, P5 A5 04-01 60 reversed 04-04 (out), P6 A5 03-28 40, P7 A7 03-25
25, P8 A1 03-20 10 (before: out), P9 A2 03-24 20 reversed 04-10 (after the period: in).
Collected: USD 20+25+80+40+100+50 = 315, CNY 300 (= USD 42): 357 in USD.

Contacts sent: C1 A1 sms early 03-25 09:00 (exp/a); C2 A2 call 03-24, right party, done 15:00
(exp/b); C3 A2 email early 03-10; C4 A3 agency 03-01; C5 A4 sms early 04-01 10:00; C6 A5 call
03-27 no answer, done 16:00 (exp/b); C7 A1 email suppressed; C8 A5 call 04-02 expired.
Contacts made in the period: C1, C2, C5, C6 (cost 0.02 + 1.50 + 0.02 + 1.50 = 3.04).
Attribution (14 days): P1 -> C1 (sms/early), P2 and P9 -> C2 (call/call), P4 -> C5 (sms/early);
P3 (C4 25 days before), P6 (only a no-answer call), P7: unattributed.
Right-party: E1 A2 call conversation 03-24, E2 A1 sms inbound 03-26, E3 A6 email inbound 03-27.
Promises: PR1 A2 made 03-24 kept 04-03; PR2 A4 made 03-25 broken 04-02; PR3 A3 made 03-10
partly kept 03-25; PR4 A5 made 04-01 open.
Arrangements: AR1 A3 offered 03-24 accepted active; AR2 A2 offered 03-28 not accepted; AR3 A4
(offered 02-01) broken 03-29; AR4 A5 (offered 02-15) completed 04-03.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from outreach.measurement import kpis
from outreach.measurement.measurement_config import Agencies, Attribution, MeasurementConfig
from outreach.measurement.report_model import KpiReport, as_dict
from outreach.storage.models import (
    AccountSnapshot,
    Arrangement,
    CallTask,
    Contact,
    DelinquencyCause,
    ExperimentAssignment,
    Payment,
    Placement,
    PlacementReturn,
    PolicyDecision,
    Promise,
)
from tests import factories

D = dt.date
T = dt.datetime
FROM, TO = D(2026, 3, 23), D(2026, 4, 5)
D1, D2, D3 = D(2026, 3, 23), D(2026, 3, 30), D(2026, 4, 2)
NOW = T(2026, 4, 6)

CONFIG = MeasurementConfig(
    reporting_currency="USD",
    fx_rates={"USD": Decimal(1), "CNY": Decimal("0.14")},
    unit_costs={"sms": Decimal("0.02"), "call": Decimal("1.50"), "email": Decimal("0.005")},
    attribution=Attribution(window_days=14),
    agencies=Agencies(commission_rate=Decimal("0.30")),
    targets={
        "recovery_rate": {"overall": 0.15, "bucket": {"1-30": 0.35}},
        "promise_kept_rate": {"overall": 0.6},
    },
)


def _snap(acct: int, day: dt.date, dpd: int, bucket: str, pd: str, stage: str | None,
          seg: str | None, juris: str, ladder: str, arm: str | None, band: str | None,
          agency: str | None, currency: str = "USD") -> dict[str, Any]:  # fmt: skip
    return dict(as_of=day, account_id=acct, dpd=dpd, bucket=bucket, past_due=Decimal(pd),
                balance=Decimal(pd) + 1000, currency=currency, stage=stage, segment=seg,
                score_band=band, jurisdiction=juris, ladder_version=ladder, arm=arm,
                agency=agency)  # fmt: skip


def _contact(key: str, acct: int, channel: str, stage: str, state: str, sent_at: T | None,
             arm: str | None = None, outcome: str | None = None) -> dict[str, Any]:  # fmt: skip
    return dict(key=key, account_id=acct, stage=stage, action="a", slot=0, channel=channel,
                plan_date=(sent_at or NOW).date(), state=state, verdict="send", reasons="",
                config_version="L", pack_versions="core", sent_at=sent_at, outcome=outcome,
                arm=arm, updated_at=NOW)  # fmt: skip


def _task(key: str, acct: int, state: str, completed: T | None, disposition: str | None
          ) -> dict[str, Any]:  # fmt: skip
    return dict(key=key, account_id=acct, priority=1, due_start=NOW, due_end=NOW, state=state,
                completed_at=completed, disposition=disposition, created_at=NOW, updated_at=NOW)  # fmt: skip


def _pay(ref: str, acct: int, paid_on: D, amount: str, received_at: T | None = None,
         reversed_on: D | None = None) -> dict[str, Any]:  # fmt: skip
    return dict(payment_ref=ref, account_id=acct, paid_on=paid_on, amount=Decimal(amount),
                received_at=received_at, status="reversed" if reversed_on else "posted",
                reversed_on=reversed_on)  # fmt: skip


def _promise(acct: int, made: T, status: str, settled: D | None) -> dict[str, Any]:
    return dict(
        account_id=acct,
        amount=Decimal(50),
        due_on=made.date(),
        made_at=made,
        recorded_at=made,
        source="agent",
        status=status,
        settled_on=settled,
    )


def _arrangement(ref: str, acct: int, offered: T, accepted: T | None, state: str,
                 ended: D | None) -> dict[str, Any]:  # fmt: skip
    z = Decimal(100)
    return dict(arrangement_ref=ref, account_id=acct, kind="instalment", state=state, total=z,
                term_months=2, instalment_amount=z, first_due_on=offered.date(),
                balance_at_offer=z, past_due_at_offer=z, created_at=offered,
                accepted_at=accepted, ended_on=ended, updated_at=NOW)  # fmt: skip


def _decision(day: D, verdict: str, reasons: str) -> dict[str, Any]:
    return dict(contact_key="k", account_id=1, phase="plan", as_of=day, decided_at=NOW,
                verdict=verdict, reasons=reasons, config_version="L", pack_versions="core",
                evidence={})  # fmt: skip


@pytest.fixture
def portfolio(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    agencies = tmp_path / "agencies.yaml"
    agencies.write_text("agencies:\n  - id: harbor_recovery\n    commission_rate: 0.22\n"
                        "  - id: pacific_collect\n", encoding="utf-8")  # fmt: skip
    monkeypatch.setenv("OUTREACH_AGENCIES", str(agencies))
    ids = {}
    for n in range(1, 8):
        cn = n == 4
        ids[f"A{n}"] = factories.add_account(
            engine, as_of=D1, country="CN" if cn else "US", region="BJ" if cn else "NY",
        )["account_id"]  # fmt: skip
    a1, a2, a3, a4, a5, a6, a7 = (ids[f"A{n}"] for n in range(1, 8))
    snaps = [
        _snap(a1, D1, 10, "1-30", "100", "early", "prime", "US-NY", "L1", "exp/a", "low", None),
        _snap(a1, D2, 17, "1-30", "100", "early", "prime", "US-NY", "L1", "exp/a", "low", None),
        _snap(a1, D3, 0, "current", "0", None, "prime", "US-NY", "L1", "exp/a", "low", None),
        _snap(a2, D1, 40, "31-60", "200", "call", "prime", "US-CA", "L1", "exp/b", "high", None),
        _snap(a2, D2, 47, "31-60", "200", "call", "prime", "US-CA", "L1", "exp/b", "high", None),
        _snap(a2, D3, 50, "31-60", "150", "call", "prime", "US-CA", "L1", "exp/b", "high", None),
        *[_snap(a3, d, dpd, "91-120", "500", "agency", "subprime", "US-NY", "L2", "exp/a", "med",
                "harbor_recovery") for d, dpd in ((D1, 100), (D2, 107), (D3, 110))],
        *[_snap(a4, d, dpd, "1-30", "1000", "early", None, "CN-BJ", "L2", None, None, None,
                currency="CNY") for d, dpd in ((D1, 5), (D2, 12), (D3, 15))],
        _snap(a5, D2, 31, "31-60", "300", "call", "prime", "US-NY", "L1", "exp/b", "high", None),
        _snap(a5, D3, 34, "31-60", "300", "call", "prime", "US-NY", "L1", "exp/b", "high", None),
        *[_snap(a6, d, 0, "current", "0", None, "prime", "US-NY", "L1", "exp/a", "low", None)
          for d in (D1, D2, D3)],
        # Outside the period: never read.
        _snap(a1, D(2026, 3, 22), 9, "1-30", "999", "early", "x", "US-NY", "L0", None, None, None),
    ]  # fmt: skip
    contacts = [
        _contact("C1", a1, "sms", "early", "sent", T(2026, 3, 25, 9), "exp/a"),
        _contact("C2", a2, "call", "call", "sent", T(2026, 3, 24, 8), "exp/b",
                 "right_party_conversation"),
        _contact("C3", a2, "email", "early", "sent", T(2026, 3, 10, 9)),
        _contact("C4", a3, "agency", "agency", "sent", T(2026, 3, 1, 9)),
        _contact("C5", a4, "sms", "early", "sent", T(2026, 4, 1, 10)),
        _contact("C6", a5, "call", "call", "sent", T(2026, 3, 27, 8), "exp/b", "no_answer"),
        _contact("C7", a1, "email", "early", "suppressed", None),
        _contact("C8", a5, "call", "call", "sent", T(2026, 4, 2, 8), "exp/b"),
    ]  # fmt: skip
    tasks = [
        _task("C2", a2, "done", T(2026, 3, 24, 15), "right_party_conversation"),
        _task("C6", a5, "done", T(2026, 3, 27, 16), "no_answer"),
        _task("C8", a5, "expired", None, None),
    ]
    payments = [
        _pay("P1", a1, D(2026, 3, 31), "100.00", T(2026, 3, 31, 10)),
        _pay("P2", a2, D(2026, 3, 31), "50.00"),
        _pay("P3", a3, D(2026, 3, 26), "80.00"),
        _pay("P4", a4, D(2026, 4, 3), "300.00"),
        _pay("P5", a5, D(2026, 4, 1), "60.00", reversed_on=D(2026, 4, 4)),
        _pay("P6", a5, D(2026, 3, 28), "40.00"),
        _pay("P7", a7, D(2026, 3, 25), "25.00"),
        _pay("P8", a1, D(2026, 3, 20), "10.00"),
        _pay("P9", a2, D(2026, 3, 24), "20.00", reversed_on=D(2026, 4, 10)),
    ]
    promises = [
        _promise(a2, T(2026, 3, 24, 15), "kept", D(2026, 4, 3)),
        _promise(a4, T(2026, 3, 25, 11), "broken", D(2026, 4, 2)),
        _promise(a3, T(2026, 3, 10, 11), "partly_kept", D(2026, 3, 25)),
        _promise(a5, T(2026, 4, 1, 11), "open", None),
    ]
    arrangements = [
        _arrangement("AR1", a3, T(2026, 3, 24, 9), T(2026, 3, 25, 9), "active", None),
        _arrangement("AR2", a2, T(2026, 3, 28, 9), None, "offered", None),
        _arrangement("AR3", a4, T(2026, 2, 1, 9), T(2026, 2, 2, 9), "broken", D(2026, 3, 29)),
        _arrangement("AR4", a5, T(2026, 2, 15, 9), T(2026, 2, 15, 9), "completed",
                     D(2026, 4, 3)),
    ]  # fmt: skip
    decisions = [
        _decision(D(2026, 3, 24), "block", "core.opted_out"),
        _decision(D(2026, 3, 25), "defer", "us_reg_f.inconvenient_time us_reg_f.call_frequency_7in7"),
        _decision(D(2026, 4, 1), "defer", "us_reg_f.inconvenient_time"),
        _decision(D(2026, 3, 26), "send", ""),
        _decision(D(2026, 3, 20), "block", "core.dispute_open"),
    ]  # fmt: skip
    placements = [
        dict(account_id=a3, agency="harbor_recovery", ledger_key="PL1", placed_on=D(2026, 3, 1),
             balance_at_placement=Decimal(600), recall_due_on=D(2026, 7, 1), state="open",
             updated_at=NOW),
        dict(account_id=a2, agency="pacific_collect", ledger_key="PL2", placed_on=D(2026, 3, 25),
             balance_at_placement=Decimal(250), recall_due_on=D(2026, 7, 1), state="recalled",
             recalled_on=D(2026, 3, 29), updated_at=NOW),
        dict(account_id=a1, agency="liberty_credit", ledger_key="PL3", placed_on=D(2026, 2, 1),
             balance_at_placement=Decimal(900), recall_due_on=D(2026, 7, 1), state="recalled",
             recalled_on=D(2026, 3, 1), updated_at=NOW),
    ]  # fmt: skip
    causes = [(a1, "job_loss", T(2026, 3, 1)), (a1, "illness", T(2026, 3, 28)),
              (a2, "forgot", T(2026, 3, 2)), (a4, "job_loss", T(2026, 4, 10)),
              (a5, "job_loss", T(2026, 3, 3))]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(AccountSnapshot), snaps)
        conn.execute(insert(Contact), contacts)
        conn.execute(insert(CallTask), tasks)
        conn.execute(insert(Payment), payments)
        conn.execute(insert(Promise), promises)
        conn.execute(insert(Arrangement), arrangements)
        conn.execute(insert(PolicyDecision), decisions)
        pl_ids = [conn.execute(insert(Placement).values(**p)).inserted_primary_key[0]
                  for p in placements]  # fmt: skip
        conn.execute(insert(PlacementReturn), [
            dict(return_ref="R1", placement_id=pl_ids[0], occurred_on=D(2026, 3, 26),
                 kind="payment", amount=Decimal(80), outcome=None, recorded_at=NOW),
            dict(return_ref="R2", placement_id=pl_ids[0], occurred_on=D(2026, 3, 27),
                 kind="outcome", amount=None, outcome="no_contact", recorded_at=NOW),
            dict(return_ref="R3", placement_id=pl_ids[0], occurred_on=D(2026, 3, 10),
                 kind="payment", amount=Decimal(30), outcome=None, recorded_at=NOW),
        ])  # fmt: skip
        conn.execute(insert(DelinquencyCause), [
            dict(account_id=a, cause=c, source="agent", recorded_at=at) for a, c, at in causes
        ])  # fmt: skip
        conn.execute(insert(ExperimentAssignment), [
            dict(experiment_id="exp", account_id=a, arm=arm, assigned_on=D1)
            for a, arm in ((a1, "a"), (a2, "b"), (a3, "a"), (a5, "b"), (a6, "a"))
        ])  # fmt: skip
    factories.add_event(engine, a2, T(2026, 3, 24, 15), "call", "conversation")
    factories.add_event(engine, a1, T(2026, 3, 26, 12), "sms", "reply", "inbound")
    factories.add_event(engine, a6, T(2026, 3, 27, 12), "email", "opt_out", "inbound")
    factories.add_event(engine, a5, T(2026, 3, 27, 16), "call", "no_answer")
    return ids


@pytest.fixture
def report(engine: Engine, portfolio: dict[str, int]) -> KpiReport:
    return kpis.compute(engine, FROM, TO, config=CONFIG)


def _norm(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def assert_rows(report: KpiReport, key: str, expected: list[tuple[Any, ...]]) -> None:
    """The group's rows, in order, as tuples of (dimension value, [currency,] metrics...) in the
    group's metric order; money as text, rates compared to 1e-9."""
    group = report.group(key)
    money = any(m.unit == "money" for m in group.metrics)
    got = [
        tuple(_norm(row[k]) for k in
              [group.dimension, *(["currency"] if money else []), *(m.key for m in group.metrics)])
        for row in group.rows
    ]  # fmt: skip
    assert len(got) == len(expected), (key, got)
    for g, e in zip(got, expected, strict=True):
        assert len(g) == len(e), (key, g, e)
        for gv, ev in zip(g, e, strict=True):
            if isinstance(ev, float):
                assert gv == pytest.approx(ev, abs=1e-9), (key, g, e)
            else:
                assert gv == ev, (key, g, e)


N = None


def test_headline_figures(report: KpiReport) -> None:
    h = report.headline
    assert h["collected"] == {"CNY": Decimal("300.00"), "USD": Decimal("315.00")}
    # 315 + 300 x 0.14 = 357.
    assert h["collected_reporting"] == Decimal("357.00")
    # First snapshots: A1 100, A2 200, A3 500, A5 300 (D2), A6 0; A4 1000 CNY.
    assert h["past_due_at_entry"] == {"CNY": Decimal("1000.00"), "USD": Decimal("1100.00")}
    # 357 / (1100 + 1000 x 0.14 = 1240).
    assert h["recovery_rate"] == pytest.approx(357 / 1240)
    assert h["accounts"] == 5  # A1..A5 delinquent at entry
    assert h["contacted"] == 4  # A1 C1, A2 C2, A4 C5, A5 C6
    assert h["right_party_contact_rate"] == pytest.approx(2 / 4)  # A2 E1, A1 E2
    assert h["promise_rate"] == pytest.approx(3 / 5)  # PR1 A2, PR2 A4, PR4 A5
    assert h["promise_kept_rate"] == pytest.approx(1 / 3)  # PR1 kept; PR2, PR3 not
    assert h["cure_rate"] == pytest.approx(1 / 5)  # A1 on D3
    assert h["arrangements_offered"] == 2  # AR1, AR2
    assert h["arrangement_uptake"] == pytest.approx(1 / 2)  # AR1
    assert h["arrangement_completion_rate"] == pytest.approx(1 / 2)  # AR4 of AR3, AR4
    assert h["arrangement_break_rate"] == pytest.approx(1 / 2)  # AR3
    assert h["contacts"] == 4
    assert h["cost"] == Decimal("3.04")
    assert h["cost_per_unit_collected"] == pytest.approx(3.04 / 357)
    # Every headline figure has its metric (labels, unit) and nothing else is there.
    assert [m.key for m in report.headline_metrics] == list(h)
    assert report.method["attribution"]["window_days"] == 14
    assert report.method["fx_rates"] == {"CNY": "0.14", "USD": "1"}
    data = as_dict(report)
    assert data["recovery_rate"] == pytest.approx(357 / 1240)
    assert data["collected"] == {"CNY": "300.00", "USD": "315.00"}


def test_recovery_by_time(report: KpiReport) -> None:
    # By the payment's day; past due at entry: the accounts snapshotted that day.
    assert_rows(report, "recovery_by_day", [
        ("2026-03-23", "CNY", "0.00", "1000.00", 0.0),  # A4
        ("2026-03-23", "USD", "0.00", "800.00", 0.0),  # A1 100 + A2 200 + A3 500 + A6 0
        ("2026-03-24", "USD", "20.00", N, N),  # P9
        ("2026-03-25", "USD", "25.00", N, N),  # P7
        ("2026-03-26", "USD", "80.00", N, N),  # P3
        ("2026-03-28", "USD", "40.00", N, N),  # P6
        ("2026-03-30", "CNY", "0.00", "1000.00", 0.0),
        ("2026-03-30", "USD", "0.00", "1100.00", 0.0),  # + A5 300
        ("2026-03-31", "USD", "150.00", N, N),  # P1 + P2
        ("2026-04-02", "CNY", "0.00", "1000.00", 0.0),
        ("2026-04-02", "USD", "0.00", "950.00", 0.0),  # A1 0, A2 150, A3 500, A5 300
        ("2026-04-03", "CNY", "300.00", N, N),  # P4
    ])  # fmt: skip
    assert_rows(report, "recovery_by_week", [
        ("2026-W13", "CNY", "0.00", "1000.00", 0.0),
        ("2026-W13", "USD", "165.00", "800.00", 165 / 800),  # P9 + P7 + P3 + P6
        ("2026-W14", "CNY", "300.00", "1000.00", 0.3),
        ("2026-W14", "USD", "150.00", "1100.00", 150 / 1100),
    ])  # fmt: skip
    assert_rows(report, "recovery_by_month", [
        ("2026-03", "CNY", "0.00", "1000.00", 0.0),
        ("2026-03", "USD", "315.00", "1100.00", 315 / 1100),  # A5 enters March on D2
        ("2026-04", "CNY", "300.00", "1000.00", 0.3),
        ("2026-04", "USD", "0.00", "950.00", 0.0),
    ])  # fmt: skip


def test_recovery_by_stage_and_channel_follow_attribution(report: KpiReport) -> None:
    # early: P1 100, P4 300 CNY; call: P2 50 + P9 20; unattributed: P3 + P6 + P7 = 145.
    # Stage entry: early A1 100, A4 1000 CNY; call A2 200 + A5 300; agency A3 500; none 0.
    assert_rows(report, "recovery_by_stage", [
        ("agency", "USD", "0.00", "500.00", 0.0),
        ("call", "USD", "70.00", "500.00", 0.14),
        ("early", "CNY", "300.00", "1000.00", 0.3),
        ("early", "USD", "100.00", "100.00", 1.0),
        ("(none)", "USD", "0.00", "0.00", N),
        ("unattributed", "USD", "145.00", N, N),
    ])  # fmt: skip
    assert_rows(report, "recovery_by_channel", [
        ("call", "USD", "70.00", N, N),
        ("sms", "CNY", "300.00", N, N),
        ("sms", "USD", "100.00", N, N),
        ("unattributed", "USD", "145.00", N, N),
    ])  # fmt: skip


def test_recovery_by_snapshot_dimensions(report: KpiReport) -> None:
    # A payment counts under the account's snapshot of its day (P6 before A5's first: D2's);
    # A7 has none.
    assert_rows(report, "recovery_by_segment", [
        ("prime", "USD", "210.00", "600.00", 0.35),  # P1+P2+P6+P9; A1+A2+A5+A6
        ("subprime", "USD", "80.00", "500.00", 0.16),
        ("(none)", "CNY", "300.00", "1000.00", 0.3),
        ("(none)", "USD", "25.00", N, N),
    ])  # fmt: skip
    assert_rows(report, "recovery_by_score_band", [
        ("high", "USD", "110.00", "500.00", 0.22),  # P2+P6+P9; A2 + A5
        ("low", "USD", "100.00", "100.00", 1.0),
        ("med", "USD", "80.00", "500.00", 0.16),
        ("(none)", "CNY", "300.00", "1000.00", 0.3),
        ("(none)", "USD", "25.00", N, N),
    ])  # fmt: skip
    assert_rows(report, "recovery_by_jurisdiction", [
        ("CN-BJ", "CNY", "300.00", "1000.00", 0.3),
        ("US-CA", "USD", "70.00", "200.00", 0.35),
        ("US-NY", "USD", "220.00", "900.00", 220 / 900),  # P1+P3+P6; A1+A3+A5+A6
        ("(none)", "USD", "25.00", N, N),
    ])  # fmt: skip
    assert_rows(report, "recovery_by_agency", [
        ("harbor_recovery", "USD", "80.00", "500.00", 0.16),
        ("(none)", "CNY", "300.00", "1000.00", 0.3),
        ("(none)", "USD", "235.00", "600.00", 235 / 600),
    ])  # fmt: skip
    assert_rows(report, "recovery_by_ladder_version", [
        ("L1", "USD", "210.00", "600.00", 0.35),
        ("L2", "CNY", "300.00", "1000.00", 0.3),
        ("L2", "USD", "80.00", "500.00", 0.16),
        ("(none)", "USD", "25.00", N, N),
    ])  # fmt: skip
    assert_rows(report, "recovery_by_arm", [
        ("exp/a", "USD", "180.00", "600.00", 0.3),  # P1 + P3; A1 + A3 + A6
        ("exp/b", "USD", "110.00", "500.00", 0.22),
        ("(none)", "CNY", "300.00", "1000.00", 0.3),
        ("(none)", "USD", "25.00", N, N),
    ])  # fmt: skip
    assert_rows(report, "recovery_by_bucket", [
        ("current", "USD", "0.00", "0.00", N),  # A1 on D3, A6
        ("1-30", "CNY", "300.00", "1000.00", 0.3),
        ("1-30", "USD", "100.00", "100.00", 1.0),  # P1 on D2 (dpd 17)
        ("31-60", "USD", "110.00", "500.00", 0.22),
        ("91-120", "USD", "80.00", "500.00", 0.16),
        ("(none)", "USD", "25.00", N, N),
    ])  # fmt: skip
    # Targets: the bucket's own, else the overall one; none for "(none)".
    assert report.group("recovery_by_bucket").targets == {
        "recovery_rate": {"current": 0.15, "1-30": 0.35, "31-60": 0.15, "91-120": 0.15}
    }
    assert report.group("outcomes_by_arm").targets == {
        "promise_kept_rate": {"exp/a": 0.6, "exp/b": 0.6}
    }


# Columns: value, accounts, contacted, right-party rate, promise rate, promise-kept rate, cure
# rate | value, offered, uptake, completion, break.


def test_outcomes_by_time(report: KpiReport) -> None:
    assert_rows(report, "outcomes_by_day", [
        ("2026-03-23", 4, 0, N, 0.0, N, 0.0),  # A1..A4; nothing that day
        ("2026-03-30", 5, 0, N, 0.0, N, 0.0),
        ("2026-04-02", 4, 0, N, 0.0, 0.0, 0.0),  # A1 cured; PR2 broken that day
    ])  # fmt: skip
    assert_rows(report, "arrangements_by_day", [
        ("2026-03-23", 0, N, N, N), ("2026-03-30", 0, N, N, N), ("2026-04-02", 0, N, N, N),
    ])  # fmt: skip
    assert_rows(report, "outcomes_by_week", [
        # W13: A1..A4; contacted A1, A2, both reached; PR1, PR2 of 4; PR3 settled partly.
        ("2026-W13", 4, 2, 1.0, 0.5, 0.0, 0.0),
        # W14: A1..A5; contacted A4 only, not reached; PR4; PR1 kept, PR2 broken; A1 cured.
        ("2026-W14", 5, 1, 0.0, 0.2, 0.5, 0.2),
    ])  # fmt: skip
    assert_rows(report, "arrangements_by_week", [
        ("2026-W13", 2, 0.5, 0.0, 1.0),  # AR1 accepted, AR2 not; AR3 broken
        ("2026-W14", 0, N, 1.0, 0.0),  # AR4 completed
    ])  # fmt: skip
    assert_rows(report, "outcomes_by_month", [
        ("2026-03", 5, 3, 2 / 3, 0.4, 0.0, 0.0),  # contacted A1, A2, A5 (C6 03-27)
        ("2026-04", 4, 1, 0.0, 0.25, 0.5, 0.0),  # A1 current on D3: not delinquent
    ])  # fmt: skip
    assert_rows(report, "arrangements_by_month", [
        ("2026-03", 2, 0.5, 0.0, 1.0),
        ("2026-04", 0, N, 1.0, 0.0),
    ])  # fmt: skip


def test_outcomes_by_stage_and_snapshot_dimensions(report: KpiReport) -> None:
    a3 = (1, 0, N, 0.0, 0.0, 0.0)  # not contacted; PR3 partly kept
    a3_arr = (1, 1.0, N, N)  # AR1 accepted
    a4 = (1, 1, 0.0, 1.0, 0.0, 0.0)  # C5, not reached; PR2 broken
    a4_arr = (0, N, 0.0, 1.0)  # AR3 broken
    a2_a5 = (2, 2, 0.5, 1.0, 1.0, 0.0)  # C2 reached, C6 not; PR1 kept, PR4 open
    a2_a5_arr = (1, 0.0, 1.0, 0.0)  # AR2 not accepted; AR4 completed
    a1_a4 = (2, 2, 0.5, 0.5, 0.0, 0.5)  # A1 reached and cured; A4 PR2 broken
    a1_a4_arr = (0, N, 0.0, 1.0)
    nobody = (0, 0, N, N, N, N)
    nobody_arr = (0, N, N, N)
    prime = (3, 3, 2 / 3, 2 / 3, 1.0, 1 / 3)  # A1, A2, A5 (A6 current)
    prime_arr = (1, 0.0, 1.0, 0.0)
    expected = {
        "stage": [("agency", a3, a3_arr), ("call", a2_a5, a2_a5_arr), ("early", a1_a4, a1_a4_arr),
                  ("(none)", nobody, nobody_arr)],
        "segment": [("prime", prime, prime_arr), ("subprime", a3, a3_arr),
                    ("(none)", a4, a4_arr)],
        "score_band": [("high", a2_a5, a2_a5_arr),
                       ("low", (1, 1, 1.0, 0.0, N, 1.0), nobody_arr),  # A1 (A6 current)
                       ("med", a3, a3_arr), ("(none)", a4, a4_arr)],
        "jurisdiction": [("CN-BJ", a4, a4_arr),
                         ("US-CA", (1, 1, 1.0, 1.0, 1.0, 0.0), (1, 0.0, N, N)),  # A2
                         # A1, A3, A5: contacted A1, A5; A1 reached; PR4; PR3; A1 cured.
                         ("US-NY", (3, 2, 0.5, 1 / 3, 0.0, 1 / 3), (1, 1.0, 1.0, 0.0))],
        "agency": [("harbor_recovery", a3, a3_arr),
                   # A1, A2, A4, A5: PR1 kept, PR2 broken; AR3 broken, AR4 completed.
                   ("(none)", (4, 4, 0.5, 0.75, 0.5, 0.25), (1, 0.0, 0.5, 0.5))],
        "ladder_version": [("L1", prime, prime_arr),
                           # A3, A4: PR3 partly, PR2 broken.
                           ("L2", (2, 1, 0.0, 0.5, 0.0, 0.0), (1, 1.0, 0.0, 1.0))],
        "arm": [("exp/a", (2, 1, 1.0, 0.0, 0.0, 0.5), (1, 1.0, N, N)),  # A1, A3
                ("exp/b", a2_a5, a2_a5_arr), ("(none)", a4, a4_arr)],
        "bucket": [("current", nobody, nobody_arr), ("1-30", a1_a4, a1_a4_arr),
                   ("31-60", a2_a5, a2_a5_arr), ("91-120", a3, a3_arr)],
    }  # fmt: skip
    for dimension, rows in expected.items():
        assert_rows(report, f"outcomes_by_{dimension}", [(v, *o) for v, o, _ in rows])
        assert_rows(report, f"arrangements_by_{dimension}", [(v, *a) for v, _, a in rows])


def test_contacts_and_cost(report: KpiReport) -> None:
    # Columns: value, currency, contacts, cost, collected (USD), cost per unit collected.
    assert_rows(report, "contacts_by_day", [
        ("2026-03-24", "USD", 1, "1.50", "20.00", 1.5 / 20),  # C2; P9
        ("2026-03-25", "USD", 1, "0.02", "25.00", 0.02 / 25),  # C1; P7
        ("2026-03-26", "USD", 0, "0.00", "80.00", 0.0),
        ("2026-03-27", "USD", 1, "1.50", "0.00", N),  # C6
        ("2026-03-28", "USD", 0, "0.00", "40.00", 0.0),
        ("2026-03-31", "USD", 0, "0.00", "150.00", 0.0),
        ("2026-04-01", "USD", 1, "0.02", "0.00", N),  # C5
        ("2026-04-03", "USD", 0, "0.00", "42.00", 0.0),  # 300 CNY
    ])  # fmt: skip
    assert_rows(report, "contacts_by_week", [
        ("2026-W13", "USD", 3, "3.02", "165.00", 3.02 / 165),
        ("2026-W14", "USD", 1, "0.02", "192.00", 0.02 / 192),
    ])  # fmt: skip
    assert_rows(report, "contacts_by_month", [
        ("2026-03", "USD", 3, "3.02", "315.00", 3.02 / 315),
        ("2026-04", "USD", 1, "0.02", "42.00", 0.02 / 42),
    ])  # fmt: skip
    # + accounts contacted, right-party rate on the channel.
    assert_rows(report, "contacts_by_channel", [
        ("call", "USD", 2, "3.00", "70.00", 3 / 70, 2, 0.5),  # A2 reached by call, A5 not
        ("sms", "USD", 2, "0.04", "142.00", 0.04 / 142, 2, 0.5),  # A1's sms reply
        ("unattributed", "USD", 0, "0.00", "145.00", 0.0, 0, N),
    ])  # fmt: skip
    assert_rows(report, "contacts_by_stage", [
        ("call", "USD", 2, "3.00", "70.00", 3 / 70),
        ("early", "USD", 2, "0.04", "142.00", 0.04 / 142),
        ("unattributed", "USD", 0, "0.00", "145.00", 0.0),
    ])  # fmt: skip
    assert_rows(report, "contacts_by_arm", [
        ("exp/a", "USD", 1, "0.02", "180.00", 0.02 / 180),
        ("exp/b", "USD", 2, "3.00", "110.00", 3 / 110),
        ("(none)", "USD", 1, "0.02", "67.00", 0.02 / 67),  # C5; 42 + A7's 25
    ])  # fmt: skip


def test_rolls_suppressions_agencies_causes(report: KpiReport) -> None:
    # From the first snapshot's bucket to the last's.
    z = 0.0
    assert_rows(report, "roll_rates", [
        ("current", 1, 1.0, z, z, z, z, z, z),  # A6
        ("1-30", 2, 0.5, 0.5, z, z, z, z, z),  # A1 cured, A4 stayed
        ("31-60", 2, z, z, 1.0, z, z, z, z),  # A2, A5
        ("91-120", 1, z, z, z, z, 1.0, z, z),  # A3
    ])  # fmt: skip
    assert_rows(report, "suppressions_by_reason", [
        ("us_reg_f.inconvenient_time", 0, 2),
        ("core.opted_out", 1, 0),
        ("us_reg_f.call_frequency_7in7", 0, 1),
    ])  # fmt: skip
    # harbor: 600 placed while open, R1 80 in the period (R3 before), 22 %; pacific: placed
    # 03-25, recalled 03-29, nothing back, default 30 %; liberty recalled before the period.
    assert_rows(report, "agency_recovery", [
        ("harbor_recovery", "USD", 0, "600.00", "80.00", 80 / 600, "17.60"),
        ("pacific_collect", "USD", 1, "250.00", "0.00", 0.0, "0.00"),
    ])  # fmt: skip
    # Delinquent in the period: A1..A5; latest cause by the end (A4's came after it).
    assert_rows(report, "cause_mix", [
        ("forgot", 1, 0.2), ("illness", 1, 0.2), ("job_loss", 1, 0.2), ("(none)", 2, 0.4),
    ])  # fmt: skip


def test_every_grouping_reconciles_with_the_headline(report: KpiReport) -> None:
    for group in report.groups:
        if not group.key.startswith("recovery_by_"):
            continue
        totals: dict[str, Decimal] = {}
        for row in group.rows:
            totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + row["collected"]
        assert {c: v for c, v in totals.items() if v} == report.headline["collected"], group.key


def test_arm_outcomes(engine: Engine, portfolio: dict[str, int]) -> None:
    rows = kpis.arm_outcomes(engine, "exp", FROM, TO, config=CONFIG)
    p = portfolio
    got = [(r.account_id, r.arm, r.currency, str(r.past_due_at_entry), str(r.collected),
            r.contacted, r.right_party, r.promises, r.promises_kept) for r in rows]  # fmt: skip
    assert got == [
        (p["A1"], "a", "USD", "100.00", "100.00", True, True, 0, 0),
        (p["A2"], "b", "USD", "200.00", "70.00", True, True, 1, 1),  # P2 + P9
        (p["A3"], "a", "USD", "500.00", "80.00", False, False, 0, 0),
        (p["A5"], "b", "USD", "300.00", "40.00", True, False, 1, 0),  # P5 reversed
        (p["A6"], "a", "USD", "0.00", "0.00", False, False, 0, 0),  # E3 without a contact
    ]
