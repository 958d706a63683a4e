"""Repayment arrangements end to end: offers through the CLI, acceptance and a second person's
approval, the day's settling of instalments (kept, missed, broken, completed), re-aging on and
off, the import records, the day's arrangement file, explain and the plan's pauses."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import airflow.sdk  # noqa: F401 - see below
import pytest
from sqlalchemy import select, text, update

from outreach import settings
from outreach.entry.cli import main
from outreach.kernel import clock
from outreach.resolution import arrangements as arr
from outreach.resolution.events import history
from outreach.resolution.settle import settle_accounts
from outreach.services import daily
from outreach.storage.models import Account, Arrangement, ArrangementInstalment
from tests import factories

# Importing airflow.sdk (the drop locations of the day's file) gives the root logger a handler
# on the stdout of the moment: imported here, at collection, it is never a test's captured
# stream, which is closed after the test and would break every later test's logging.

AS_OF = dt.date(2026, 12, 7)
ARR = Arrangement.__table__
INST = ArrangementInstalment.__table__


def pay_instalments(engine: Any, ref: str, seqs: list[int], paid_on: dt.date) -> None:
    """What the payments' allocation does to an instalment paid in full (outreach.resolution.
    payments): its paid amount and the day."""
    with engine.begin() as conn:
        plan_id = conn.execute(select(ARR.c.id).where(ARR.c.arrangement_ref == ref)).scalar_one()
        conn.execute(update(INST).where(INST.c.arrangement_id == plan_id, INST.c.seq.in_(seqs))
                     .values(paid_amount=INST.c.amount, paid_on=paid_on))  # fmt: skip


def plan_row(engine: Any, ref: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(ARR).where(ARR.c.arrangement_ref == ref)).one()


def instalment_states(engine: Any, ref: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(
            select(INST.c.state).join(ARR, ARR.c.id == INST.c.arrangement_id)
            .where(ARR.c.arrangement_ref == ref).order_by(INST.c.seq)
        ).scalars())  # fmt: skip


def settle(engine: Any, day: dt.date, account_id: int) -> dict[str, int]:
    with engine.begin() as conn:
        return settle_accounts(conn, day, [account_id])


@pytest.fixture
def account(engine: Any) -> dict[str, Any]:
    return factories.add_account(engine, as_of=AS_OF, dpd=40, balance="1200.00",
                                 past_due="300.00")  # fmt: skip


def accept(engine: Any, account: dict[str, Any], term: int, actor: str = "agent.ann") -> str:
    with engine.begin() as conn:
        offer = next(o for o in arr.offers_for_account(conn, account["account_id"], AS_OF)
                     if o.kind == "instalment" and o.term_months == term)  # fmt: skip
        return arr.accept_offer(conn, account_id=account["account_id"], offer=offer, via="agent",
                                actor=actor, day=AS_OF)  # fmt: skip


def test_an_accepted_plan_is_active_with_its_schedule(engine: Any, account: dict[str, Any]) -> None:
    ref = accept(engine, account, 3)
    row = plan_row(engine, ref)
    assert (row.state, row.kind, row.total, row.term_months) == ("active", "instalment",
                                                                 Decimal("1200.00"), 3)  # fmt: skip
    assert row.first_due_on == AS_OF + dt.timedelta(days=7)
    assert instalment_states(engine, ref) == ["due", "due", "due"]
    with engine.connect() as conn:
        events = history(conn, account["account_id"])
    assert [(e["subject"], e["to_state"], e["actor"]) for e in events] == [
        ("arrangement", "active", "agent.ann")]


def test_a_new_plan_cancels_the_old_one_naming_it(engine: Any, account: dict[str, Any]) -> None:
    old = accept(engine, account, 3)
    new = accept(engine, account, 6)
    assert plan_row(engine, old).state == "cancelled"
    assert plan_row(engine, new).state == "active"
    with engine.connect() as conn:
        reasons = [e["reason"] for e in history(conn, account["account_id"])
                   if e["subject_ref"] == old and e["to_state"] == "cancelled"]  # fmt: skip
    assert reasons == [f"superseded by {new}"]


def test_missed_instalments_break_the_plan(engine: Any, account: dict[str, Any]) -> None:
    ref = accept(engine, account, 3)
    first = AS_OF + dt.timedelta(days=7)
    # The grace period (5 days) has not passed: nothing missed yet.
    settle(engine, first + dt.timedelta(days=5), account["account_id"])
    assert plan_row(engine, ref).kept
    counts = settle(engine, first + dt.timedelta(days=6), account["account_id"])
    assert counts["arrangements_missed"] == 1
    row = plan_row(engine, ref)
    assert (row.state, row.kept, row.missed) == ("active", False, 1)
    # A rerun of the day changes nothing more.
    assert settle(engine, first + dt.timedelta(days=6), account["account_id"])[
        "arrangements_missed"] == 0
    assert plan_row(engine, ref).missed == 1
    settle(engine, dt.date(2027, 1, 20), account["account_id"])
    row = plan_row(engine, ref)
    assert (row.state, row.missed, row.ended_on) == ("broken", 2, dt.date(2027, 1, 20))
    assert instalment_states(engine, ref) == ["missed", "missed", "due"]


def test_paying_the_missed_instalment_makes_the_plan_kept_again(
    engine: Any, account: dict[str, Any]
) -> None:
    ref = accept(engine, account, 3)
    settle(engine, dt.date(2026, 12, 20), account["account_id"])
    assert not plan_row(engine, ref).kept
    pay_instalments(engine, ref, [1], dt.date(2026, 12, 21))
    settle(engine, dt.date(2026, 12, 21), account["account_id"])
    row = plan_row(engine, ref)
    assert (row.state, row.kept, row.missed, row.kept_streak) == ("active", True, 1, 0)


def test_all_instalments_paid_completes_the_plan(engine: Any, account: dict[str, Any]) -> None:
    ref = accept(engine, account, 3)
    pay_instalments(engine, ref, [1, 2, 3], AS_OF)
    counts = settle(engine, AS_OF, account["account_id"])
    assert counts["arrangements_paid"] == 3 and counts["arrangements_completed"] == 1
    row = plan_row(engine, ref)
    assert (row.state, row.ended_on, row.kept_streak) == ("completed", AS_OF, 3)


def test_approval_needs_a_second_person(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    acct = factories.add_account(engine, as_of=AS_OF, dpd=200, balance="5000.00",
                                 past_due="900.00")  # fmt: skip
    with engine.begin() as conn:
        offer = next(o for o in arr.offers_for_account(conn, acct["account_id"], AS_OF)
                     if o.kind == "settlement")  # fmt: skip
        assert (offer.band, offer.total, offer.needs_approval) == ("late_settlement",
                                                                   Decimal("3750.00"), True)  # fmt: skip
        ref = arr.accept_offer(conn, account_id=acct["account_id"], offer=offer, via="agent",
                               actor="agent.ann", day=AS_OF)  # fmt: skip
    assert plan_row(engine, ref).state == "pending_approval"
    with engine.begin() as conn, pytest.raises(arr.ArrangementRefused) as refused:
        arr.approve(conn, ref, "agent.ann", AS_OF)
    assert refused.value.code == "same_person"
    with engine.begin() as conn:
        arr.approve(conn, ref, "supervisor.bo", AS_OF)
    row = plan_row(engine, ref)
    assert (row.state, row.approved_by) == ("active", "supervisor.bo")


# --- end to end: the CLI, the daily settle step, the plan -----------------------------------------


@pytest.fixture
def db(app_data: Path) -> Any:
    return factories.database(settings.database_url())


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def plan(capsys: pytest.CaptureFixture[str], day: dt.date, account_ref: str) -> list[dict[str, Any]]:
    code, out, _ = cli(capsys, "plan", "--as-of", str(day), "--json")
    assert code == 0
    # Only the JSON lines: a log line (the migration on first use) may share stdout.
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [d for d in lines if d["account_id"] == account_ref]


def test_offers_json_prints_one_offer_a_line(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    a = factories.add_account(db, as_of=AS_OF, dpd=120, balance="1000.00", past_due="400.00")
    code, out, _ = cli(capsys, "arrangements", "offers", a["account_ref"], "--as-of", str(AS_OF),
                       "--json")  # fmt: skip
    assert code == 0
    offers = [json.loads(line) for line in out.splitlines()]
    assert [(o["kind"], o["term_months"], o["instalment_amount"], o["total"]) for o in offers] == [
        ("instalment", 3, "333.33", "1000.00"), ("instalment", 6, "166.66", "1000.00"),
        ("instalment", 12, "83.33", "1000.00"), ("instalment", 24, "41.66", "1000.00"),
        ("settlement", 1, "900.00", "900.00"),
    ]  # fmt: skip
    assert offers[0]["first_due_on"] == "2026-12-14" and offers[0]["needs_approval"] is False
    assert (offers[-1]["band"], offers[-1]["discount"], offers[-1]["first_due_on"]) == (
        "early_settlement", "0.1", "2027-01-06")
    code, out, _ = cli(capsys, "arrangements", "offers", a["account_ref"], "--as-of", str(AS_OF))
    assert code == 0 and "early_settlement" in out.splitlines()[-1]


def test_a_kept_plan_pauses_collection_naming_it(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    a = factories.add_account(db, as_of=AS_OF, dpd=40, balance="1200.00", past_due="300.00")
    before = plan(capsys, AS_OF, a["account_ref"])
    assert before and all("core.payment_plan_kept" not in d["reasons"] for d in before)
    code, out, _ = cli(capsys, "arrangements", "accept", a["account_ref"], "--kind",
                       "instalment", "--term", "3", "--actor", "agent.ann", "--as-of", str(AS_OF))  # fmt: skip
    assert code == 0
    ref = out.strip()
    # The first instalment is paid (the payments' allocation), the day settles, the plan pauses.
    pay_instalments(db, ref, [1], dt.date(2026, 12, 14))
    day = dt.date(2026, 12, 21)
    settled = daily.settle(day)
    assert settled["arrangements_paid"] == 1 and settled["arrangements_missed"] == 0
    steps = plan(capsys, day, a["account_ref"])
    assert steps
    for step in steps:
        assert step["verdict"] == "block" and step["reasons"] == ["core.payment_plan_kept"]
        facts = step["evidence"]["core.payment_plan_kept"]["facts"]
        assert facts["refs"] == {"instalment_plan": ref}
    assert instalment_states(db, ref) == ["paid", "due", "due"]


def test_a_missed_instalment_resumes_collection_and_two_break_the_plan(
    db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    a = factories.add_account(db, as_of=AS_OF, dpd=40, balance="1200.00", past_due="300.00")
    _, out, _ = cli(capsys, "arrangements", "accept", a["account_ref"], "--offer", "0",
                    "--actor", "agent.ann", "--as-of", str(AS_OF))  # fmt: skip
    ref = out.strip()
    kept_day = dt.date(2026, 12, 19)  # the first instalment's date plus its 5 grace days
    daily.settle(kept_day)
    assert all(d["reasons"] == ["core.payment_plan_kept"] for d in plan(capsys, kept_day,
                                                                        a["account_ref"]))  # fmt: skip
    missed_day = dt.date(2026, 12, 20)
    assert daily.settle(missed_day)["arrangements_missed"] == 1
    steps = plan(capsys, missed_day, a["account_ref"])
    assert steps and all("core.payment_plan_kept" not in d["reasons"] for d in steps)
    assert any(d["verdict"] == "send" for d in steps)
    row = plan_row(db, ref)
    assert (row.state, row.kept, row.missed) == ("active", False, 1)
    broken_day = dt.date(2027, 1, 20)
    assert daily.settle(broken_day)["arrangements_broken"] == 1
    assert plan_row(db, ref).state == "broken"
    steps = plan(capsys, broken_day, a["account_ref"])
    assert steps and all("core.payment_plan_kept" not in d["reasons"] for d in steps)
    code, out, _ = cli(capsys, "explain", a["account_ref"], "--as-of", str(broken_day), "--json")
    explained = json.loads(out[out.index("\n{") + 1:] if not out.startswith("{") else out)[
        "arrangement"]
    assert (explained["ref"], explained["state"], explained["missed"]) == (ref, "broken", 2)
    assert [i["state"] for i in explained["schedule"]] == ["missed", "missed", "due"]
    assert [e["to_state"] for e in explained["events"] if e["subject"] == "arrangement"] == [
        "active", "active", "broken"]
    code, out, _ = cli(capsys, "explain", a["account_ref"], "--as-of", str(broken_day))
    assert code == 0
    assert f"arrangement {ref}: instalment 3m, total 1200.00, broken, missed 2" in out
    assert "#1 due 2026-12-14 amount 400.00 paid 0.00 missed" in out
    assert f"arrangement {ref}: active -> broken by system (2 instalments missed" in out


def test_a_settlement_paid_in_full_closes_the_account_for_collection(
    db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    a = factories.add_account(db, as_of=AS_OF, dpd=120, balance="1000.00", past_due="400.00")
    _, out, _ = cli(capsys, "arrangements", "accept", a["account_ref"], "--kind", "settlement",
                    "--term", "1", "--actor", "agent.ann", "--as-of", str(AS_OF))  # fmt: skip
    ref = out.strip()
    row = plan_row(db, ref)
    assert (row.state, row.total, row.band) == ("active", Decimal("900.00"), "early_settlement")
    pay_instalments(db, ref, [1], dt.date(2026, 12, 10))
    day = dt.date(2026, 12, 11)
    assert daily.settle(day)["arrangements_completed"] == 1
    steps = plan(capsys, day, a["account_ref"])
    assert steps and all(d["verdict"] == "block" for d in steps)
    assert all(d["reasons"] == ["core.settlement_completed"] for d in steps)


def test_a_settlement_band_needing_approval_waits_for_a_second_person(
    db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    a = factories.add_account(db, as_of=AS_OF, dpd=200, balance="5000.00", past_due="900.00")
    _, out, _ = cli(capsys, "arrangements", "accept", a["account_ref"], "--kind", "settlement",
                    "--term", "1", "--band", "late_settlement", "--actor", "agent.ann",
                    "--as-of", str(AS_OF))  # fmt: skip
    ref = out.strip()
    assert plan_row(db, ref).state == "pending_approval"
    # Pending: collection goes on.
    assert all("core.payment_plan_kept" not in d["reasons"] for d in plan(capsys, AS_OF,
                                                                           a["account_ref"]))  # fmt: skip
    code, _, err = cli(capsys, "arrangements", "approve", ref, "--approver", "agent.ann",
                       "--as-of", str(AS_OF))  # fmt: skip
    assert code == 2 and "second person" in err
    assert plan_row(db, ref).state == "pending_approval"
    code, _, _ = cli(capsys, "arrangements", "approve", ref, "--approver", "supervisor.bo",
                     "--as-of", str(AS_OF))  # fmt: skip
    assert code == 0
    row = plan_row(db, ref)
    assert (row.state, row.approved_by, row.accepted_by) == ("active", "supervisor.bo",
                                                             "agent.ann")  # fmt: skip


def test_a_terms_the_calculator_does_not_allow_are_refused(
    db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    a = factories.add_account(db, as_of=AS_OF, dpd=40, balance="1200.00", past_due="300.00")
    code, _, err = cli(capsys, "arrangements", "accept", a["account_ref"], "--kind",
                       "instalment", "--term", "60", "--actor", "agent.ann", "--as-of", str(AS_OF))  # fmt: skip
    assert code == 2 and "not among the account's offers" in err


@pytest.mark.parametrize("reage", [None, 2])
def test_re_aging_after_kept_instalments_only_when_configured(
    db: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    reage: int | None,
) -> None:  # fmt: skip
    text = (Path(settings.config_dir()) / "arrangements.yaml").read_text()
    if reage is not None:
        text = text.replace("  # reage_after_kept: 3  #", f"  reage_after_kept: {reage}  #")
    policy = tmp_path / "arrangements.yaml"
    policy.write_text(text)
    monkeypatch.setenv("OUTREACH_ARRANGEMENTS", str(policy))
    a = factories.add_account(db, as_of=AS_OF, dpd=40, balance="1200.00", past_due="300.00")
    _, out, _ = cli(capsys, "arrangements", "accept", a["account_ref"], "--offer", "1",
                    "--actor", "agent.ann", "--as-of", str(AS_OF))  # fmt: skip
    ref = out.strip()
    pay_instalments(db, ref, [1], dt.date(2026, 12, 14))
    day = dt.date(2027, 1, 15)
    pay_instalments(db, ref, [2], dt.date(2027, 1, 14))
    counts = daily.settle(day)
    with db.connect() as conn:
        account = conn.execute(select(Account.__table__).where(
            Account.__table__.c.id == a["account_id"])).one()  # fmt: skip
    row = plan_row(db, ref)
    assert row.kept_streak == 2
    if reage is None:
        assert counts["arrangements_reaged"] == 0 and row.reaged_on is None
        assert account.amount_past_due == Decimal("300.00") and account.due_date is not None
    else:
        assert counts["arrangements_reaged"] == 1 and row.reaged_on == day
        assert account.amount_past_due == Decimal(0) and account.due_date is None
        with db.connect() as conn:
            reasons = [e["reason"] for e in history(conn, a["account_id"])]
        assert any(r.startswith("re-aged: 2 instalments kept in a row") for r in reasons)
        assert daily.settle(day)["arrangements_reaged"] == 0  # once


def test_the_days_arrangement_file(db: Any, capsys: pytest.CaptureFixture[str],
                                   app_data: Path) -> None:  # fmt: skip
    kept = factories.add_account(db, as_of=AS_OF, dpd=40, balance="1200.00", past_due="300.00")
    lapsing = factories.add_account(db, as_of=AS_OF, dpd=40, balance="600.00", past_due="300.00")
    with clock.use(dt.datetime(2026, 12, 7, 15)):
        for acct in (kept, lapsing):
            cli(capsys, "arrangements", "accept", acct["account_ref"], "--offer", "0",
                "--actor", "agent.ann", "--as-of", str(AS_OF))  # fmt: skip
    day = dt.date(2027, 1, 20)
    with clock.use(dt.datetime(2027, 1, 20, 1)):
        daily.settle(day)  # both plans miss two instalments: broken
    with clock.use(dt.datetime(2027, 1, 21, 1)):
        counts = daily.settle(dt.date(2027, 1, 21))  # writes the file of the 20th
    assert counts["arrangement_file_rows"] == 2 and counts["arrangement_file_broken"] == 2
    code, out, _ = cli(capsys, "arrangements", "export", "--as-of", str(AS_OF))
    assert code == 0 and json.loads(out[out.index("{"):])["arrangement_file_new"] == 2
    path = app_data / "drop" / "arrangements" / "2026-12-07" / "arrangements-2026-12-07.csv"
    first = path.read_bytes()
    lines = first.decode().splitlines()
    assert lines[0].startswith("day,arrangement_ref,account_ref,change,state,kind,total")
    assert [line.split(",")[3:5] for line in lines[1:]] == [["new", "active"], ["new", "active"]]
    broken = (app_data / "drop" / "arrangements" / "2027-01-20"
              / "arrangements-2027-01-20.csv").read_text().splitlines()  # fmt: skip
    assert [line.split(",")[3:5] for line in broken[1:]] == [["broken", "broken"]] * 2
    assert [line.split(",")[11] for line in broken[1:]] == ["2", "2"]
    # A rerun writes the same bytes and no second document row.
    with clock.use(dt.datetime(2027, 1, 22, 9)):
        code, out, _ = cli(capsys, "arrangements", "export", "--as-of", str(AS_OF))
    assert json.loads(out[out.index("{"):])["arrangement_file_written"] == 0
    assert path.read_bytes() == first
    with db.connect() as conn:
        docs = conn.execute(text("SELECT batch_date, recipient FROM document "
                                 "WHERE kind = 'arrangement_file' ORDER BY batch_date")).all()  # fmt: skip
    # The settle of the 20th wrote the quiet 19th: a header alone.
    assert [(str(d[0]), d[1]) for d in docs] == [
        ("2026-12-07", "system_of_record"), ("2027-01-19", "system_of_record"),
        ("2027-01-20", "system_of_record")]


def test_import_records_arrangement_and_means(db: Any, capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:  # fmt: skip
    a = factories.add_account(db, as_of=AS_OF, dpd=40, balance="1200.00", past_due="300.00")
    b = factories.add_account(db, as_of=AS_OF, dpd=40, balance="800.00", past_due="300.00")
    ref = a["account_ref"]
    rows = [
        {"record": "arrangement", "account_ref": ref, "arrangement_ref": "SOR-1",
         "kind": "instalment", "total": "1000.00", "term_months": "3",
         "first_due_on": "2026-12-15", "accepted_at": "2026-12-01T10:00:00-05:00"},
        {"record": "means", "account_ref": ref, "monthly_income": "2600.00",
         "monthly_expenses": "2000.00", "stated_on": "2026-12-01"},
        # Rejects: each with its line, field and reason.
        {"record": "arrangement", "account_ref": ref, "arrangement_ref": "SOR-2",
         "kind": "lease", "total": "10.00", "term_months": "3", "first_due_on": "2026-12-15",
         "accepted_at": "2026-12-01T10:00:00Z"},
        {"record": "arrangement", "account_ref": ref, "arrangement_ref": "SOR-3",
         "kind": "instalment", "total": "10.00", "term_months": "0",
         "first_due_on": "2026-12-15", "accepted_at": "2026-12-01T10:00:00Z"},
        {"record": "arrangement", "account_ref": ref, "arrangement_ref": "SOR-4",
         "kind": "instalment", "total": "10.00", "term_months": "3",
         "first_due_on": "2026-12-15", "accepted_at": "2026-12-01T10:00:00"},
        {"record": "arrangement", "account_ref": b["account_ref"], "arrangement_ref": "SOR-1",
         "kind": "instalment", "total": "1000.00", "term_months": "3",
         "first_due_on": "2026-12-15", "accepted_at": "2026-12-01T10:00:00Z"},
        {"record": "means", "account_ref": "NOPE", "monthly_income": "1.00",
         "monthly_expenses": "1.00", "stated_on": "2026-12-01"},
    ]  # fmt: skip
    path = tmp_path / "resolution.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rejects = tmp_path / "rejects.jsonl"
    code, _, _ = cli(capsys, "import", str(path), "--rejects", str(rejects))
    assert code == 3
    found = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in found] == [
        (3, "kind"), (4, "term_months"), (5, "accepted_at"), (6, "account_ref"),
        (7, "account_ref")]  # fmt: skip
    assert "another account" in found[3]["reason"]
    row = plan_row(db, "SOR-1")
    assert (row.state, row.term_months, row.total, row.accepted_via) == (
        "active", 3, Decimal("1000.00"), "import")
    assert row.accepted_at == dt.datetime(2026, 12, 1, 15, 0)
    with db.connect() as conn:
        amounts = conn.execute(select(INST.c.amount).where(INST.c.arrangement_id == row.id)
                               .order_by(INST.c.seq)).scalars().all()  # fmt: skip
        means = arr.latest_means(conn, a["account_id"], AS_OF)
    assert amounts == [Decimal("333.33"), Decimal("333.33"), Decimal("333.34")]
    assert means is not None and means.disposable == Decimal("600.00")
    # The same file again changes nothing.
    code, out, _ = cli(capsys, "import", str(path), "--rejects", str(rejects))
    assert code == 3 and "0 inserted, 0 updated, 2 unchanged" in out
    # The system of record cancels it: the state moves on, with an event.
    rows[0]["state"] = "cancelled"
    path.write_text(json.dumps(rows[0]) + "\n")
    code, out, _ = cli(capsys, "import", str(path))
    assert code == 0 and "1 updated" in out
    assert plan_row(db, "SOR-1").state == "cancelled"
    with db.connect() as conn:
        events = [(e["to_state"], e["actor"]) for e in history(conn, a["account_id"])
                  if e["subject"] == "arrangement"]  # fmt: skip
    assert events == [("active", "import"), ("cancelled", "import")]


def test_an_offer_made_is_accepted_by_its_ref_or_expires(db: Any,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    a = factories.add_account(db, as_of=AS_OF, dpd=40, balance="1200.00", past_due="300.00")
    with clock.use(dt.datetime(2026, 12, 7, 15)):
        code, out, _ = cli(capsys, "arrangements", "offer", a["account_ref"], "--offer", "1",
                           "--via", "letter", "--actor", "system", "--as-of", str(AS_OF))  # fmt: skip
        offered = out.strip()
        _, out, _ = cli(capsys, "arrangements", "offer", a["account_ref"], "--offer", "0",
                        "--via", "sms", "--actor", "system", "--as-of", str(AS_OF))  # fmt: skip
        accepted_later = out.strip()
    assert code == 0 and plan_row(db, offered).state == "offered"
    assert plan_row(db, offered).offered_via == "letter"
    # Accepting the second by its ref keeps its ref and schedule.
    with db.begin() as conn:
        offer = arr.offers_for_account(conn, a["account_id"], AS_OF)[0]
        ref = arr.accept_offer(conn, account_id=a["account_id"], offer=offer, via="self_service",
                               actor="consumer", day=AS_OF, arrangement_ref=accepted_later)  # fmt: skip
    assert ref == accepted_later and plan_row(db, ref).state == "active"
    # ... and the other offer still open is cancelled, naming it.
    assert plan_row(db, offered).state == "cancelled"
    other = factories.add_account(db, as_of=AS_OF, dpd=40, balance="1200.00", past_due="300.00")
    with clock.use(dt.datetime(2026, 12, 7, 15)):
        _, out, _ = cli(capsys, "arrangements", "offer", other["account_ref"], "--offer", "0",
                        "--via", "email", "--actor", "system", "--as-of", str(AS_OF))  # fmt: skip
    stale = out.strip()
    assert settle(db, dt.date(2026, 12, 21), other["account_id"])["arrangements_expired"] == 0
    assert settle(db, dt.date(2026, 12, 22), other["account_id"])["arrangements_expired"] == 1
    row = plan_row(db, stale)
    assert (row.state, row.ended_on) == ("cancelled", dt.date(2026, 12, 22))


def test_stated_means_size_the_offers(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    a = factories.add_account(db, as_of=AS_OF, dpd=40, balance="3000.00", past_due="300.00")
    code, out, _ = cli(capsys, "arrangements", "means", a["account_ref"], "--income", "2600",
                       "--expenses", "2000", "--actor", "agent.ann", "--as-of", str(AS_OF),
                       "--json")  # fmt: skip
    assert code == 0
    offers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    # Half of the 600 left each month: 250 over 12 months fits, 500 over 6 does not.
    assert [(o["term_months"], o["affordable"]) for o in offers if o["kind"] == "instalment"] == [
        (12, True), (24, True)]
    with db.connect() as conn:
        events = [e for e in history(conn, a["account_id"]) if e["subject"] == "means"]
    assert [(e["to_state"], e["actor"], e["reason"]) for e in events] == [
        ("stated", "agent.ann", "stated via agent")]  # the amounts are not in the event
