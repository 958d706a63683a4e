"""A defer's ``defer_until`` is the first instant at which the step could be allowed (issue 13
item 2): the next allowed hour, after a cooldown on the first allowed hour of the day it ends,
after the consumer's stated inconvenient times, for every deferring rule kind; and the dispatcher
does not claim a deferred contact before it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from contact_channels.outbox import OutboxChannel
from outreach.dispatch.dispatcher import dispatch_range
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from policies.gate import evaluate
from policies.model import AccountFacts, PastContact, Step, TimeBlock
from policies.windows import local_to_utc
from tests import factories as f

NY = "America/New_York"
SHANGHAI = "Asia/Shanghai"
DAY = dt.date(2026, 11, 23)  # a Monday
ONE_DAY = dt.timedelta(days=1)
WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


def local(day: dt.date, hh: int, mm: int = 0, zone: str = NY) -> dt.datetime:
    return local_to_utc(day, hh, mm, zone)


def us(**kw: object) -> AccountFacts:
    base: dict[str, object] = dict(account_id=1, country="US", region="NY", past_due=100.0,
                                   balance=5000.0, address_zones=(NY,))  # fmt: skip
    base.update(kw)
    return AccountFacts(**base)  # type: ignore[arg-type]


def call(zone: str = NY, cp: int = 10) -> Step:
    return Step("call", cp, (zone,), phone_type="mobile", consent=True)


def sms(zone: str = NY) -> Step:
    return Step("sms", 10, (zone,), phone_type="mobile", consent=True)


def block(weekdays: frozenset[int], start: str, end: str) -> TimeBlock:
    def minutes(hhmm: str) -> int:
        hh, mm = hhmm.split(":")
        return int(hh) * 60 + int(mm)

    return TimeBlock(weekdays, minutes(start), minutes(end))


def seven_attempts() -> tuple[PastContact, ...]:
    """Seven unanswered calls on DAY-6 .. DAY-1 (two on DAY-6): the 7-in-7 cap is full on DAY
    and has room on DAY+1, when DAY-6 has left the seven days."""
    days = [6, 6, 5, 4, 3, 2, 1]
    return tuple(PastContact(local(DAY - ONE_DAY * d, 10), "call", "no_answer", 10, "mobile")
                 for d in days)  # fmt: skip


# --- each deferring rule kind ------------------------------------------------------------------


def test_hours_a_send_after_the_evening_end_waits_for_08_00_next_morning() -> None:
    v = evaluate(sms(), us(), day=DAY, at=local(DAY, 21, 30))
    assert (v.verdict, v.reasons) == ("defer", ("us_reg_f.inconvenient_time",))
    assert v.defer_until == local(DAY + ONE_DAY, 8)


def test_hours_and_a_stated_morning_wait_for_the_end_of_the_stated_span() -> None:
    f_ = us(inconvenient_times=(block(EVERY_DAY, "07:00", "10:30"),))
    v = evaluate(sms(), f_, day=DAY, at=local(DAY, 21, 30))
    assert v.verdict == "defer"
    assert v.defer_until == local(DAY + ONE_DAY, 10, 30)
    assert evaluate(sms(), f_, day=DAY + ONE_DAY, at=v.defer_until).verdict == "send"


def test_a_stated_evening_span_running_past_the_hours_waits_for_next_morning() -> None:
    f_ = us(inconvenient_times=(block(EVERY_DAY, "19:00", "23:00"),))
    v = evaluate(sms(), f_, day=DAY, at=local(DAY, 20))
    assert (v.verdict, v.reasons) == ("defer", ("us_reg_f.consumer_inconvenient_time",))
    assert v.defer_until == local(DAY + ONE_DAY, 8)


def test_inconvenient_times_inside_the_day_defer_to_their_end() -> None:
    f_ = us(inconvenient_times=(block(WEEKDAYS, "09:00", "17:00"),))
    v = evaluate(sms(), f_, day=DAY, at=local(DAY, 12))
    assert v.defer_until == local(DAY, 17)


def test_7in7_cooldown_ends_at_08_00_local_on_the_day_the_cap_has_room() -> None:
    v = evaluate(call(), us(history=seven_attempts()), day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("us_reg_f.call_frequency_7in7",))
    assert v.defer_until == local(DAY + ONE_DAY, 8)
    sent = evaluate(call(), us(history=seven_attempts()), day=DAY + ONE_DAY, at=v.defer_until)
    assert sent.verdict == "send"
    early = evaluate(call(), us(history=seven_attempts()), day=DAY + ONE_DAY,
                     at=v.defer_until - dt.timedelta(seconds=1))  # fmt: skip
    assert early.verdict == "defer"


def test_7in7_cooldown_ending_on_a_stated_morning_waits_for_its_end() -> None:
    f_ = us(history=seven_attempts(),
            inconvenient_times=(block(frozenset({1}), "00:00", "13:15"),))  # Tuesdays  # fmt: skip
    v = evaluate(call(), f_, day=DAY)
    assert v.defer_until == local(DAY + ONE_DAY, 13, 15)


def test_7in7_cooldown_ending_on_a_whole_stated_day_waits_for_the_next_day() -> None:
    f_ = us(history=seven_attempts(), inconvenient_times=(block(frozenset({1}), "00:00", "24:00"),))
    v = evaluate(call(), f_, day=DAY)
    assert v.defer_until == local(DAY + 2 * ONE_DAY, 8)


def test_the_conversation_pause_ends_at_08_00_on_the_day_calls_resume() -> None:
    talked = local(DAY - 2 * ONE_DAY, 15)
    v = evaluate(call(), us(last_conversation=talked), day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("us_reg_f.call_after_conversation",))
    assert v.defer_until == local(DAY + 5 * ONE_DAY, 8)


def test_two_cooldowns_the_later_one_decides() -> None:
    talked = local(DAY - 6 * ONE_DAY, 15)  # calls resume on DAY+1
    history = seven_attempts() + (PastContact(local(DAY - ONE_DAY, 11), "call", "no_answer", 10,
                                              "mobile"),)  # fmt: skip
    # Nine attempts, two of them on DAY-5: the seven days still hold seven on DAY+1, five on
    # DAY+2. The conversation pause ends sooner (DAY+1): the cap decides.
    history += (PastContact(local(DAY - 5 * ONE_DAY, 11), "call", "no_answer", 10, "mobile"),)
    v = evaluate(call(), us(history=history, last_conversation=talked), day=DAY)
    assert set(v.reasons) == {"us_reg_f.call_frequency_7in7", "us_reg_f.call_after_conversation"}
    assert v.defer_until == local(DAY + 2 * ONE_DAY, 8)


def test_massachusetts_2in7_ends_at_08_00_local() -> None:
    two = tuple(PastContact(local(DAY - ONE_DAY * d, 11), "call", "voicemail", 10, "mobile")
                for d in (6, 2))  # fmt: skip
    f_ = us(region="MA", history=two)
    v = evaluate(sms(), f_, day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("us_ma.personal_phone_2in7",))
    assert v.defer_until == local(DAY + ONE_DAY, 8)


def test_china_daily_cap_ends_at_08_00_shanghai_next_day() -> None:
    six = tuple(PastContact(local(DAY, 9, i, SHANGHAI), "call", "no_answer", 10, "mobile")
                for i in range(6))  # fmt: skip
    f_ = AccountFacts(1, "CN", "SH", 100.0, address_zones=(SHANGHAI,), history=six)
    for at in (None, local(DAY, 15, 0, SHANGHAI)):
        v = evaluate(call(SHANGHAI), f_, day=DAY, at=at)
        assert (v.verdict, v.reasons) == ("defer", ("cn.unanswered_attempts_daily",))
        assert v.defer_until == local(DAY + ONE_DAY, 8, 0, SHANGHAI)  # 00:00 UTC


def test_a_call_judged_before_the_morning_in_a_later_zone_waits_for_both() -> None:
    # Address in New York, phone in Los Angeles: both must be inside 08:00-21:00.
    step = Step("call", 10, ("America/Los_Angeles",), phone_type="mobile", consent=True)
    v = evaluate(step, us(history=seven_attempts()), day=DAY)
    assert v.defer_until == local(DAY + ONE_DAY, 8, 0, "America/Los_Angeles")


def test_explain_shows_the_same_time_as_the_plan() -> None:
    plan = evaluate(call(), us(history=seven_attempts()), day=DAY)
    explained = evaluate(call(), us(history=seven_attempts()), day=DAY, trace=True)
    assert explained.defer_until == plan.defer_until == local(DAY + ONE_DAY, 8)


def test_an_untimed_channel_may_go_from_local_midnight() -> None:
    # A letter has no hours: New York City's 3-in-7 frees it at the start of the local day.
    history = tuple(PastContact(local(DAY - ONE_DAY * d, 11), "sms", "sent", 10, "mobile")
                    for d in (6, 3, 1))  # fmt: skip
    f_ = us(city="new york", history=history)
    v = evaluate(Step("letter", 30), f_, day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("us_nyc.contacts_3in7",))
    assert v.defer_until == local(DAY + ONE_DAY, 0)


# --- the dispatcher does not claim a contact before its deferral ------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return f.database(f"sqlite:///{tmp_path / 'app.db'}")


def test_wall_clock_dispatch_does_not_claim_a_contact_before_its_defer_until(
    engine: Engine, tmp_path: Path
) -> None:
    f.add_account(engine, as_of=DAY, dpd=3)
    for _ in iter_plan(engine, load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml"),
                       DAY, 1000):  # fmt: skip
        pass
    later = local(DAY, 15)  # inside the window (08:00-21:00 New York)
    with engine.begin() as conn:
        conn.execute(text("UPDATE contact SET defer_until = :u WHERE channel = 'sms'"),
                     {"u": later})  # fmt: skip
    sms_out = OutboxChannel("sms", f"sqlite:///{tmp_path / 'outbox.db'}")

    def run(now: dt.datetime) -> dict[str, int]:
        return dispatch_range(engine, DAY, "sms", 0, 10**9, clock="wall", channel_impl=sms_out,
                              now=lambda: now).as_dict()  # fmt: skip

    early = run(local(DAY, 10))
    assert early["claimed"] == 0 and early["sent"] == 0
    with engine.connect() as conn:
        row = conn.execute(text("SELECT state, attempts FROM contact WHERE channel = 'sms'")).one()
    assert tuple(row) == ("planned", 0)
    on_time = run(later)
    assert on_time["sent"] == 1


def test_logical_clock_dispatch_starts_a_deferred_contact_at_its_defer_until(
    engine: Engine, tmp_path: Path
) -> None:
    f.add_account(engine, as_of=DAY, dpd=3)
    for _ in iter_plan(engine, load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml"),
                       DAY, 1000):  # fmt: skip
        pass
    later = local(DAY, 15, 30)
    with engine.begin() as conn:
        conn.execute(text("UPDATE contact SET defer_until = :u WHERE channel = 'sms'"),
                     {"u": later})  # fmt: skip
    sms_out = OutboxChannel("sms", f"sqlite:///{tmp_path / 'outbox.db'}")
    counts = dispatch_range(engine, DAY, "sms", 0, 10**9, clock="logical", channel_impl=sms_out)
    assert counts.sent == 1
    with engine.connect() as conn:
        sent_at = conn.execute(text("SELECT sent_at FROM contact WHERE channel = 'sms'")).scalar()
    assert str(sent_at)[:19] == str(local(DAY, 16))[:19]  # the first top of the hour after it


def test_an_agency_step_judged_after_its_local_day_defers_past_the_instant_judged() -> None:
    """An agency step waits on capacity, not the clock, so its time is the rule's own (the next
    local day). Judged at an instant already in that next local day (Shanghai's midnight is
    16:00 UTC), that time is not after the instant: the step must defer past it, or a walk of
    the day would meet it again at the same instant for ever."""
    step = Step("agency", None, (), agency=None)
    facts = AccountFacts(account_id=1, country="CN", region=None, past_due=5.0,
                         balance=5000.0, address_zones=(SHANGHAI,), product="mortgage",
                         role="creditor")  # fmt: skip
    at = local(DAY + ONE_DAY, 0, 0, SHANGHAI)  # 16:00 UTC on DAY
    verdict = evaluate(step, facts, day=DAY, at=at)
    assert verdict.verdict == "defer" and verdict.reasons == ("core.agency_unassigned",)
    assert verdict.defer_until is not None and verdict.defer_until > at
    assert verdict.defer_until == local(DAY + 2 * ONE_DAY, 0, 0, SHANGHAI)
