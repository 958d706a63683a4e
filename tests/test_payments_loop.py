"""Payments in the resolution loop: posted once, allocated oldest due first across promises and
instalments, reversed by taking back what they paid; days past due move with them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from outreach import settings
from outreach.entry.cli import main
from outreach.kernel.clock import utcnow
from outreach.kernel.facts import AccountRecord, load_accounts, payments_move_due_date
from outreach.portfolio.importer import import_file
from outreach.resolution.events import history
from outreach.resolution.payments import (
    PaymentConflict,
    PaymentNotFound,
    allocate,
    payment_ids,
    post_payment,
    reverse_payment,
)
from outreach.resolution.settle import settle_accounts
from outreach.storage.models import (
    Account,
    Arrangement,
    ArrangementInstalment,
    Payment,
    PaymentAllocation,
    Promise,
    ResolutionEvent,
)
from tests.factories import add_account, contacts, database
from tests.test_import import account as imported_account
from tests.test_import import payment as imported_payment
from tests.test_import import write
from tests.test_webhooks_payments import Server, serve

DAY = dt.date(2026, 12, 7)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return database(f"sqlite:///{tmp_path / 'app.db'}")


def add_promise(engine: Engine, account_id: int, ref: str, amount: str, due_on: dt.date,
                status: str = "open", paid: str = "0",
                made: dt.datetime | None = None) -> int:  # fmt: skip
    with engine.begin() as conn:
        return int(conn.execute(insert(Promise).values(
            account_id=account_id, promise_ref=ref, amount=Decimal(amount), due_on=due_on,
            recorded_at=made or utcnow(), source="agent", actor="agent1", status=status, pauses=True,
            pause_until=due_on + dt.timedelta(days=3), paid_amount=Decimal(paid),
        )).inserted_primary_key[0])  # fmt: skip


def add_plan(engine: Engine, account_id: int, ref: str, dues: list[tuple[dt.date, str]],
             state: str = "active") -> int:  # fmt: skip
    total = sum(Decimal(a) for _, a in dues)
    with engine.begin() as conn:
        arrangement_id = int(conn.execute(insert(Arrangement).values(
            arrangement_ref=ref, account_id=account_id, kind="instalment", state=state,
            total=total, term_months=len(dues), instalment_amount=Decimal(dues[0][1]),
            first_due_on=dues[0][0], balance_at_offer=total, past_due_at_offer=total,
            created_at=utcnow(), updated_at=utcnow(),
        )).inserted_primary_key[0])  # fmt: skip
        for seq, (due_on, amount) in enumerate(dues, 1):
            conn.execute(insert(ArrangementInstalment).values(
                arrangement_id=arrangement_id, seq=seq, due_on=due_on, amount=Decimal(amount),
            ))  # fmt: skip
    return arrangement_id


def pay(engine: Engine, account_id: int, ref: str, amount: str, paid_on: dt.date = DAY) -> bool:
    with engine.begin() as conn:
        new = post_payment(conn, payment_ref=ref, account_id=account_id, amount=Decimal(amount),
                           paid_on=paid_on, source="ops", actor="ops1")  # fmt: skip
        allocate(conn, list(payment_ids(conn, [ref]).values()), paid_on, "ops1")
    return new


def rows(engine: Engine, model: Any, **where: Any) -> list[dict[str, Any]]:
    table = model.__table__
    stmt = select(table).where(*(table.c[k] == v for k, v in where.items())).order_by(table.c.id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def test_a_payment_goes_to_the_oldest_due_first_across_promises_and_instalments(
    engine: Engine,
) -> None:
    acc = add_account(engine, as_of=DAY, dpd=40)
    aid = acc["account_id"]
    promise = add_promise(engine, aid, "PR-1", "50.00", DAY + dt.timedelta(days=10))
    plan = add_plan(engine, aid, "AR-1", [(DAY + dt.timedelta(days=5), "30.00"),
                                          (DAY + dt.timedelta(days=35), "30.00")])  # fmt: skip

    assert pay(engine, aid, "PAY-1", "70.00")

    first, second = rows(engine, ArrangementInstalment, arrangement_id=plan)
    assert (first["state"], first["paid_amount"], first["paid_on"]) == ("paid", Decimal("30.00"),
                                                                        DAY)  # fmt: skip
    assert rows(engine, Promise, id=promise)[0]["paid_amount"] == Decimal("40.00")
    assert (second["state"], second["paid_amount"]) == ("due", Decimal("0.00"))
    allocations = rows(engine, PaymentAllocation)
    assert [(a["target"], a["amount"]) for a in allocations] == [
        ("instalment", Decimal("30.00")), ("promise", Decimal("40.00")),
    ]  # fmt: skip
    assert sum(a["amount"] for a in allocations) == Decimal("70.00")

    # What is left over once everything due is paid is unallocated, to the cent.
    assert pay(engine, aid, "PAY-2", "100.01")
    allocations = rows(engine, PaymentAllocation)
    assert [(a["target"], a["amount"]) for a in allocations[2:]] == [
        ("promise", Decimal("10.00")), ("instalment", Decimal("30.00")),
        ("unallocated", Decimal("60.01")),
    ]  # fmt: skip
    events = [(e["subject"], e["subject_ref"], e["to_state"]) for e in history(engine.connect(),
                                                                               aid)]  # fmt: skip
    assert ("payment", "PAY-1", "posted") in events
    assert ("instalment", "AR-1#1", "paid") in events
    assert ("instalment", "AR-1#2", "paid") in events


def test_a_payment_made_before_a_promise_or_a_plan_pays_neither(engine: Engine) -> None:
    """A payment pays what was owed on its day: a promise made, or a plan accepted, after it
    gets nothing of it (an imported payment from weeks back is no promise kept)."""
    acc = add_account(engine, as_of=DAY, dpd=40)
    aid = acc["account_id"]
    later = dt.datetime.combine(DAY + dt.timedelta(days=3), dt.time(12))
    promise = add_promise(engine, aid, "PR-9", "50.00", DAY + dt.timedelta(days=10))
    plan = add_plan(engine, aid, "AR-9", [(DAY + dt.timedelta(days=5), "30.00")])
    with engine.begin() as conn:
        conn.execute(Promise.__table__.update().values(made_at=later, recorded_at=later))
        conn.execute(Arrangement.__table__.update().values(accepted_at=later, created_at=later))

    assert pay(engine, aid, "PAY-9", "70.00", paid_on=DAY)

    assert rows(engine, Promise, id=promise)[0]["paid_amount"] == Decimal("0.00")
    assert rows(engine, ArrangementInstalment, arrangement_id=plan)[0]["state"] == "due"
    assert [(a["target"], a["amount"]) for a in rows(engine, PaymentAllocation)] == [
        ("unallocated", Decimal("70.00"))]
    # The same payment a day after both: it pays them, oldest due first.
    assert pay(engine, aid, "PAY-10", "70.00", paid_on=DAY + dt.timedelta(days=4))
    assert rows(engine, Promise, id=promise)[0]["paid_amount"] == Decimal("40.00")
    assert rows(engine, ArrangementInstalment, arrangement_id=plan)[0]["state"] == "paid"


def test_the_same_payment_twice_changes_nothing_and_another_amount_is_refused(
    engine: Engine,
) -> None:
    aid = add_account(engine, as_of=DAY)["account_id"]
    add_promise(engine, aid, "PR-1", "50.00", DAY + dt.timedelta(days=10))
    assert pay(engine, aid, "PAY-1", "20.00")
    assert not pay(engine, aid, "PAY-1", "20.00")
    assert len(rows(engine, Payment)) == 1
    assert len(rows(engine, PaymentAllocation)) == 1
    assert rows(engine, Promise)[0]["paid_amount"] == Decimal("20.00")
    with pytest.raises(PaymentConflict), engine.begin() as conn:
        post_payment(conn, payment_ref="PAY-1", account_id=aid, amount=Decimal("25.00"),
                     paid_on=DAY, source="ops", actor="ops1")  # fmt: skip


def test_a_reversal_takes_back_what_the_payment_paid_and_reopens_a_completed_plan(
    engine: Engine,
) -> None:
    aid = add_account(engine, as_of=DAY)["account_id"]
    promise = add_promise(engine, aid, "PR-1", "20.00", DAY + dt.timedelta(days=1))
    plan = add_plan(engine, aid, "AR-1", [(DAY, "30.00")])
    pay(engine, aid, "PAY-1", "50.00")
    # Settled at once: the promise paid in full is kept, the plan paid in full completed.
    assert rows(engine, Promise, id=promise)[0]["status"] == "kept"
    assert rows(engine, Arrangement, id=plan)[0]["state"] == "completed"

    with engine.begin() as conn:
        assert reverse_payment(conn, payment_ref="PAY-1", reversed_on=DAY + dt.timedelta(days=2),
                               reason="R01", actor="processor")  # fmt: skip
        assert not reverse_payment(conn, payment_ref="PAY-1", reversed_on=DAY,
                                   reason="R01", actor="processor")  # fmt: skip
        with pytest.raises(PaymentNotFound):
            reverse_payment(conn, payment_ref="NOPE", reversed_on=DAY, reason="R01", actor="x")

    payment = rows(engine, Payment)[0]
    assert (payment["status"], payment["reversed_on"], payment["reversal_reason"]) == (
        "reversed", DAY + dt.timedelta(days=2), "R01")  # fmt: skip
    assert all(a["reversed"] for a in rows(engine, PaymentAllocation))
    p = rows(engine, Promise, id=promise)[0]
    # Reversed within its pause (due date plus grace): the promise is open again.
    assert (p["status"], p["paid_amount"], p["settled_on"]) == ("open", Decimal("0.00"), None)
    instalment = rows(engine, ArrangementInstalment, arrangement_id=plan)[0]
    assert (instalment["state"], instalment["paid_amount"]) == ("due", Decimal("0.00"))
    arrangement = rows(engine, Arrangement, id=plan)[0]
    assert (arrangement["state"], arrangement["ended_on"]) == ("active", None)
    moves = {(e["subject"], e["from_state"], e["to_state"], e["actor"])
             for e in history(engine.connect(), aid)}  # fmt: skip
    assert {("payment", "posted", "reversed", "processor"),
            ("promise", "kept", "open", "processor"),
            ("instalment", "paid", "due", "processor"),
            ("arrangement", "completed", "active", "processor")} <= moves  # fmt: skip


def test_a_reversal_after_the_pause_breaks_the_promise_it_had_kept(engine: Engine) -> None:
    aid = add_account(engine, as_of=DAY)["account_id"]
    promise = add_promise(engine, aid, "PR-1", "20.00", DAY)
    pay(engine, aid, "PAY-1", "20.00")
    assert rows(engine, Promise, id=promise)[0]["status"] == "kept"
    with engine.begin() as conn:
        reverse_payment(conn, payment_ref="PAY-1", reversed_on=DAY + dt.timedelta(days=10),
                        reason="chargeback", actor="ops1")  # fmt: skip
    assert rows(engine, Promise, id=promise)[0]["status"] == "broken"


def test_a_late_payment_of_a_missed_instalment_reversed_is_missed_again_counted_once(
    engine: Engine,
) -> None:
    aid = add_account(engine, as_of=DAY)["account_id"]
    plan = add_plan(engine, aid, "AR-1", [(DAY - dt.timedelta(days=10), "30.00"),
                                          (DAY + dt.timedelta(days=20), "30.00")])  # fmt: skip
    with engine.begin() as conn:
        settle_accounts(conn, DAY, [aid])
    assert rows(engine, Arrangement, id=plan)[0]["missed"] == 1
    pay(engine, aid, "PAY-1", "30.00")
    first = rows(engine, ArrangementInstalment, arrangement_id=plan)[0]
    assert (first["state"], first["paid_on"]) == ("paid", DAY)
    assert rows(engine, Arrangement, id=plan)[0]["kept"] is True

    with engine.begin() as conn:
        reverse_payment(conn, payment_ref="PAY-1", reversed_on=DAY + dt.timedelta(days=1),
                        reason="nsf", actor="ops1")  # fmt: skip
    first = rows(engine, ArrangementInstalment, arrangement_id=plan)[0]
    assert (first["state"], first["paid_amount"], first["paid_on"]) == ("missed", Decimal("0.00"),
                                                                        None)  # fmt: skip
    arrangement = rows(engine, Arrangement, id=plan)[0]
    assert (arrangement["state"], arrangement["missed"], arrangement["kept"]) == ("active", 1,
                                                                                  False)  # fmt: skip


# --- days past due move with payments ------------------------------------------------------


def test_arrears_are_aged_in_monthly_cycles_and_each_paid_cycle_moves_the_due_date() -> None:
    due, snapshot = dt.date(2026, 9, 3), dt.date(2026, 12, 6)  # three whole months
    past_due = Decimal("900.00")
    assert payments_move_due_date(due, snapshot, past_due, Decimal("299.99")) == due
    assert payments_move_due_date(due, snapshot, past_due, Decimal("300.00")) == dt.date(2026, 10, 3)
    assert payments_move_due_date(due, snapshot, past_due, Decimal("810.00")) == dt.date(2026, 11, 3)
    # Paid in full: nothing is past due (cured); the date stays, it still names the episode.
    assert payments_move_due_date(due, snapshot, past_due, Decimal("900.00")) == due
    # Less than a month of arrears is one cycle; calendar months keep the month's last day.
    assert payments_move_due_date(dt.date(2026, 11, 20), snapshot, past_due,
                                  Decimal("899.99")) == dt.date(2026, 11, 20)  # fmt: skip
    assert payments_move_due_date(dt.date(2026, 1, 31), dt.date(2026, 4, 30), past_due,
                                  Decimal("300.00")) == dt.date(2026, 2, 28)  # fmt: skip
    assert payments_move_due_date(None, snapshot, past_due, Decimal(1)) is None


def test_a_reversed_payment_leaves_the_balance_and_the_itemization_from_its_day(
    engine: Engine,
) -> None:
    acc = add_account(engine, as_of=DAY, dpd=20, balance="1000.00", past_due="100.00")
    aid = acc["account_id"]
    pay(engine, aid, "PAY-1", "40.00")
    with engine.begin() as conn:
        reverse_payment(conn, payment_ref="PAY-1", reversed_on=DAY + dt.timedelta(days=2),
                        reason="R01", actor="ops1")  # fmt: skip

    def facts(day: dt.date) -> AccountRecord:
        with engine.connect() as conn:
            return load_accounts(conn, aid, aid, day=day, cutoff=dt.datetime(day.year, day.month,
                                                                              day.day))[aid]  # fmt: skip

    before, after = facts(DAY + dt.timedelta(days=1)), facts(DAY + dt.timedelta(days=2))
    assert (before.balance, before.past_due) == (Decimal("960.00"), Decimal("60.00"))
    assert (after.balance, after.past_due) == (Decimal("1000.00"), Decimal("100.00"))
    # The validation notice's itemization adds up either side of the reversal.
    assert before.itemization_issue() is None and after.itemization_issue() is None
    assert after.payments_since_itemization == 0


def explain(account_ref: str, day: dt.date, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["explain", account_ref, "--as-of", str(day), "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return dict(json.loads(capsys.readouterr().out))


def test_a_partial_payment_moves_the_stage_a_full_one_cures_and_a_reversal_puts_it_back(
    app_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = database(settings.database_url())
    acc = add_account(db, as_of=DAY, dpd=95, balance="3000.00", past_due="900.00")
    ref, episode = acc["account_ref"], DAY - dt.timedelta(days=95)
    before = explain(ref, DAY, capsys)
    assert (before["stage"], before["facts"]["days_past_due"]) == ("letters", 95)

    # 90% of the arrears: two of three monthly cycles paid, the due date two months later.
    posted = cli(capsys, "payments", "post", ref, "--payment-ref", "PAY-90", "--amount", "810.00",
                 "--paid-on", str(DAY), "--as-of", str(DAY), "--by", "ops1")  # fmt: skip
    assert posted == {"payment_ref": "PAY-90", "status": "posted", "allocations": 0}
    after = explain(ref, DAY, capsys)
    assert (after["stage"], after["facts"]["days_past_due"]) == ("collections_call", 34)
    assert (after["facts"]["due_date"], after["facts"]["due_date_moved_from"]) == (
        str(episode.replace(month=episode.month + 2)), str(episode))  # fmt: skip
    assert main(["plan", "--as-of", str(DAY), "--json"]) == 0
    planned = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {d["stage"] for d in planned if d["account_id"] == ref} == {"collections_call"}
    # The delinquency episode is still the one that began on the imported due date.
    assert {c["episode"] for c in contacts(db, account_id=acc["account_id"])} == {episode}

    # The rest: nothing is past due, no stage, nothing planned.
    cli(capsys, "payments", "post", ref, "--payment-ref", "PAY-10", "--amount", "90.00",
        "--paid-on", str(DAY), "--as-of", str(DAY), "--by", "ops1")  # fmt: skip
    cured = explain(ref, DAY, capsys)
    assert cured["stage"] is None and Decimal(cured["facts"]["past_due"]) == 0

    # The 90% payment comes back the next day: 90.00 paid of 900.00, less than a cycle.
    later = DAY + dt.timedelta(days=1)
    reversed_ = cli(capsys, "payments", "reverse", "PAY-90", "--on", str(later), "--reason",
                    "R01", "--by", "ops1")  # fmt: skip
    assert reversed_ == {"payment_ref": "PAY-90", "status": "reversed"}
    back = explain(ref, later, capsys)
    assert (back["stage"], back["facts"]["days_past_due"]) == ("letters", 96)
    assert Decimal(back["facts"]["past_due"]) == Decimal("810.00")
    # The day before it was reversed, it still counted.
    assert explain(ref, DAY, capsys)["stage"] is None


# --- import -------------------------------------------------------------------------------


def test_imported_payments_are_allocated_once_and_a_changed_one_is_rejected(
    engine: Engine, tmp_path: Path
) -> None:
    import_file(write(tmp_path / "a.jsonl", [imported_account()]), engine=engine)
    aid = rows(engine, Account)[0]["id"]
    # Promised on 10-30; the payments of 11-01 pay it (a payment pays what was owed on its day).
    promise = add_promise(engine, aid, "PR-1", "80.00", dt.date(2026, 11, 25),
                          made=dt.datetime(2026, 10, 30, 12))  # fmt: skip
    day = [imported_payment("PM1", amount="50.00"), imported_payment("PM2", amount="45.00")]
    report = import_file(write(tmp_path / "p.jsonl", day), engine=engine)
    assert (report.inserted, report.rejected) == (2, 0)
    assert rows(engine, Promise, id=promise)[0]["paid_amount"] == Decimal("80.00")
    assert [(a["target"], a["amount"]) for a in rows(engine, PaymentAllocation)] == [
        ("promise", Decimal("50.00")), ("promise", Decimal("30.00")),
        ("unallocated", Decimal("15.00")),
    ]  # fmt: skip
    assert {p["source"] for p in rows(engine, Payment)} == {"import"}
    posted = [e for e in history(engine.connect(), aid) if e["to_state"] == "posted"]
    assert [(e["subject_ref"], e["actor"]) for e in posted] == [("PM1", "import"),
                                                                ("PM2", "import")]  # fmt: skip

    again = import_file(write(tmp_path / "p2.jsonl", day), engine=engine)
    assert (again.unchanged, again.inserted) == (2, 0)
    assert len(rows(engine, PaymentAllocation)) == 3
    changed = import_file(write(tmp_path / "p3.jsonl", [imported_payment("PM1", amount="55.00")]),
                          engine=engine, rejects_path=tmp_path / "rejects.jsonl")  # fmt: skip
    assert changed.rejected == 1
    reject = json.loads((tmp_path / "rejects.jsonl").read_text().splitlines()[0])
    assert reject["field"] == "amount" and "payment_reversal" in reject["reason"]
    assert rows(engine, Payment)[0]["amount"] == Decimal("50.00")


def test_an_imported_reversal_takes_the_payment_back_and_bad_rows_are_rejected(
    engine: Engine, tmp_path: Path
) -> None:
    import_file(write(tmp_path / "a.jsonl", [imported_account()]), engine=engine)
    aid = rows(engine, Account)[0]["id"]
    promise = add_promise(engine, aid, "PR-1", "50.00", dt.date(2026, 11, 25))
    reversal = {"record": "payment_reversal", "payment_ref": "PM1", "reversed_on": "2026-11-23",
                "reason": "R01"}  # fmt: skip
    records = [
        {**reversal, "reason": "R02"},  # line 1: before its payment's line
        imported_payment("PM1", amount="50.00"),
        reversal,
        {**reversal, "payment_ref": "NOPE"},
        {**reversal, "payment_ref": "PM1", "reason": "the consumer said ..."},
        {**reversal, "reversed_on": "2026-11-01"},  # already reversed, another day
    ]
    report = import_file(write(tmp_path / "r.jsonl", records), engine=engine,
                         rejects_path=tmp_path / "rejects.jsonl")  # fmt: skip
    found = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in found] == [
        (1, "payment_ref"), (4, "payment_ref"), (5, "reason"), (6, "reversed_on"),
    ]  # fmt: skip
    assert report.by_record["payment_reversal"]["inserted"] == 1
    payment = rows(engine, Payment)[0]
    assert (payment["status"], payment["reversed_on"], payment["reversal_reason"]) == (
        "reversed", dt.date(2026, 11, 23), "R01")  # fmt: skip
    assert rows(engine, Promise, id=promise)[0]["paid_amount"] == Decimal("0.00")
    again = import_file(write(tmp_path / "r2.jsonl", [reversal]), engine=engine)
    assert (again.unchanged, again.rejected) == (1, 0)
    early = import_file(write(tmp_path / "r3.jsonl", [
        imported_payment("PM9"), {**reversal, "payment_ref": "PM9", "reversed_on": "2026-10-01"},
    ]), engine=engine)  # fmt: skip
    assert early.rejected == 1  # before the payment was paid


# --- the processor's webhook, end to end ------------------------------------------------------


@pytest.fixture
def processor(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    yield from serve(engine, monkeypatch)


def test_a_payment_through_the_webhook_keeps_the_promise_and_cures_and_its_reversal_reopens(
    processor: Server, engine: Engine
) -> None:
    server = processor
    acc = add_account(engine, as_of=DAY, dpd=40, balance="500.00", past_due="100.00")
    aid = acc["account_id"]
    add_promise(engine, aid, "PR-1", "100.00", DAY + dt.timedelta(days=5))

    def facts() -> AccountRecord:
        with engine.connect() as conn:
            return load_accounts(conn, aid, aid, day=DAY, cutoff=dt.datetime(2026, 12, 8))[aid]

    assert "promise_open" in facts().holds
    event = {"event": "payment.posted", "payment_id": "pi_1", "account_ref": acc["account_ref"],
             "amount": "100.00", "currency": "USD", "paid_on": str(DAY)}  # fmt: skip
    assert server.post(event).json() == {"status": "posted"}
    promise = rows(engine, Promise)[0]
    assert (promise["status"], promise["paid_amount"]) == ("kept", Decimal("100.00"))
    cured = facts()
    assert cured.past_due == 0 and "promise_open" not in cured.holds
    events = len(rows(engine, ResolutionEvent))

    assert server.post(event).json() == {"status": "duplicate"}
    assert len(rows(engine, ResolutionEvent)) == events
    assert rows(engine, Promise)[0]["paid_amount"] == Decimal("100.00")

    reversal = {"event": "payment.reversed", "payment_id": "pi_1", "reason": "R01"}
    assert server.post(reversal).json() == {"status": "reversed"}
    assert rows(engine, Promise)[0]["status"] == "open"  # within its pause: open again
    back = facts()
    assert back.past_due == Decimal("100.00") and back.hold_refs["promise_open"] == "PR-1"


def test_the_payments_commands_refuse_clearly(
    app_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = database(settings.database_url())
    ref = add_account(db, as_of=DAY)["account_ref"]
    post = ["payments", "post", ref, "--payment-ref", "PAY-1", "--paid-on", str(DAY), "--as-of",
            str(DAY), "--by", "ops1"]  # fmt: skip
    assert main([*post, "--amount", "20.00"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "posted"
    assert main([*post, "--amount", "20.00"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "duplicate"
    assert main([*post, "--amount", "25.00"]) == 1
    assert "already posted with another account or amount" in capsys.readouterr().err
    assert main(["payments", "post", "NOPE", *post[3:], "--amount", "1.00"]) == 2
    assert "no account 'NOPE'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*post, "--amount", "1.005"])  # not cents
    reverse = ["payments", "reverse", "PAY-1", "--on", str(DAY), "--by", "ops1"]
    assert main([*reverse, "--reason", "the consumer called"]) == 1
    assert "reason" in capsys.readouterr().err
    assert main([*reverse[:2], "PAY-404", *reverse[3:], "--reason", "R01"]) == 2
    assert main([*reverse, "--reason", "R01"]) == 0
    assert main([*reverse, "--reason", "R01"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["status"] == "duplicate"
