"""Promises to pay, end to end: made (CLI, console, disposition, import) within the limits of
config/arrangements.yaml, pausing the account's plan with a reason that names them, then kept,
partly kept or broken by the day's settling (docs/resolution.md, "Promises to pay")."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from outreach import settings
from outreach.entry.cli import main
from outreach.resolution.events import history
from outreach.resolution.promises import PromiseRefused, make_promise, reopen
from outreach.resolution.settle import settle_accounts, settlers
from tests import factories as f

DAY = dt.date(2026, 11, 23)


def promise(engine: Engine, account_id: int, amount: str = "100.00", due_in: int = 5,
            day: dt.date = DAY, **kw: Any) -> Any:
    with engine.begin() as conn:
        return make_promise(conn, account_id=account_id, amount=Decimal(amount),
                            due_on=day + dt.timedelta(days=due_in), made_at=None,
                            source=kw.pop("source", "console"), actor=kw.pop("actor", "alex"),
                            day=day, **kw)  # fmt: skip


def status(engine: Engine, ref: str) -> tuple[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status, settled_on FROM promise WHERE promise_ref = :r"),
                           {"r": ref}).one()  # fmt: skip
    return row[0], (dt.date.fromisoformat(str(row[1])) if row[1] else None)


def pay(engine: Engine, ref: str, amount: str) -> None:
    """What the payments' allocation writes: the promise's paid amount."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE promise SET paid_amount = :p WHERE promise_ref = :r"),
                     {"p": amount, "r": ref})  # fmt: skip


def settle(engine: Engine, day: dt.date, ids: list[int] | None = None) -> dict[str, int]:
    with engine.begin() as conn:
        return settle_accounts(conn, day, ids)


def test_promises_settle_first() -> None:
    assert settlers()[0][0] == "promises"


def test_a_promise_is_recorded_once_with_its_event(engine: Engine) -> None:
    acc = f.add_account(engine, as_of=DAY)
    made = promise(engine, acc["account_id"], promise_ref="LP-1")
    assert (made.ref, made.status, made.pauses, made.reason) == ("LP-1", "open", True, None)
    assert made.pause_until == DAY + dt.timedelta(days=5 + 3)
    again = promise(engine, acc["account_id"], promise_ref="LP-1")
    assert again.ref == "LP-1" and not again.created
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM promise")).scalar() == 1
        events = history(conn, acc["account_id"])
    assert [(e["subject"], e["subject_ref"], e["to_state"], e["actor"], e["reason"])
            for e in events] == [("promise", "LP-1", "open", "alex", "console")]


@pytest.mark.parametrize(("amount", "due_in", "code"), [
    ("0", 5, "promise_amount"), ("-5", 5, "promise_amount"), ("10.001", 5, "promise_amount"),
    ("10", -1, "promise_date"), ("10", 31, "too_far_ahead"),
])  # fmt: skip
def test_invalid_terms_are_refused_with_a_code(engine: Engine, amount: str, due_in: int,
                                               code: str) -> None:
    acc = f.add_account(engine, as_of=DAY)
    with pytest.raises(PromiseRefused) as refused:
        promise(engine, acc["account_id"], amount, due_in)
    assert refused.value.code == code
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM promise")).scalar() == 0


def test_settling_keeps_partly_keeps_and_breaks(engine: Engine) -> None:
    ids = [f.add_account(engine, as_of=DAY)["account_id"] for _ in range(3)]
    refs = [promise(engine, i, promise_ref=f"R{i}").ref for i in ids]
    pay(engine, refs[0], "100.00")
    pay(engine, refs[1], "40.00")
    assert settle(engine, DAY)["promises_kept"] == 1  # paid in full: kept at once
    assert status(engine, refs[0]) == ("kept", DAY)
    last_paused = DAY + dt.timedelta(days=8)
    assert settle(engine, last_paused) == {"promises_kept": 0, "promises_partly_kept": 0,
                                           "promises_broken": 0}
    after = last_paused + dt.timedelta(days=1)
    assert settle(engine, after) == {"promises_kept": 0, "promises_partly_kept": 1,
                                     "promises_broken": 1}
    assert settle(engine, after)["promises_broken"] == 0  # idempotent
    assert status(engine, refs[1])[0] == "partly_kept" and status(engine, refs[2])[0] == "broken"
    with engine.connect() as conn:
        reasons = [e["reason"] for i in ids for e in history(conn, i)][1:]
    assert reasons == ["paid_in_full", "console", "part_paid_by_grace", "console",
                       "unpaid_by_grace"]


def test_reopen_after_a_reversal(engine: Engine) -> None:
    acc = f.add_account(engine, as_of=DAY)
    made = promise(engine, acc["account_id"])
    pay(engine, made.ref, "100.00")
    settle(engine, DAY)
    pay(engine, made.ref, "0")
    with engine.begin() as conn:
        assert reopen(conn, made.promise_id, "system", "payment_reversed", DAY) == "open"
    pay(engine, made.ref, "100.00")
    settle(engine, DAY + dt.timedelta(days=1))
    pay(engine, made.ref, "0")
    with engine.begin() as conn:
        assert reopen(conn, made.promise_id, "system", "payment_reversed",
                      DAY + dt.timedelta(days=20)) == "broken"  # fmt: skip
    assert status(engine, made.ref) == ("broken", DAY + dt.timedelta(days=20))


