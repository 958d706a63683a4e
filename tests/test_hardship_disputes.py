"""Hardship, causes of delinquency and disputes, end to end (issue 15 item 4): the hardship
pause, causes on dispositions and imports, dispute -> verification task -> verification letter
sent through the real dispatch -> the dispute hold ends (US) or stays (elsewhere)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from outreach.resolution.events import history
from outreach.services import disputes
from tests import factories as f

DAY = dt.date(2026, 11, 23)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


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
