"""Hardship, causes of delinquency and disputes, end to end (issue 15 item 4): the hardship
pause, causes on dispositions and imports, dispute -> verification task -> verification letter
sent through the real dispatch -> the dispute hold ends (US) or stays (elsewhere)."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import Engine, text

import outreach.media.letters.channel as letters_medium
from outreach.dispatch.dispatcher import dispatch_range
from outreach.entry.agent_api import build_router
from outreach.entry.cli import main
from outreach.planning.kinds import build_channel
from outreach.planning.ladder import Ladder, load_ladder
from outreach.planning.planner import iter_plan
from outreach.resolution.events import history
from outreach.services import disputes
from outreach.services.accounts import explain
from outreach.settings import PROJECT_ROOT
from policies.gate import evaluate
from policies.model import AccountFacts, Step
from tests import factories as f

DAY = dt.date(2026, 11, 23)


@pytest.fixture
def cli(url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``outreach ...`` on the test's database (conftest's ``url``); returns the exit code."""
    monkeypatch.setenv("OUTREACH_DATABASE_URL", url)

    def run(*argv: str) -> int:
        return main(list(argv))

    return run


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split())
                    for page in PdfReader(io.BytesIO(data)).pages)  # fmt: skip


def letter_pdf(engine: Engine, drop: Path, account_id: int, day: dt.date) -> bytes:
    with engine.connect() as conn:
        key = conn.execute(text("SELECT key FROM contact WHERE account_id = :a AND channel = "
                                "'letter' AND state = 'sent' AND plan_date = :d"),
                           {"a": account_id, "d": day}).scalar_one()  # fmt: skip
    return (drop / day.isoformat() / "letters" / f"{key}.pdf").read_bytes()


def holds(engine: Engine, account_id: int) -> list[tuple[str, str, str | None, str]]:
    with engine.connect() as conn:
        return [tuple(str(x) if x is not None else None for x in r)  # type: ignore[misc]
                for r in conn.execute(text(
                    "SELECT kind, started_on, ended_on, source FROM account_hold "
                    "WHERE account_id = :a ORDER BY id"), {"a": account_id})]  # fmt: skip


def tasks(engine: Engine, account_id: int) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(text(
            "SELECT state, ledger_key FROM verification_task WHERE account_id = :a ORDER BY id"),
            {"a": account_id})]  # fmt: skip


def test_hardship_service_starts_a_pause_of_pause_days_once_a_day(engine: Engine) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=40)
    out = disputes.hardship(engine, acc["account_ref"], source="console", actor="ana", as_of=DAY)
    assert out["pause_ends_on"] == "2026-12-23"  # config/arrangements.yaml: 30 days
    again = disputes.hardship(engine, acc["account_ref"], source="console", actor="ana",
                              as_of=DAY)  # fmt: skip
    assert again["pause_ends_on"] == "2026-12-23"
    assert holds(engine, acc["account_id"]) == [("hardship", "2026-11-23", "2026-12-23",
                                                 "console")]  # fmt: skip
    with engine.connect() as conn:
        events = history(conn, acc["account_id"])
    assert [(e["subject"], e["to_state"], e["actor"]) for e in events] == [
        ("hold", "active", "ana")]


def test_cause_is_validated_and_recorded_with_its_event(engine: Engine) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=40)
    with pytest.raises(disputes.UnknownCause):
        disputes.cause(engine, acc["account_ref"], "bad_luck", source="console", actor="ana")
    disputes.cause(engine, acc["account_ref"], "job_loss", source="console", actor="ana")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT cause, source, actor FROM delinquency_cause")).all()
        events = history(conn, acc["account_id"])
    assert [tuple(r) for r in rows] == [("job_loss", "console", "ana")]
    assert [(e["subject"], e["to_state"]) for e in events] == [("cause", "job_loss")]


def test_dispute_opens_one_hold_and_one_task_however_often_raised(engine: Engine) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=40)
    first = disputes.dispute(engine, acc["account_ref"], source="agent", actor="ana", as_of=DAY)
    second = disputes.dispute(engine, acc["account_ref"], source="self_service",
                              actor="consumer", as_of=DAY + dt.timedelta(days=2))  # fmt: skip
    assert first["verification_task"] == second["verification_task"]
    assert holds(engine, acc["account_id"]) == [("dispute", "2026-11-23", None, "agent")]
    assert tasks(engine, acc["account_id"]) == [("open", None)]


