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
from tests.test_console import auth_manager, ledger  # noqa: F401 (fixtures)

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
    """The promises settler's counts (the arrangements' settler runs after it, with its own)."""
    with engine.begin() as conn:
        counts = settle_accounts(conn, day, ids)
    return {k: v for k, v in counts.items() if k.startswith("promises_")}


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
        changes = [sorted((e["to_state"], e["actor"], e["reason"]) for e in history(conn, i))
                   for i in ids]  # fmt: skip
    made = ("open", "alex", "console")
    assert changes == [sorted([made, ("kept", "system", "paid_in_full")]),
                       sorted([made, ("partly_kept", "system", "part_paid_by_grace")]),
                       sorted([made, ("broken", "system", "unpaid_by_grace")])]  # fmt: skip


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



def test_after_two_broken_promises_a_new_one_is_recorded_but_the_plan_goes_on(
        db: Engine, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    acc = f.add_account(db, as_of=DAY, dpd=20, validation_notice_sent_on=DAY - dt.timedelta(30))
    ref, day = acc["account_ref"], DAY

    def add(day: dt.date) -> dict[str, Any]:
        [made] = cli_json(capsys, "promises", "add", ref, "--amount", "90", "--due-on",
                          str(day + dt.timedelta(days=2)), "--as-of", str(day))  # fmt: skip
        return made

    for _ in range(2):
        assert add(day)["pauses"] is True
        assert {d["reasons"][0] for d in plan(capsys, day + dt.timedelta(days=1), ref)} == {
            "core.promise_open"}
        day += dt.timedelta(days=6)  # the day after its date plus 3 grace days: broken
        assert all("core.promise_open" not in d["reasons"] for d in plan(capsys, day, ref))
    third = add(day)
    assert (third["pauses"], third["reason"]) == (False, "broken_limit")
    tomorrow = plan(capsys, day + dt.timedelta(days=1), ref)
    assert tomorrow and all("core.promise_open" not in d["reasons"] for d in tomorrow)
    listed = cli_json(capsys, "promises", "list", ref, "--json")
    assert [(p["status"], p["pauses"]) for p in listed] == [
        ("open", False), ("broken", True), ("broken", True)]

# --- an agent's disposition ------------------------------------------------------------------


def test_a_promise_to_pay_disposition_records_the_promise_and_a_refusal_is_a_422(
        engine: Engine, url: str, tmp_path: Path) -> None:  # fmt: skip
    from outreach.dispatch.dispatcher import dispatch_range
    from outreach.media.calls.queue import claim_next
    from outreach.planning.kinds import build_channel
    from outreach.planning.ladder import load_ladder
    from outreach.planning.planner import iter_plan
    from outreach.services.calls import DispositionError, record_disposition
    from outreach.settings import PROJECT_ROOT

    ladder = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")
    at = dt.datetime(2026, 11, 23, 14, 0)  # 09:00 in New York
    accounts = [f.add_account(engine, as_of=DAY, dpd=20,
                              validation_notice_sent_on=DAY - dt.timedelta(days=21))
                for _ in range(2)]  # fmt: skip
    for _ in iter_plan(engine, ladder, DAY, 1000):
        pass
    channel = build_channel("call", {"backend": "agent_queue"},
                            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}", state_dir=tmp_path,
                            database_url=url)  # fmt: skip
    dispatch_range(engine, DAY, "call", 0, 10**9, clock="logical", channel_impl=channel)
    tasks = {t.account_id: t for t in (claim_next(engine, "agent-1", at, max_open=5) for _ in range(2)) if t}
    first, second = (tasks[a["account_id"]] for a in accounts)

    with pytest.raises(DispositionError) as refused:  # beyond promises.max_days_ahead (30)
        record_disposition(engine, second.key, "agent-1", "promise_to_pay", at,
                           promise_amount=Decimal("20.00"), promise_date=DAY + dt.timedelta(40))
    assert (refused.value.status, refused.value.code) == (422, "too_far_ahead")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM call_task WHERE key = :k"),
                            {"k": second.key}).scalar() == "claimed"  # fmt: skip

    done = record_disposition(engine, first.key, "agent-1", "promise_to_pay", at,
                              promise_amount=Decimal("75.50"), promise_date=DAY + dt.timedelta(5))
    assert done["status"] == "recorded" and done["promise"] is True
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT promise_ref, ledger_key, source, actor, status, pause_until, made_at "
            "FROM promise")).one()  # fmt: skip
        events = history(conn, accounts[0]["account_id"])
    assert row[:5] == (f"call-{first.key}", first.key, "agent", "agent-1", "open")
    assert str(row[5]) == str(DAY + dt.timedelta(days=8)) and str(row[6]).startswith("2026-11-23 14")
    assert [(e["subject_ref"], e["to_state"], e["actor"], e["reason"]) for e in events] == [
        (f"call-{first.key}", "open", "agent-1", "agent")]
    # The next day's plan pauses the account, naming the promise.
    tomorrow = DAY + dt.timedelta(days=1)
    for _ in iter_plan(engine, ladder, tomorrow, 1000):
        pass
    held = [c for c in f.contacts(engine, account_id=accounts[0]["account_id"])
            if c["plan_date"] == tomorrow]  # fmt: skip
    assert held and {(c["state"], c["reasons"]) for c in held} == {("suppressed",
                                                                    "core.promise_open")}


# --- the import record ------------------------------------------------------------------------


