"""``outreach config diff``: both ladders planned over the portfolio, compared, nothing written."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from outreach.entry.cli_config import add_diff_parser, cmd_config_diff
from outreach.operations.ladder_diff import (
    NOT_DUE,
    Judged,
    LadderDiff,
    diff_ladders,
)
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
DEFAULT = PROJECT_ROOT / "config" / "ladders" / "default.yaml"
SMS_FOLLOWUP = """      - id: sms_followup
        channel: sms
        template: sms/followup
        cadence: {every_days: 7, max_times: 6}
"""
COLLECTIONS_AGENT_CALL = """      - id: agent_call
        channel: call
        cadence: {every_days: 2, max_times: 15}
"""


def variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of the default ladder with one passage replaced (it must be there, once)."""
    source = DEFAULT.read_text(encoding="utf-8")
    assert source.count(old) == 1
    path = tmp_path / name
    path.write_text(source.replace(old, new), encoding="utf-8")
    return path


@pytest.fixture
def portfolio(app_data: Path) -> dict[str, Any]:
    """One account in every stage, plus two in collections_call that the gate treats apart:
    one opted out of calls, one whose mobile has no call consent."""
    engine = f.database(os.environ["OUTREACH_DATABASE_URL"])
    noticed: dict[str, Any] = {"balance": "5000.00", "validation_notice_sent_on": DAY - dt.timedelta(days=40)}
    by_dpd = {dpd: f.add_account(engine, as_of=DAY, dpd=dpd, **noticed)
              for dpd in (5, 20, 30, 70, 130, 200, 300)}
    no_calls = f.add_account(engine, as_of=DAY, dpd=25, **noticed)
    f.add_opt_out(engine, no_calls["person_id"], "call", "*", dt.datetime(2026, 11, 1))
    no_consent = f.add_account(
        engine, as_of=DAY, dpd=25,
        phones=[{"value": "+12125550999", "type": "mobile", "zones": "America/New_York",
                 "call_consent": False}],
        **noticed,
    )
    sms_opted_out = f.add_account(engine, as_of=DAY, dpd=6, **noticed)  # blocked in both
    f.add_opt_out(engine, sms_opted_out["person_id"], "sms", "*", dt.datetime(2026, 11, 1))
    return {"engine": engine, "by_dpd": by_dpd, "no_calls": no_calls, "no_consent": no_consent}


def run(old: Path, new: Path, *extra: str, batch_size: int = 1000) -> int:
    """The command as `outreach config diff` would call it (a parser of our own)."""
    parser = argparse.ArgumentParser()
    add_diff_parser(parser.add_subparsers(dest="config_command", required=True))
    args = parser.parse_args(
        ["diff", str(old), str(new), "--as-of", DAY.isoformat(), "--batch-size",
         str(batch_size), *extra]
    )
    assert args.func is cmd_config_diff
    return int(args.func(args))


def run_json(capsys: pytest.CaptureFixture[str], old: Path, new: Path, **kw: Any) -> dict[str, Any]:
    assert run(old, new, "--json", **kw) == 0
    return json.loads(capsys.readouterr().out)


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("contact", "policy_decision")}