def test_unknown_account_is_refused(engine: Engine) -> None:
    with pytest.raises(disputes.UnknownAccount):
        disputes.dispute(engine, "NOPE", source="cli", actor="ana", as_of=DAY)


# --- end to end: the plan, the real dispatch, the CLI -------------------------------------------

# A ladder with the verification letter (the default ladder's is the LADDER helper's: the snippet
# in docs/resolution.md), a collection letter and SMS, and the offer a hardship lets through.
TEST_LADDER = """
name: disputes_test
stages:
  - id: collections
    entry: {dpd_min: 16, dpd_max: 120, min_balance: 25}
    actions:
      - id: verification_letter
        channel: letter
        template: letter/verification
        purpose: verification
        cadence: {every_days: 1, max_times: 12}
      - id: instalment_offer_letter
        channel: letter
        template: letter/instalment_offer
        purpose: instalment_offer
        cadence: {every_days: 30, max_times: 2}
      - id: sms_followup
        channel: sms
        template: sms/followup
        cadence: {every_days: 7, max_times: 6}
      - id: reminder_letter
        channel: letter
        template: letter/payment_reminder
        cadence: {every_days: 7, max_times: 4}
"""


@pytest.fixture
def ladder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ladder:
    """The test ladder, in force for the dispatcher too (OUTREACH_LADDER)."""
    path = tmp_path / "ladder.yaml"
    path.write_text(TEST_LADDER, encoding="utf-8")
    monkeypatch.setenv("OUTREACH_LADDER", str(path))
    return load_ladder(path)


def plan(engine: Engine, ladder: Ladder, day: dt.date) -> dict[str, tuple[str, str]]:
    """Plan ``day``; its steps by action: (verdict, reasons)."""
    for _ in iter_plan(engine, ladder, day, 1000):
        pass
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2] or "") for r in conn.execute(text(
            "SELECT action, verdict, reasons FROM contact WHERE plan_date = :d"), {"d": day})}


def explained(engine: Engine, ladder: Ladder, account_ref: str, day: dt.date) -> str:
    """``outreach explain``'s account, as JSON text (every rule's evidence, passes too)."""
    return json.dumps(explain(engine, ladder, account_ref, day), default=str)


def send_letters(engine: Engine, printer: Any, day: dt.date) -> int:
    return dispatch_range(engine, day, "letter", 0, 10**9, clock="logical",
                          channel_impl=printer).sent  # fmt: skip


def disputed(engine: Engine, country: str = "US", notice_days_ago: int = 60, **kw: Any
             ) -> dict[str, Any]:  # fmt: skip
    """An account 30 days past due whose validation notice went out ``notice_days_ago``. In
    the US a dispute stops a collector only within the validation period
    (us_reg_f.dispute_in_validation_period supersedes core.dispute_open)."""
    if country != "US":
        kw.update(country=country, region=None, address_zones="Asia/Shanghai", language="zh-CN",
                  phones=[{"value": "+8613800138000", "zones": "Asia/Shanghai"}])
    return f.add_account(engine, as_of=DAY, dpd=30, balance="1500.00", past_due="300.00",
                         validation_notice_sent_on=DAY - dt.timedelta(days=notice_days_ago),
                         **kw)  # fmt: skip


def test_hardship_pauses_the_plan_with_core_hardship_pause_and_it_resumes_after_pause_days(
    engine: Engine, ladder: Ladder, capsys: pytest.CaptureFixture[str], cli: Any,
) -> None:
    acc = disputed(engine)
    assert cli("hardship", acc["account_ref"], "--as-of", str(DAY), "--actor", "ana") == 0
    assert '"pause_ends_on": "2026-12-23"' in capsys.readouterr().out
    steps = plan(engine, ladder, DAY)
    assert steps["sms_followup"] == ("block", "core.hardship_pause")
    assert steps["reminder_letter"][1] == "core.hardship_pause"
    # The offer sized to the situation still goes, and no verification (nothing disputed).
    assert steps["instalment_offer_letter"][0] != "block"
    assert steps["verification_letter"] == ("block", "core.verification_not_due")
    last_paused = DAY + dt.timedelta(days=29)
    assert plan(engine, ladder, last_paused)["sms_followup"] == ("block", "core.hardship_pause")
    resumed = plan(engine, ladder, DAY + dt.timedelta(days=30))
    assert resumed["sms_followup"][0] != "block"
    assert "core.hardship_pause" not in resumed["sms_followup"][1]


