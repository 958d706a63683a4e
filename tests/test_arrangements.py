"""Repayment arrangements end to end: offers through the CLI, acceptance and a second person's
approval, the day's settling of instalments (kept, missed, broken, completed), re-aging on and
off, the import records, the day's arrangement file, explain and the plan's pauses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from outreach.resolution import arrangements as arr
from outreach.resolution.events import history
from outreach.resolution.settle import settle_accounts
from outreach.storage.models import Arrangement, ArrangementInstalment
from tests import factories

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