def test_removing_an_action_reports_only_its_stage_and_the_account_left_blocked(
    portfolio: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = variant(tmp_path, "no_followup.yaml", SMS_FOLLOWUP, "")
    out = run_json(capsys, DEFAULT, new)
    # Four accounts in collections_call each had a follow-up SMS; the one opted out of calls
    # has nothing left but a blocked call.
    assert out["contacts"] == [{
        "stage": "collections_call", "action": "sms_followup", "channel": "sms",
        "added": 0, "removed": 4, "changed": 0, "rerouted": 0, "moves": {f"send->{NOT_DUE}": 4},
    }]
    assert out["totals"] == {"added": 0, "removed": 4, "changed": 0, "rerouted": 0}
    assert out["newly_blocked"] == {
        "accounts": 1, "by_reason": {"core.opted_out": 1}, "from": {"allowed": 1},
        "examples": [portfolio["no_calls"]["account_ref"]],
    }
    assert out["newly_allowed"]["accounts"] == 0
    assert out["old"]["send"] - out["new"]["send"] == 4
    assert out["old"]["version"] == load_ladder(DEFAULT).version
    assert out["new"]["version"] == load_ladder(new).version != out["old"]["version"]
    assert out["as_of"] == DAY.isoformat() and out["accounts"] == 10


def test_autodialed_calls_move_only_the_unconsented_call_from_send_to_block(
    portfolio: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = variant(tmp_path, "autodialed.yaml", COLLECTIONS_AGENT_CALL,
                  COLLECTIONS_AGENT_CALL.replace("channel: call\n",
                                                 "channel: call\n        dialer: autodialed\n"))
    out = run_json(capsys, DEFAULT, new)
    assert out["contacts"] == [{
        "stage": "collections_call", "action": "agent_call", "channel": "call",
        "added": 0, "removed": 1, "changed": 1, "rerouted": 0, "moves": {"send->block": 1},
    }]
    # Its follow-up SMS still goes out: the account is not blocked, only one of its contacts.
    assert out["newly_blocked"]["accounts"] == 0 and out["newly_allowed"]["accounts"] == 0


def test_the_reverse_change_reports_the_account_newly_allowed_with_the_old_reasons(
    portfolio: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    without = variant(tmp_path, "no_followup.yaml", SMS_FOLLOWUP, "")
    out = run_json(capsys, without, DEFAULT)
    assert out["contacts"][0]["added"] == 4 and out["contacts"][0]["removed"] == 0
    assert out["contacts"][0]["moves"] == {f"{NOT_DUE}->send": 4}
    assert out["newly_allowed"] == {
        "accounts": 1, "by_reason": {"core.opted_out": 1}, "from": {"blocked": 1},
        "examples": [portfolio["no_calls"]["account_ref"]],
    }
    assert out["newly_blocked"]["accounts"] == 0


def test_identical_ladders_give_an_empty_diff(
    portfolio: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy.yaml"
    copy.write_text("# the same ladder, another comment\n" + DEFAULT.read_text(encoding="utf-8"))
    out = run_json(capsys, DEFAULT, copy)
    assert out["empty"] is True and out["contacts"] == []
    assert out["totals"] == {"added": 0, "removed": 0, "changed": 0, "rerouted": 0}
    assert out["old"]["version"] == out["new"]["version"]
    assert out["old"]["steps"] == out["new"]["steps"] > 0
    assert run(DEFAULT, copy) == 0
    assert "No differences" in capsys.readouterr().out


def test_text_output_is_a_table_of_the_changed_stage_only(
    portfolio: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = variant(tmp_path, "no_followup.yaml", SMS_FOLLOWUP, "")
    assert run(DEFAULT, new) == 0
    printed = capsys.readouterr().out
    assert re.search(r"collections_call\s+sms_followup\s+sms\s+0\s+4\s+0\s+0\s+send->none 4", printed)
    for other in ("early_reminder", "hardship_plan", "letters ", "final_notice",
                  "agency_placement", "legal_referral"):
        assert other not in printed
    assert "Accounts newly blocked: 1" in printed and "core.opted_out 1" in printed
    assert portfolio["no_calls"]["account_ref"] in printed


def test_a_broken_new_ladder_exits_1_with_its_yaml_path_and_plans_nothing(
    portfolio: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = variant(tmp_path, "broken.yaml", SMS_FOLLOWUP,
                     SMS_FOLLOWUP.replace("every_days: 7", "every_days: 0"))
    assert run(DEFAULT, broken) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{broken}: stages[4].actions[1].cadence.every_days (line " in captured.err
    assert f"{broken}: 1 error(s)" in captured.err
    assert str(DEFAULT) not in captured.err  # the good one is not blamed


def test_the_diff_writes_nothing_to_the_ledger_and_sends_nothing(
    portfolio: dict[str, Any], app_data: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = portfolio["engine"]
    for _ in iter_plan(engine, load_ladder(DEFAULT), DAY, 1000):  # a ledger to leave alone
        pass
    with engine.connect() as conn:
        before = [tuple(r) for r in conn.execute(text("SELECT * FROM contact ORDER BY key"))]
    counts = row_counts(engine)
    assert counts["contact"] > 0 and counts["policy_decision"] > 0
    new = variant(tmp_path, "no_followup.yaml", SMS_FOLLOWUP, "")
    out = run_json(capsys, DEFAULT, new)
    assert out["totals"]["removed"] == 4  # the planned day is history after it, not before
    assert row_counts(engine) == counts
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT * FROM contact ORDER BY key"))] == before
    assert not (app_data / "outbox.db").exists()
    assert not any(app_data.rglob("*.pdf"))


def test_batch_boundaries_do_not_change_the_diff(
    portfolio: dict[str, Any], tmp_path: Path
) -> None:
    engine = portfolio["engine"]
    old = load_ladder(DEFAULT)
    new = load_ladder(variant(tmp_path, "no_followup.yaml", SMS_FOLLOWUP, ""))
    assert (diff_ladders(engine, old, new, DAY, 1).as_dict()
            == diff_ladders(engine, old, new, DAY, 1000).as_dict())


def test_the_json_carries_no_personal_data(
    portfolio: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = variant(tmp_path, "no_followup.yaml", SMS_FOLLOWUP, "")
    printed = json.dumps(run_json(capsys, DEFAULT, new))
    assert "@" not in printed
    assert not re.search(r"\+?1?212555\d{4}", printed)  # the factories' phone numbers
    assert "Pat Example" not in printed and "Main St" not in printed


SMS_REMINDER = ("early_reminder", "sms_reminder", 1, "sms")


def _j(key: str, verdict: str, *reasons: str) -> Judged:
    return Judged(key, *SMS_REMINDER, verdict, reasons)


def test_a_deferred_contact_that_would_send_is_added_and_changed() -> None:
    diff = LadderDiff(DAY, load_ladder(DEFAULT), load_ladder(DEFAULT))
    diff.compare_account("A1", {SMS_REMINDER: _j("k1", "defer", "us_reg_f.inconvenient_time")},
                         {SMS_REMINDER: _j("k1", "send")})
    diff.compare_account("A2", {}, {SMS_REMINDER: _j("k2", "block", "core.opted_out")})
    row = diff.as_dict()["contacts"][0]
    assert (row["added"], row["removed"], row["changed"], row["rerouted"]) == (1, 0, 1, 0)
    assert row["moves"] == {"defer->send": 1, f"{NOT_DUE}->block": 1}
    out = diff.as_dict()
    assert out["newly_allowed"] == {"accounts": 1, "by_reason": {"us_reg_f.inconvenient_time": 1},
                                    "from": {"deferred": 1}, "examples": ["A1"]}
    assert out["newly_blocked"] == {"accounts": 1, "by_reason": {"core.opted_out": 1},
                                    "from": {"idle": 1}, "examples": ["A2"]}


def test_a_send_to_another_destination_is_rerouted_not_added_and_removed() -> None:
    diff = LadderDiff(DAY, load_ladder(DEFAULT), load_ladder(DEFAULT))
    # Same account, action and slot; another contact point, so another ledger key.
    diff.compare_account("A1", {SMS_REMINDER: _j("k-phone0", "send")},
                         {SMS_REMINDER: _j("k-phone1", "send")})
    out = diff.as_dict()
    assert out["contacts"] == [{
        "stage": "early_reminder", "action": "sms_reminder", "channel": "sms",
        "added": 0, "removed": 0, "changed": 0, "rerouted": 1, "moves": {},
    }]
    assert out["newly_blocked"]["accounts"] == out["newly_allowed"]["accounts"] == 0


def test_autodialed_calls_reroute_to_the_consented_mobile(
    portfolio: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    phone = {"type": "mobile", "zones": "America/New_York"}
    f.add_account(
        portfolio["engine"], as_of=DAY, dpd=25, balance="5000.00",
        validation_notice_sent_on=DAY - dt.timedelta(days=40),
        phones=[{**phone, "value": "+12125550901", "call_consent": False},
                {**phone, "value": "+12125550902", "call_consent": True}],
    )
    new = variant(tmp_path, "autodialed.yaml", COLLECTIONS_AGENT_CALL,
                  COLLECTIONS_AGENT_CALL.replace("channel: call\n",
                                                 "channel: call\n        dialer: autodialed\n"))
    (row,) = run_json(capsys, DEFAULT, new)["contacts"]
    assert (row["action"], row["rerouted"], row["added"], row["removed"]) == ("agent_call", 1, 0, 1)