def test_imported_promises_are_checked_row_by_row_and_a_reimport_changes_nothing(
        db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    a, b, c = (f.add_account(db, as_of=DAY)["account_ref"] for _ in range(3))

    def row(ref: str, account: str, **kw: str) -> str:
        return json.dumps({"record": "promise", "account_ref": account, "promise_ref": ref,
                           "amount": "120.00", "due_on": "2026-11-28",
                           "made_at": "2026-11-22T15:30:00-05:00", **kw})  # fmt: skip

    lines = [
        row("LP-1", a),
        row("LP-2", b, source="agent"),
        row("LP-3", c, made_at="2026-11-22T15:30:00"),  # no offset
        row("LP-4", c, amount="-3"),
        row("LP-5", "NOPE"),
        row("LP-6", a, due_on="2026-11-29"),  # a's second open promise
        row("LP-7", c, due_on="2027-01-15"),  # beyond max_days_ahead
        row("LP-1", c),  # another account under a known ref
    ]
    path = tmp_path / "promises.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rejects_path = tmp_path / "rejects.jsonl"
    assert main(["import", str(path), "--rejects", str(rejects_path), "--allow-rejects"]) == 0
    assert "2 inserted" in capsys.readouterr().out
    got = [json.loads(r) for r in rejects_path.read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in got] == [
        (3, "made_at"), (4, "amount"), (5, "account_ref"), (6, "account_ref"), (7, "due_on"),
        (8, "promise_ref")]
    assert "UTC offset" in got[0]["reason"] and "max_open" in got[3]["reason"]
    listed = cli_json(capsys, "promises", "list", b, "--json")
    assert [(p["promise_ref"], p["source"], p["actor"], p["made_at"], p["recorded_at"])
            for p in listed] == [("LP-2", "agent", "import", "2026-11-22 20:30:00",
                                  "2026-11-22 20:30:00")]  # fmt: skip
    with db.connect() as conn:
        before = [tuple(r) for r in conn.execute(text("SELECT * FROM promise ORDER BY id"))]
        events = conn.execute(text("SELECT count(*) FROM resolution_event")).scalar()
    assert len(before) == 2 and events == 2
    # The same file again: every good row unchanged, nothing written.
    path.write_text("\n".join(lines[:2]) + "\n")
    assert main(["import", str(path)]) == 0
    assert "0 inserted, 0 updated, 2 unchanged" in capsys.readouterr().out
    with db.connect() as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT * FROM promise ORDER BY id"))] == before
        assert conn.execute(text("SELECT count(*) FROM resolution_event")).scalar() == 2
    # Known since made_at: the plan of 11-23 is paused by LP-1 already.
    [paused, *_] = plan(capsys, DAY, a)
    assert paused["reasons"] == ["core.promise_open"]
    assert paused["evidence"]["core.promise_open"]["facts"]["refs"] == {"promise_open": "LP-1"}


# --- the console's account page ---------------------------------------------------------------


def test_the_account_page_records_a_promise_for_the_agent_roles_only(
        request: pytest.FixtureRequest) -> None:  # fmt: skip
    from tests.test_console import EVIL, SAME, cookie_client, form_token

    # test_console's fixtures: the real Airflow auth manager, one account planned for DAY.
    manager, planned = (request.getfixturevalue(n) for n in ("auth_manager", "ledger"))

    engine, ref = planned["engine"], planned["account"]["account_ref"]
    page = f"/timeline?account_ref={ref}"
    form = {"account_ref": ref, "amount": "45.00",
            "due_on": str(DAY + dt.timedelta(days=7))}  # fmt: skip

    def stored() -> list[tuple[Any, ...]]:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT promise_ref, amount, due_on, source, actor, status FROM promise"))]

    viewer = cookie_client(manager, planned, "vic", "VIEWER")
    assert "Record a promise" not in viewer.get(page).text
    token = form_token(viewer, "/ladder")  # no promise form for a viewer
    refused = viewer.post("/timeline/promise", data={**form, "csrf_token": token},
                          headers={"Origin": SAME}, follow_redirects=False)  # fmt: skip
    assert refused.status_code == 403 and stored() == []

    agent = cookie_client(manager, planned, "oli", "OP")
    token = form_token(agent, page)
    assert 'action="/timeline/promise"' in agent.get(page).text
    cross = agent.post("/timeline/promise", data={**form, "csrf_token": token},
                       headers={"Origin": EVIL}, follow_redirects=False)  # fmt: skip
    assert cross.status_code == 403 and stored() == []
    done = agent.post("/timeline/promise", data={**form, "csrf_token": token},
                      headers={"Origin": SAME}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    [(promise_ref, amount, due_on, source, actor, status)] = stored()
    assert done.headers["location"] == f"/timeline?account_ref={ref}&promise={promise_ref}"
    assert (Decimal(str(amount)), str(due_on), source, actor, status) == (
        Decimal("45.00"), form["due_on"], "console", "oli", "open")
    shown = agent.get(done.headers["location"]).text
    assert f"Promise {promise_ref} recorded" in shown and shown.count(promise_ref) >= 2
    # A second open promise: refused by promises.max_open, the page says why.
    again = agent.post("/timeline/promise", data={**form, "amount": "10", "csrf_token": token},
                       headers={"Origin": SAME}, follow_redirects=False)  # fmt: skip
    assert again.headers["location"].endswith("&refused=too_many_open") and len(stored()) == 1
    missing = agent.post("/timeline/promise", data={**form, "account_ref": "NOPE",
                                                    "csrf_token": token},
                         headers={"Origin": SAME}, follow_redirects=False)  # fmt: skip
    assert missing.status_code == 404