def test_dispute_is_verified_by_the_letter_sent_through_dispatch_and_a_us_plan_resumes(
    engine: Engine, ladder: Ladder, printer: Any, drop: Path, cli: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    acc = disputed(engine, notice_days_ago=10, itemization_date=dt.date(2026, 10, 31),
                   itemization_kind="last_statement", itemization_amount=Decimal("1480.00"),
                   interest_since_itemization=Decimal("20.00"))  # fmt: skip
    account_id = acc["account_id"]
    assert cli("disputes", "open", acc["account_ref"], "--as-of", str(DAY), "--actor", "ana") == 0
    assert '"verification_task": 1' in capsys.readouterr().out
    steps = plan(engine, ladder, DAY)
    # Collection stops; the verification letter goes (the dispute hold lets it through).
    assert steps["reminder_letter"] == ("block", "us_reg_f.dispute_in_validation_period")
    assert steps["sms_followup"] == ("block", "us_reg_f.dispute_in_validation_period")
    assert steps["verification_letter"][0] == "send"
    assert '"verification_due": "verification-1"' in explained(engine, ladder,
                                                               acc["account_ref"], DAY)
    assert send_letters(engine, printer, DAY) == 1
    assert tasks(engine, account_id)[0][0] == "sent"
    assert holds(engine, account_id) == [("dispute", "2026-11-23", "2026-11-23", "cli")]
    letter = pdf_text(letter_pdf(engine, drop, account_id, DAY))
    for said in ("Verification of the debt", "Testing Creditor Bank", "1,480.00 USD",
                 "+ 20.00 USD", "1,500.00 USD", "**** " + acc["account_ref"][-4:],
                 "from a debt collector", "You disputed this debt on November 23, 2026"):  # fmt: skip
        assert said in letter, (said, letter)
    with engine.connect() as conn:
        changes = [(e["subject"], e["from_state"], e["to_state"], e["actor"])
                   for e in history(conn, account_id)]  # fmt: skip
    assert changes[-3:] == [("verification", "open", "sent", "system"),
                            ("hold", "active", "ended", "system"),
                            ("dispute", "open", "verified", "system")]  # fmt: skip
    # The next day's plan resumes collection, and no second verification goes.
    nxt = plan(engine, ladder, DAY + dt.timedelta(days=1))
    assert nxt["reminder_letter"][0] == "send" and "dispute" not in nxt["reminder_letter"][1]
    assert nxt["verification_letter"] == ("block", "core.verification_not_due")
    # A rerun of the day's dispatch changes nothing more.
    assert send_letters(engine, printer, DAY) == 0
    assert len(tasks(engine, account_id)) == 1


@pytest.mark.usefixtures("data_dir")
def test_outside_the_us_the_verification_is_sent_and_the_dispute_hold_stays(
    engine: Engine, ladder: Ladder, printer: Any, drop: Path,
) -> None:
    acc = disputed(engine, country="CN")
    disputes.dispute(engine, acc["account_ref"], source="agent", actor="ana", as_of=DAY)
    assert plan(engine, ladder, DAY)["verification_letter"][0] == "send"
    assert send_letters(engine, printer, DAY) == 1
    assert tasks(engine, acc["account_id"])[0][0] == "sent"
    assert holds(engine, acc["account_id"]) == [("dispute", "2026-11-23", None, "agent")]
    with engine.connect() as conn:
        last = history(conn, acc["account_id"])[-1]
    assert (last["subject"], last["to_state"]) == ("dispute", "verified")
    assert "hold kept" in str(last["reason"])
    letter = pdf_text(letter_pdf(engine, drop, acc["account_id"], DAY))
    assert "债务核实" in letter
    nxt = plan(engine, ladder, DAY + dt.timedelta(days=1))
    assert nxt["reminder_letter"][1] == "core.dispute_open"
    assert nxt["verification_letter"] == ("block", "core.verification_not_due")


# --- dispositions: the agents' API ------------------------------------------------------------

CALL_AT = dt.datetime(2026, 11, 23, 14, 0)  # 09:00 in New York


def claimed_call(engine: Engine, url: str, tmp_path: Path) -> tuple[TestClient, str, int]:
    """An account in the default ladder's call stage, its call queued by the real dispatch and
    claimed by agent-1 through the agents' API: (client, task key, account id)."""
    acc = f.add_account(engine, as_of=DAY, dpd=20,
                        validation_notice_sent_on=DAY - dt.timedelta(days=21))  # fmt: skip
    for _ in iter_plan(engine, load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml"),
                       DAY, 1000):  # fmt: skip
        pass
    queue = build_channel("call", {"backend": "agent_queue"},
                          outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}", state_dir=tmp_path,
                          database_url=url)  # fmt: skip
    dispatch_range(engine, DAY, "call", 0, 10**9, clock="logical", channel_impl=queue)
    app = FastAPI()
    app.include_router(build_router(lambda: engine, clock=lambda: CALL_AT))
    api = TestClient(app)
    got = api.post("/agent/tasks/claim", json={"agent": "agent-1"})
    assert got.status_code == 200
    return api, got.json()["key"], acc["account_id"]