def test_max_open_refuses_a_second_open_promise(engine: Engine) -> None:
    acc = f.add_account(engine, as_of=DAY)
    promise(engine, acc["account_id"])
    with pytest.raises(PromiseRefused) as refused:
        promise(engine, acc["account_id"], "50.00", 6)
    assert refused.value.code == "too_many_open"


def test_after_two_broken_promises_a_new_one_does_not_pause(engine: Engine) -> None:
    acc = f.add_account(engine, as_of=DAY)
    day = DAY
    for _ in range(2):
        made = promise(engine, acc["account_id"], due_in=2, day=day)
        assert made.pauses
        day += dt.timedelta(days=6)
        settle(engine, day)
        assert status(engine, made.ref)[0] == "broken"
    third = promise(engine, acc["account_id"], due_in=2, day=day)
    assert (third.pauses, third.reason) == (False, "broken_limit")
    # no_pause_days (60) after the last broken one (the third), a promise pauses again
    settle(engine, day + dt.timedelta(days=6))
    later = promise(engine, acc["account_id"], due_in=2, day=day + dt.timedelta(days=66))
    assert later.pauses


# --- end to end through the CLI ------------------------------------------------------------


@pytest.fixture
def db(app_data: Path) -> Engine:
    return f.database(settings.database_url())


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    assert main(list(argv)) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def plan(capsys: pytest.CaptureFixture[str], day: dt.date, account_ref: str
         ) -> list[dict[str, Any]]:  # fmt: skip
    return [d for d in cli_json(capsys, "plan", "--as-of", str(day), "--json")
            if d["account_id"] == account_ref]  # fmt: skip


def test_a_promise_pauses_the_next_plan_naming_it_then_broken_resumes(
        db: Engine, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    acc = f.add_account(db, as_of=DAY, dpd=20, validation_notice_sent_on=DAY - dt.timedelta(30))
    ref = acc["account_ref"]
    due = DAY + dt.timedelta(days=4)
    [made] = cli_json(capsys, "promises", "add", ref, "--amount", "150.00", "--due-on", str(due),
                      "--as-of", str(DAY), "--actor", "alex")  # fmt: skip
    assert made["status"] == "open" and made["pauses"] is True
    assert made["pause_until"] == str(due + dt.timedelta(days=3))
    # Made today: today's plan stands (facts recorded after its cutoff), tomorrow's pauses.
    assert all(d["verdict"] != "block" for d in plan(capsys, DAY, ref))
    tomorrow = plan(capsys, DAY + dt.timedelta(days=1), ref)
    assert tomorrow and all(d["verdict"] == "block" for d in tomorrow)
    for d in tomorrow:
        assert d["reasons"] == ["core.promise_open"]
        facts = d["evidence"]["core.promise_open"]["facts"]
        assert facts["refs"] == {"promise_open": made["promise_ref"]}
    last = due + dt.timedelta(days=3)
    assert all(d["reasons"] == ["core.promise_open"] for d in plan(capsys, last, ref))
    # Nothing paid by the date plus grace days: broken the day after, and the plan resumes.
    after = plan(capsys, last + dt.timedelta(days=1), ref)
    assert after and all("core.promise_open" not in d["reasons"] for d in after)
    [listed] = cli_json(capsys, "promises", "list", ref, "--json")
    assert (listed["promise_ref"], listed["status"], listed["settled_on"]) == (
        made["promise_ref"], "broken", str(last + dt.timedelta(days=1)))
    assert (listed["amount"], listed["actor"], listed["source"]) == ("150.00", "alex", "console")


def test_a_promise_paid_in_full_is_kept_and_a_part_paid_one_partly_kept(
        db: Engine, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    full = f.add_account(db, as_of=DAY, dpd=20)
    part = f.add_account(db, as_of=DAY, dpd=20)
    refs = {}
    for acc in (full, part):
        [made] = cli_json(capsys, "promises", "add", acc["account_ref"], "--amount", "80",
                          "--due-on", str(DAY + dt.timedelta(days=2)), "--as-of", str(DAY))
        refs[acc["account_ref"]] = made["promise_ref"]
    pay(db, refs[full["account_ref"]], "80.00")
    pay(db, refs[part["account_ref"]], "30.00")
    plan(capsys, DAY + dt.timedelta(days=1), full["account_ref"])
    [kept] = cli_json(capsys, "promises", "list", full["account_ref"], "--json")
    assert (kept["status"], kept["settled_on"]) == ("kept", str(DAY + dt.timedelta(days=1)))
    [still] = cli_json(capsys, "promises", "list", part["account_ref"], "--json")
    assert still["status"] == "open"
    plan(capsys, DAY + dt.timedelta(days=6), part["account_ref"])
    [partly] = cli_json(capsys, "promises", "list", part["account_ref"], "--json")
    assert (partly["status"], partly["paid_amount"]) == ("partly_kept", "30.00")


def test_the_cli_refuses_a_second_open_promise_with_its_code(
        db: Engine, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    acc = f.add_account(db, as_of=DAY)
    args = ["promises", "add", acc["account_ref"], "--due-on", str(DAY + dt.timedelta(days=3)),
            "--as-of", str(DAY)]  # fmt: skip
    assert main([*args, "--amount", "50"]) == 0
    capsys.readouterr()
    assert main([*args, "--amount", "60"]) == 2
    assert "too_many_open" in capsys.readouterr().err
    assert main(["promises", "add", "NOPE", "--amount", "5", "--due-on", str(DAY)]) == 2
    assert "unknown_account" in capsys.readouterr().err
