"""The CLI's machine-readable outputs: ``plan --json`` lines and ``explain``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from outreach import settings
from outreach.entry.cli import main
from tests import factories as f

DAY = dt.date(2026, 11, 23)


@pytest.fixture
def db(app_data: Path):  # type: ignore[no-untyped-def]
    return f.database(settings.database_url())


def test_plan_json_prints_one_decision_per_line(db, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    ok = f.add_account(db, as_of=DAY, dpd=5)
    held = f.add_account(db, as_of=DAY, dpd=20)
    f.add_hold(db, held["account_id"], "cease_communication", DAY - dt.timedelta(days=3))
    calls = f.add_account(db, as_of=DAY, dpd=20, validation_notice_sent_on=dt.date(2026, 11, 2))
    f.add_call(db, calls["account_id"], dt.datetime(2026, 11, 20, 15), "conversation")
    assert main(["plan", "--as-of", str(DAY), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by = {(d["account_id"], d["action"]): d for d in lines}
    sms = by[(ok["account_ref"], "sms_reminder")]
    assert sms["verdict"] == "send" and sms["reasons"] == []
    assert sms["window_start"] == "2026-11-23T13:00:00Z"
    assert sms["window_end"] == "2026-11-24T02:00:00Z"
    assert sms["defer_until"] is None and sms["stage"] == "early_reminder"
    assert sms["channel"] == "sms"
    blocked = by[(held["account_ref"], "sms_followup")]
    assert blocked["verdict"] == "block" and blocked["reasons"] == ["us_reg_f.cease_communication"]
    deferred = by[(calls["account_ref"], "agent_call")]
    assert deferred["verdict"] == "defer"
    assert deferred["reasons"] == ["us_reg_f.call_after_conversation"]
    assert deferred["defer_until"] == "2026-11-27T13:00:00Z"  # day 8, 08:00 in New York
    for d in lines:
        assert {"account_id", "stage", "action", "channel", "verdict", "reasons"} <= set(d)


def test_explain_shows_every_rule_its_citation_and_facts(db, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    acc = f.add_account(db, as_of=DAY, dpd=20, phones=[
        {"value": "+12125550111", "zones": "America/Los_Angeles"}],
        validation_notice_sent_on=dt.date(2026, 11, 2))
    for i in range(7):
        f.add_call(db, acc["account_id"], dt.datetime(2026, 11, 17 + i % 5, 15))
    assert main(["explain", acc["account_ref"], "--as-of", str(DAY), "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["stage"] == "collections_call" and e["facts"]["days_past_due"] == 20
    call = next(a for a in e["actions"] if a["action"] == "agent_call")
    assert call["decision"]["verdict"] == "defer"
    rules = {r["rule"]: r for r in call["candidates"][0]["rules"]}
    assert rules["us_reg_f.call_frequency_7in7"]["facts"]["attempts_in_period"] == 7
    citation = rules["us_reg_f.call_frequency_7in7"]["citation"]
    assert citation.startswith("12 CFR 1006.14(b)(2)(i)") and "1006.14(b)(3)(iii)" in citation
    # The true first instant: the cap has room on 11-24, from 08:00 in Los Angeles (the later
    # of the address's and the phone's zones).
    assert call["decision"]["defer_until"] == "2026-11-24T16:00:00Z"
    assert rules["us_reg_f.inconvenient_time"]["facts"]["zones"] == [
        "America/New_York", "America/Los_Angeles"]
    assert rules["core.bankruptcy"]["outcome"] == "pass"
    assert main(["explain", acc["account_ref"], "--as-of", str(DAY)]) == 0
    out = capsys.readouterr().out
    assert "DEFER" in out and "us_reg_f.call_frequency_7in7" in out and "12 CFR" in out


def test_explain_unknown_account_is_a_clear_error(db, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["explain", "NOPE", "--as-of", str(DAY)]) == 2
    assert "no account 'NOPE'" in capsys.readouterr().err


def test_bad_date_is_rejected_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["plan", "--as-of", "23/11/2026"])
    assert "not an ISO date" in capsys.readouterr().err