def test_a_disposition_records_the_cause_and_refuses_one_not_in_the_list(
    engine: Engine, url: str, tmp_path: Path
) -> None:
    api, key, account_id = claimed_call(engine, url, tmp_path)
    path = f"/agent/tasks/{key}/disposition"
    bad = api.post(path, json={"agent": "agent-1", "disposition": "hardship", "cause": "luck"})
    assert bad.status_code == 422 and bad.json()["code"] == "cause"
    assert holds(engine, account_id) == []  # nothing changed: the task can still take one
    ok = api.post(path, json={"agent": "agent-1", "disposition": "hardship",
                              "cause": "job_loss"})  # fmt: skip
    assert ok.status_code == 200 and ok.json()["cause"] == "job_loss"
    # The hardship disposition goes through the hardship pause: it ends after pause_days.
    assert holds(engine, account_id) == [("hardship", "2026-11-23", "2026-12-23", "agent")]
    with engine.connect() as conn:
        causes = conn.execute(text("SELECT cause, source, actor FROM delinquency_cause")).all()
        changes = [(e["subject"], e["to_state"], e["actor"]) for e in history(conn, account_id)]
    assert [tuple(c) for c in causes] == [("job_loss", "agent", "agent-1")]
    assert changes == [("hold", "active", "agent-1"), ("cause", "job_loss", "agent-1")]
    replay = api.post(path, json={"agent": "agent-1", "disposition": "hardship",
                                  "cause": "job_loss"})  # fmt: skip
    assert replay.json()["status"] == "already_recorded"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM delinquency_cause")).scalar_one() == 1


def test_a_dispute_disposition_opens_the_verification_task(
    engine: Engine, url: str, tmp_path: Path
) -> None:
    api, key, account_id = claimed_call(engine, url, tmp_path)
    ok = api.post(f"/agent/tasks/{key}/disposition",
                  json={"agent": "agent-1", "disposition": "dispute",
                        "cause": "disputes_debt"})  # fmt: skip
    assert ok.status_code == 200 and ok.json()["hold"] == "dispute"
    assert holds(engine, account_id) == [("dispute", "2026-11-23", None, "agent")]
    assert tasks(engine, account_id) == [("open", None)]
    # The self-service page or another call raising it again joins the same task.
    with engine.connect() as conn:
        ref = conn.execute(text("SELECT account_ref FROM account WHERE id = :a"),
                           {"a": account_id}).scalar_one()  # fmt: skip
    again = disputes.dispute(engine, ref, source="self_service", actor="consumer", as_of=DAY)
    assert again["verification_task"] == 1 and len(tasks(engine, account_id)) == 1


# --- the import record `cause` --------------------------------------------------------------


def test_cause_records_import_with_per_row_rejects_and_a_reimport_changes_nothing(
    engine: Engine, cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=40)
    ref = acc["account_ref"]
    rows = [
        {"record": "cause", "account_ref": ref, "cause": "illness",
         "recorded_at": "2026-11-20T10:00:00-05:00"},
        {"record": "cause", "account_ref": ref, "cause": "bad_luck",
         "recorded_at": "2026-11-20T10:00:00-05:00"},
        {"record": "cause", "account_ref": ref, "cause": "forgot", "recorded_at": "2026-11-20"},
        {"record": "cause", "account_ref": "NOPE", "cause": "forgot",
         "recorded_at": "2026-11-20T10:00:00Z"},
    ]  # fmt: skip
    path = tmp_path / "causes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    assert cli("import", str(path), "--rejects", str(rejects)) == 3
    found = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["field"]) for r in found] == [(2, "cause"), (3, "recorded_at"),
                                                         (4, "account_ref")]  # fmt: skip
    assert "job_loss" in found[0]["reason"]  # the reason lists the causes
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT cause, source, actor, recorded_at FROM "
                                 "delinquency_cause")).all()  # fmt: skip
        events = [(e["subject"], e["to_state"], e["actor"]) for e in
                  history(conn, acc["account_id"])]  # fmt: skip
    assert [tuple(k)[:3] for k in kept] == [("illness", "import", "import")]
    assert str(kept[0][3])[:19] == "2026-11-20 15:00:00"  # UTC
    assert events == [("cause", "illness", "import")]
    capsys.readouterr()
    assert cli("import", str(path), "--rejects", str(rejects), "--allow-rejects") == 0
    assert "0 inserted" in capsys.readouterr().out
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM delinquency_cause")).scalar_one() == 1
        assert conn.execute(text("SELECT COUNT(*) FROM resolution_event")).scalar_one() == 1


