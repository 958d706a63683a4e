"""The facts loader: what the gate learns of an account, read set-based from the database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from outreach.kernel.facts import HISTORY_LOOKBACK, AccountRecord, load_accounts
from policies.model import COLLECTOR, CREDITOR, HoldPeriod, PastContact, TimeBlock
from tests.factories import add_account, add_call, add_event, add_hold, database

DAY = dt.date(2026, 3, 10)
CUTOFF = dt.datetime(2026, 3, 10, 5, 0)  # naive UTC


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return database(f"sqlite:///{tmp_path / 'app.db'}")


def load(engine: Engine, *ids: int, day: dt.date = DAY, cutoff: dt.datetime = CUTOFF
         ) -> dict[int, AccountRecord]:  # fmt: skip
    with engine.connect() as conn:
        return load_accounts(conn, min(ids), max(ids), day=day, cutoff=cutoff)


def one(engine: Engine, account: dict[str, Any], **kwargs: Any) -> AccountRecord:
    aid = account["account_id"]
    return load(engine, aid, **kwargs)[aid]


MOBILE = {"value": "+12125550101", "type": "mobile", "zones": "America/New_York"}
WORK = {"value": "+12125550102", "type": "work", "workplace": True, "no_calls_at_work": True}


def test_history_holds_outbound_contacts_on_every_channel_with_the_destination_kind(
    engine: Engine,
) -> None:
    acc = add_account(engine, as_of=DAY, phones=[MOBILE, WORK], emails=["pat@example.com"])
    aid, points = acc["account_id"], acc["points"]
    at = CUTOFF - dt.timedelta(days=3)
    add_call(engine, aid, at, "no_answer", contact_point_id=points["phone1"])
    add_event(engine, aid, at + dt.timedelta(hours=1), "sms", "delivered",
              contact_point_id=points["phone0"])  # fmt: skip
    add_event(engine, aid, at + dt.timedelta(hours=2), "email", "sent",
              contact_point_id=points["email0"])  # fmt: skip
    add_event(engine, aid, at + dt.timedelta(hours=3), "letter", "sent")  # no contact point
    add_call(engine, aid, at - dt.timedelta(days=1), "voicemail")  # unknown number: kept
    add_event(engine, aid, at + dt.timedelta(hours=4), "sms", "delivered", direction="inbound")

    record = one(engine, acc)
    assert record.history == [
        PastContact(at - dt.timedelta(days=1), "call", "voicemail"),
        PastContact(at, "call", "no_answer", points["phone1"], "work", True),
        PastContact(at + dt.timedelta(hours=1), "sms", "delivered", points["phone0"], "mobile"),
        PastContact(at + dt.timedelta(hours=2), "email", "sent", points["email0"]),
        PastContact(at + dt.timedelta(hours=3), "letter", "sent"),
    ]
    assert record.gate_facts(COLLECTOR).history == tuple(record.history)


def test_history_is_the_31_days_before_the_cutoff(engine: Engine) -> None:
    acc = add_account(engine, as_of=DAY)
    aid = acc["account_id"]
    oldest = CUTOFF - HISTORY_LOOKBACK
    for at in (
        oldest - dt.timedelta(seconds=1),  # too old
        oldest,
        CUTOFF - dt.timedelta(seconds=1),
        CUTOFF,  # not yet known at the cutoff
    ):
        add_call(engine, aid, at)
    assert HISTORY_LOOKBACK == dt.timedelta(days=31)
    assert [c.at for c in one(engine, acc).history] == [oldest, CUTOFF - dt.timedelta(seconds=1)]


def test_last_conversation_counts_calls_either_way_in_the_window(engine: Engine) -> None:
    acc = add_account(engine, as_of=DAY)
    aid = acc["account_id"]
    add_call(engine, aid, CUTOFF - dt.timedelta(days=20), "conversation")
    inbound = CUTOFF - dt.timedelta(days=2)
    add_call(engine, aid, inbound, "conversation", direction="inbound")
    add_call(engine, aid, CUTOFF - dt.timedelta(days=1), "no_answer")
    record = one(engine, acc)
    assert record.last_conversation == inbound
    assert [c.outcome for c in record.history] == ["conversation", "no_answer"]  # outbound only


def test_hold_periods_keep_holds_that_ended_lately_and_holds_only_the_active_ones(
    engine: Engine,
) -> None:
    acc = add_account(engine, as_of=DAY)
    aid = acc["account_id"]
    days = dt.timedelta
    add_hold(engine, aid, "dispute", DAY - days(40))  # open
    add_hold(engine, aid, "mental_health_crisis", DAY - days(90), DAY - days(10))  # ended lately
    add_hold(engine, aid, "hardship", DAY - days(200), DAY - days(119))  # ended 119 days ago
    add_hold(engine, aid, "hardship", DAY - days(400), DAY - days(120))  # ended 120 days ago
    add_hold(engine, aid, "instalment_plan", DAY - days(30), DAY)  # ends today: not active
    add_hold(engine, aid, "breathing_space", DAY, DAY + days(60))  # starts today: active
    add_hold(engine, aid, "attorney", DAY + days(1))  # not yet

    record = one(engine, acc)
    assert record.holds == {"dispute", "breathing_space"}
    assert record.hold_periods == [
        HoldPeriod("hardship", DAY - days(200), DAY - days(119)),
        HoldPeriod("mental_health_crisis", DAY - days(90), DAY - days(10)),
        HoldPeriod("dispute", DAY - days(40), None),
        HoldPeriod("instalment_plan", DAY - days(30), DAY),
        HoldPeriod("breathing_space", DAY, DAY + days(60)),
    ]
    facts = record.gate_facts(COLLECTOR)
    assert facts.holds == frozenset({"dispute", "breathing_space"})
    assert facts.hold_periods == tuple(record.hold_periods)


def test_initial_communication_is_the_first_outbound_contact_at_any_age(engine: Engine) -> None:
    from_events = add_account(engine, as_of=DAY)
    aid = from_events["account_id"]
    first = dt.datetime(2025, 6, 1, 23, 30)  # UTC: the day is the UTC date
    add_event(engine, aid, first, "letter")
    add_call(engine, aid, first - dt.timedelta(days=30), "conversation", direction="inbound")
    add_call(engine, aid, CUTOFF - dt.timedelta(days=1))
    never = add_account(engine, as_of=DAY)
    add_call(engine, never["account_id"], CUTOFF)  # at the cutoff: not known yet

    column_earlier = add_account(engine, as_of=DAY, initial_communication_on=dt.date(2024, 1, 5))
    add_call(engine, column_earlier["account_id"], CUTOFF - dt.timedelta(days=2))
    column_later = add_account(engine, as_of=DAY, initial_communication_on=dt.date(2026, 3, 1))
    add_call(engine, column_later["account_id"], dt.datetime(2026, 2, 3, 14, 0))

    got = load(engine, aid, column_later["account_id"])
    assert got[aid].initial_communication_on == dt.date(2025, 6, 1)
    assert got[never["account_id"]].initial_communication_on is None
    assert got[column_earlier["account_id"]].initial_communication_on == dt.date(2024, 1, 5)
    assert got[column_later["account_id"]].initial_communication_on == dt.date(2026, 2, 3)
    assert got[aid].gate_facts(COLLECTOR).initial_communication == dt.date(2025, 6, 1)


def test_account_and_person_facts_reach_the_gate(engine: Engine) -> None:
    acc = add_account(
        engine,
        as_of=DAY,
        city="Albany",
        product="consumer_loan",
        inconvenient_times="mon-fri 09:00-17:00; sun 00:00-24:00",
        validation_notice_sent_on=dt.date(2026, 2, 20),
        limitation_date=dt.date(2029, 2, 1),
        scra_checked_on=dt.date(2026, 3, 1),
        scra_active_duty=True,
    )
    record = one(engine, acc)
    weekdays = TimeBlock(frozenset(range(5)), 9 * 60, 17 * 60)
    sunday = TimeBlock(frozenset({6}), 0, 1440)
    assert record.inconvenient_times == (weekdays, sunday)
    assert (record.city, record.validation_notice_sent_on, record.scra_checked_on) == (
        "Albany",
        dt.date(2026, 2, 20),
        dt.date(2026, 3, 1),
    )

    facts = record.gate_facts(CREDITOR)
    assert facts.role == CREDITOR and facts.product == "consumer_loan" and facts.city == "Albany"
    assert facts.inconvenient_times == (weekdays, sunday)
    assert facts.validation_notice_sent == dt.date(2026, 2, 20)
    assert facts.limitation_date == dt.date(2029, 2, 1)
    assert (facts.scra_checked_on, facts.scra_active_duty) == (dt.date(2026, 3, 1), True)

    plain = one(engine, add_account(engine, as_of=DAY))
    assert plain.inconvenient_times == () and plain.validation_notice_sent_on is None
    assert plain.scra_active_duty is False and plain.gate_facts(COLLECTOR).role == COLLECTOR


def test_destinations_carry_consents_flags_and_whose_they_are(engine: Engine) -> None:
    sister = {"value": "+12125550103", "type": "mobile", "relation": "emergency_contact"}
    dead = {"value": "+12125550104", "type": "landline", "valid": False}
    emails = [
        {"value": "pat@example.com", "consent": True},
        {"value": "pat@work.example.com", "workplace": True, "used_by_consumer": True},
    ]
    acc = add_account(engine, as_of=DAY, phones=[MOBILE, WORK, sister, dead], emails=emails)
    record = one(engine, acc)
    by_id = {d.contact_point_id: d for d in record.destinations}
    points = acc["points"]

    work = by_id[points["phone1"]]
    assert (work.is_workplace, work.no_calls_at_work, work.relation) == (True, True, "self")
    assert by_id[points["phone2"]].relation == "emergency_contact"
    assert by_id[points["phone0"]].call_consent and by_id[points["phone0"]].sms_consent
    assert not by_id[points["phone0"]].no_calls_at_work
    personal, office = by_id[points["email0"]], by_id[points["email1"]]
    assert (personal.email_consent, personal.used_by_consumer) == (True, False)
    assert (office.email_consent, office.used_by_consumer, office.is_workplace) == (
        False,
        True,
        True,
    )
    assert by_id[points["postal"]].relation == "self"
    # Valid phones and emails of the debtor: mobile, work phone, two emails (not the sister's
    # phone, not the dead landline, not the postal address).
    assert record.gate_facts(COLLECTOR).reachable_destinations == 4


def test_queries_do_not_grow_with_the_number_of_accounts(engine: Engine) -> None:
    ids = []
    for _ in range(6):
        acc = add_account(engine, as_of=DAY, phones=[MOBILE, WORK])
        add_call(engine, acc["account_id"], CUTOFF - dt.timedelta(days=1))
        add_hold(engine, acc["account_id"], "dispute", DAY - dt.timedelta(days=3))
        ids.append(acc["account_id"])

    def statements(lo: int, hi: int) -> int:
        seen: list[str] = []
        with engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            raw.set_trace_callback(seen.append)
            try:
                assert len(load_accounts(conn, lo, hi, day=DAY, cutoff=CUTOFF)) == hi - lo + 1
            finally:
                raw.set_trace_callback(None)
        return sum(1 for s in seen if s.lstrip().upper().startswith("SELECT"))

    assert statements(ids[0], ids[0]) == statements(ids[0], ids[-1])


def test_only_loads_the_named_accounts_of_a_range_with_the_same_facts(engine: Engine) -> None:
    ids = []
    for n in range(6):
        acc = add_account(engine, as_of=DAY, phones=[MOBILE, WORK])
        add_call(engine, acc["account_id"], CUTOFF - dt.timedelta(days=n + 1))
        if n % 2:
            add_hold(engine, acc["account_id"], "dispute", DAY - dt.timedelta(days=3))
        ids.append(acc["account_id"])
    picked = [ids[4], ids[1]]
    with engine.connect() as conn:
        everything = load_accounts(conn, ids[0], ids[-1], day=DAY, cutoff=CUTOFF)
        some = load_accounts(conn, ids[0], ids[-1], day=DAY, cutoff=CUTOFF, only=picked)
        narrower = load_accounts(conn, ids[2], ids[-1], day=DAY, cutoff=CUTOFF, only=picked)
        none = load_accounts(conn, ids[0], ids[-1], day=DAY, cutoff=CUTOFF, only=[])
    assert sorted(some) == sorted(picked)
    for aid in picked:  # every fact (history, holds, destinations) as the full range loads it
        assert some[aid] == everything[aid]
    assert some[ids[1]].holds == {"dispute"} and len(some[ids[4]].history) == 1
    assert list(narrower) == [ids[4]]  # the range still bounds it
    assert none == {}


@pytest.mark.postgres
def test_the_same_facts_load_on_postgresql(postgres_url: str) -> None:
    from sqlalchemy import text

    from outreach.storage.models import Base

    engine = database(postgres_url)
    try:
        with engine.begin() as conn:  # a scratch database: start from empty tables
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        acc = add_account(engine, as_of=DAY, phones=[MOBILE, WORK], inconvenient_times="sun",
                          initial_communication_on=dt.date(2026, 1, 2))  # fmt: skip
        aid = acc["account_id"]
        add_call(
            engine, aid, CUTOFF - dt.timedelta(days=2), contact_point_id=acc["points"]["phone1"]
        )
        add_call(engine, aid, dt.datetime(2025, 12, 31, 23, 0))
        add_hold(engine, aid, "mental_health_crisis", DAY - dt.timedelta(days=50),
                 DAY - dt.timedelta(days=5))  # fmt: skip
        record = one(engine, acc)
        assert record.history == [
            PastContact(CUTOFF - dt.timedelta(days=2), "call", "no_answer",
                        acc["points"]["phone1"], "work", True),
        ]  # fmt: skip
        assert record.initial_communication_on == dt.date(2025, 12, 31)
        assert record.holds == set() and [h.kind for h in record.hold_periods] == [
            "mental_health_crisis"
        ]
        assert record.inconvenient_times == (TimeBlock(frozenset({6}), 0, 1440),)
        work = next(d for d in record.destinations if d.phone_type == "work")
        assert (work.no_calls_at_work, work.relation, work.call_consent) == (True, "self", True)
        assert record.gate_facts(COLLECTOR).reachable_destinations == 3
    finally:
        engine.dispose()
