"""The planner on a real database: stages, cadence, verdicts in the ledger, determinism, batches."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from outreach.planning.ladder import Ladder, load_ladder
from outreach.planning.planner import account_ranges, iter_plan, plan_range
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def ladder() -> Ladder:
    return load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")


def plan_all(engine: Engine, ladder: Ladder, day: dt.date = DAY, batch: int = 1000) -> None:
    for _ in iter_plan(engine, ladder, day, batch):
        pass


def ledger(engine: Engine) -> list[tuple]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT key, account_id, stage, action, slot, channel, contact_point_id, plan_date, "
            "state, verdict, reasons, window_start, window_end, defer_until, config_version, "
            "pack_versions FROM contact ORDER BY key"))]


def decisions(engine: Engine) -> list[tuple]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT contact_key, phase, as_of, decided_at, verdict, reasons, window_start, "
            "window_end, defer_until, config_version, pack_versions, evidence "
            "FROM policy_decision ORDER BY contact_key, phase"))]


def test_early_stage_account_gets_validation_notice_sms_and_email_with_windows(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=5)
    counts = plan_range(engine, ladder, DAY, acc["account_id"], acc["account_id"])
    assert counts.as_dict() == {"accounts": 1, "in_stage": 1, "steps": 3, "send": 3, "defer": 0,
                                "block": 0, "catch_up": 0}
    rows = {r["channel"]: r for r in f.contacts(engine)}
    assert set(rows) == {"letter", "sms", "email"}  # the letter: the validation notice
    assert rows["sms"]["contact_point_id"] == acc["points"]["phone0"]
    assert rows["sms"]["state"] == "planned" and rows["sms"]["stage"] == "early_reminder"
    assert rows["sms"]["window_start"] == dt.datetime(2026, 11, 23, 13, 0)
    assert rows["sms"]["config_version"] == ladder.version
    assert rows["sms"]["pack_versions"] == (
        "core@2026.12.3,us_reg_f@2021.11.30.1,us_tcpa@2025.04.11,us_scra@2003.12.19")


def test_plan_is_deterministic_and_a_rerun_changes_nothing(engine: Engine, ladder: Ladder) -> None:
    for dpd in (3, 20, 70, 130, 200, 300):
        f.add_account(engine, as_of=DAY, dpd=dpd, balance="5000.00")
    bankrupt = f.add_account(engine, as_of=DAY, dpd=8)
    f.add_hold(engine, bankrupt["account_id"], "bankruptcy", DAY - dt.timedelta(days=30))
    plan_all(engine, ladder)
    first_ledger, first_decisions = ledger(engine), decisions(engine)
    plan_all(engine, ladder, batch=2)  # other batch boundaries, same plan
    assert ledger(engine) == first_ledger
    assert decisions(engine) == first_decisions
    assert len(first_decisions) == len(first_ledger)


def test_every_decision_carries_versions_and_evidence(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=8)
    f.add_hold(engine, acc["account_id"], "bankruptcy", DAY - dt.timedelta(days=30))
    plan_all(engine, ladder)
    rows = decisions(engine)
    assert {r[4] for r in rows} == {"block"}
    for r in rows:
        assert r[5] == "core.bankruptcy"
        assert r[9] == ladder.version and "us_reg_f@" in r[10]
        evidence = r[11] if isinstance(r[11], dict) else json.loads(r[11])
        assert evidence["core.bankruptcy"]["citation"].startswith("US: 11 U.S.C. 362")
    assert {c["state"] for c in f.contacts(engine)} == {"suppressed"}


def test_ended_hold_no_longer_blocks(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=8)
    f.add_hold(engine, acc["account_id"], "dispute", DAY - dt.timedelta(days=30),
               ended_on=DAY - dt.timedelta(days=1))
    plan_all(engine, ladder)
    assert {c["state"] for c in f.contacts(engine)} == {"planned"}


def test_payment_that_clears_the_arrears_removes_the_account_from_the_ladder(
        engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=8, past_due="100.00")
    f.add_payment(engine, acc["account_id"], DAY, "100.00")  # after the balance snapshot
    counts = plan_range(engine, ladder, DAY, acc["account_id"], acc["account_id"])
    assert counts.in_stage == 0 and f.contacts(engine) == []


def test_cadence_waits_every_days_and_stops_at_max_times(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=2, emails=[])
    day = DAY
    sent_slots = []
    for offset in range(0, 14):  # dpd 2..15: the early_reminder stage only
        day = DAY + dt.timedelta(days=offset)
        plan_all(engine, ladder, day)
        with engine.begin() as conn:  # pretend dispatch sent what was planned for that day
            sent_slots += [r[0] for r in conn.execute(text(
                "SELECT slot FROM contact WHERE plan_date = :d AND state = 'planned' "
                "AND channel = 'sms'"), {"d": day})]
            conn.execute(text("UPDATE contact SET state = 'sent' WHERE plan_date = :d "
                              "AND state = 'planned'"), {"d": day})
    # every 3 days, 4 times, within dpd 1..15 (the account is 2 days past due on DAY)
    assert sent_slots == [1, 2, 3, 4]
    with engine.connect() as conn:
        days = [r[0] for r in conn.execute(text(
            "SELECT plan_date FROM contact WHERE channel = 'sms' AND account_id = :a "
            "ORDER BY slot"), {"a": acc["account_id"]})]
    assert [(dt.date.fromisoformat(str(d)) - DAY).days for d in days] == [0, 3, 6, 9]


def test_opted_out_mobile_falls_back_to_the_next_mobile(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=4, emails=[], phones=[
        {"value": "+12125550101", "zones": "America/New_York"},
        {"value": "+13105550102", "zones": "America/Los_Angeles"}])
    f.add_opt_out(engine, acc["person_id"], "sms", str(acc["points"]["phone0"]),
                  dt.datetime(2026, 11, 1))
    plan_all(engine, ladder)
    [row] = f.contacts(engine, channel="sms")
    assert row["contact_point_id"] == acc["points"]["phone1"]
    assert row["window_start"] == dt.datetime(2026, 11, 23, 16, 0)  # Los Angeles number


def test_channel_wide_opt_out_suppresses(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=4, emails=[])
    f.add_opt_out(engine, acc["person_id"], "sms", "*", dt.datetime(2026, 11, 1))
    plan_all(engine, ladder)
    [row] = f.contacts(engine, channel="sms")
    assert row["state"] == "suppressed" and row["reasons"] == "core.opted_out"


def test_facts_after_the_plan_cutoff_are_not_read(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=20)
    f.add_call(engine, acc["account_id"], dt.datetime(2026, 11, 23, 1, 0), "conversation")
    plan_all(engine, ladder)
    [row] = f.contacts(engine, channel="call")
    assert row["state"] == "planned"  # the conversation is after 00:00 UTC of the plan day


def test_eighth_call_in_seven_days_is_deferred_in_the_ledger(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=20, validation_notice_sent_on=DAY - dt.timedelta(days=30))
    for i in range(7):
        f.add_call(engine, acc["account_id"],
                   dt.datetime.combine(DAY - dt.timedelta(days=2 + i % 5), dt.time(15)))
    plan_all(engine, ladder)
    [row] = f.contacts(engine, channel="call")
    assert row["state"] == "deferred" and row["reasons"] == "us_reg_f.call_frequency_7in7"
    assert row["defer_until"] is not None


def test_prerequisite_unmet_is_a_recorded_block(engine: Engine, ladder: Ladder, tmp_path: Path
                                                ) -> None:  # fmt: skip
    # A required step that can never be taken often enough (the ladder asks for two final
    # notices, the cadence allows one): the account cannot catch up, so its stage is blocked.
    text_ = (PROJECT_ROOT / "config" / "ladders" / "default.yaml").read_text()
    strict = tmp_path / "strict.yaml"
    strict.write_text(text_.replace("- {stage: final_notice, action: final_notice_letter}",
                                    "- {stage: final_notice, action: final_notice_letter, "
                                    "min_times: 2}"))  # fmt: skip
    ladder = load_ladder(strict)
    acc = f.add_account(engine, as_of=DAY, dpd=160, balance="3000.00")
    f.add_final_notice(engine, acc["account_id"], dt.datetime(2026, 10, 1, 15))
    plan_all(engine, ladder)
    [row] = f.contacts(engine, plan_date=DAY)
    assert row["stage"] == "agency_placement"
    assert row["state"] == "suppressed" and row["reasons"] == "ladder.prerequisite_unmet"


def test_replanning_a_deferred_contact_keeps_its_key(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=20, validation_notice_sent_on=DAY - dt.timedelta(days=30))
    f.add_call(engine, acc["account_id"], dt.datetime.combine(DAY - dt.timedelta(days=2),
                                                              dt.time(15)), "conversation")
    plan_all(engine, ladder)
    [deferred] = f.contacts(engine, channel="call")
    assert deferred["state"] == "deferred"
    plan_all(engine, ladder, DAY + dt.timedelta(days=5))
    [planned] = f.contacts(engine, channel="call")
    assert planned["key"] == deferred["key"] and planned["state"] == "planned"


def test_account_ranges_cover_every_account_once(engine: Engine) -> None:
    ids = [f.add_account(engine, as_of=DAY)["account_id"] for _ in range(7)]
    ranges = account_ranges(engine, 3)
    assert len(ranges) == 3
    covered = [i for i in ids if any(lo <= i <= hi for lo, hi in ranges)]
    assert covered == ids
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False))


def test_validation_notice_sent_today_changes_only_tomorrows_plan(engine: Engine, ladder: Ladder) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=10)
    f.add_call(engine, acc["account_id"], dt.datetime.combine(DAY - dt.timedelta(days=8), dt.time(15)))
    plan_all(engine, ladder)
    sms = {r["channel"]: r for r in f.contacts(engine)}["sms"]
    assert sms["state"] == "suppressed" and sms["reasons"] == "us_reg_f.validation_notice_overdue"
    with engine.begin() as conn:  # what the dispatcher records when the notice goes out today
        conn.execute(text("UPDATE account SET validation_notice_sent_on = :d WHERE id = :a"),
                     {"d": DAY, "a": acc["account_id"]})
    plan_all(engine, ladder)  # a rerun of today: the same plan
    again = {r["channel"]: r for r in f.contacts(engine)}["sms"]
    assert (again["state"], again["reasons"]) == ("suppressed", "us_reg_f.validation_notice_overdue")
    plan_all(engine, ladder, DAY + dt.timedelta(days=1))
    tomorrow = [r for r in f.contacts(engine, channel="sms") if r["plan_date"] == DAY + dt.timedelta(days=1)]
    assert [r["state"] for r in tomorrow] == ["planned"]