def test_a_request_for_the_original_creditor_is_answered_and_ends_with_the_dispute(
    engine: Engine, ladder: Ladder, printer: Any, drop: Path, data_dir: Path
) -> None:
    acc = disputed(engine, notice_days_ago=10)
    disputes.dispute(engine, acc["account_ref"], source="agent", actor="ana", as_of=DAY)
    f.add_hold(engine, acc["account_id"], "original_creditor_request", DAY)
    plan(engine, ladder, DAY)
    assert send_letters(engine, printer, DAY) == 1
    letter = pdf_text(letter_pdf(engine, drop, acc["account_id"], DAY))
    assert "the original creditor is the current creditor, Testing Creditor Bank" in letter
    assert sorted(h[:3] for h in holds(engine, acc["account_id"])) == [
        ("dispute", "2026-11-23", "2026-11-23"),
        ("original_creditor_request", "2026-11-23", "2026-11-23")]


def test_the_gate_sends_a_verification_only_while_one_is_due() -> None:
    facts = AccountFacts(1, "US", "NY", 100.0, balance=1000.0, address_zones=("America/New_York",))
    letter = Step("letter", 12, purpose="verification")
    assert evaluate(letter, facts, day=DAY).reasons == ("core.verification_not_due",)
    due = replace(facts, holds=frozenset({"verification_due"}))
    assert "core.verification_not_due" not in evaluate(letter, due, day=DAY).reasons
    reminder = Step("letter", 12, purpose="reminder")
    assert "core.verification_not_due" not in evaluate(reminder, facts, day=DAY).reasons


class Killed(BaseException):
    """The worker dies (not an Exception: nothing on the way catches it)."""


def test_a_verification_letter_recovered_after_a_dead_worker_ends_the_dispute_too(
    engine: Engine, ladder: Ladder, printer: Any, drop: Path, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    acc = disputed(engine, notice_days_ago=10)
    disputes.dispute(engine, acc["account_ref"], source="agent", actor="ana", as_of=DAY)
    plan(engine, ladder, DAY)
    recorded = letters_medium.insert_document

    def killed(*args: Any, **kwargs: Any) -> Any:
        recorded(*args, **kwargs)
        raise Killed()

    # The letter is written, the worker dies before the ledger hears of it: `sending`.
    monkeypatch.setattr(letters_medium, "insert_document", killed)
    with pytest.raises(Killed):
        send_letters(engine, printer, DAY)
    assert tasks(engine, acc["account_id"])[0][0] == "open"
    monkeypatch.setattr(letters_medium, "insert_document", recorded)
    monkeypatch.setenv("OUTREACH_SENDING_LEASE_SECONDS", "0")
    counts = dispatch_range(engine, DAY, "letter", 0, 10**9, clock="logical",
                            channel_impl=printer)  # fmt: skip
    assert counts.recovered == 1 and counts.sent == 0
    assert tasks(engine, acc["account_id"])[0][0] == "sent"
    assert holds(engine, acc["account_id"]) == [("dispute", "2026-11-23", "2026-11-23", "agent")]


def test_the_causes_command_records_a_cause_and_refuses_another_value(
    engine: Engine, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    acc = f.add_account(engine, as_of=DAY, dpd=40)
    assert cli("causes", acc["account_ref"], "--cause", "illness", "--actor", "ana") == 0
    assert cli("causes", acc["account_ref"], "--cause", "bad_luck", "--actor", "ana") == 2
    assert "is not one of: job_loss" in capsys.readouterr().err
    assert cli("causes", "NOPE", "--cause", "illness") == 2
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT cause, source, actor FROM delinquency_cause")).all()
    assert [tuple(r) for r in rows] == [("illness", "cli", "ana")]
