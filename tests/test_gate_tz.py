"""The gate never depends on the process's own time zone, and its evidence says what decided.

The worker's zone is switched (TZ and time.tzset) around each test, and the policy caches are
cleared on both sides so that no value computed under one zone is read under the other. Local
dates must come from the consumer's zone alone: a date computed in the worker's zone moves the
7-in-7 window and the pause after a conversation by a day (issue 13 item 14).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator

import pytest

import policies.calendar
import policies.checks.time_of_day
import policies.gate
import policies.windows
from policies.gate import evaluate
from policies.model import AccountFacts, PastContact, Step
from policies.timeblocks import parse
from policies.windows import local_to_utc

NY = "America/New_York"
DAY = dt.date(2026, 11, 23)  # a Monday, EST (UTC-5)
ONE_DAY = dt.timedelta(days=1)
# New York is behind UTC, Tokyo ahead: a date read in either zone instead of the consumer's
# lands on a different day at one end of the evening or the other.
WORKER_ZONES = ("America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago")


def _clear_policy_caches() -> None:
    for module in (policies.windows, policies.gate, policies.checks.time_of_day, policies.calendar):
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


@pytest.fixture(params=("UTC", *WORKER_ZONES))
def worker_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    _clear_policy_caches()
    try:
        yield request.param
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()
        _clear_policy_caches()


def local(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return local_to_utc(day, hh, mm, NY)


def facts(**kw: object) -> AccountFacts:
    base: dict[str, object] = dict(
        account_id=1, country="US", region="NY", past_due=100.0, balance=5000.0,
        address_zones=(NY,),
    )  # fmt: skip
    base.update(kw)
    return AccountFacts(**base)  # type: ignore[arg-type]


def call() -> Step:
    return Step("call", 10, (NY,), phone_type="mobile")


def sms() -> Step:
    return Step("sms", 10, (NY,), phone_type="mobile", consent=True)


def attempt(day: dt.date, hh: int, mm: int = 0) -> PastContact:
    return PastContact(local(day, hh, mm), "call", "no_answer", 10, "mobile")


SIX_IN_WINDOW = tuple(attempt(DAY - dt.timedelta(days=d), 12) for d in range(1, 7))


def test_the_worker_zone_really_changes_for_naive_local_arithmetic(worker_zone: str) -> None:
    # The fixture works: a naive instant read as local time moves with TZ.
    naive = dt.datetime(2026, 11, 23, 12)
    offset = naive.astimezone().utcoffset()
    assert (offset == dt.timedelta(0)) == (worker_zone == "UTC")


def test_an_evening_call_eight_local_days_back_is_outside_the_seven_days(worker_zone: str) -> None:
    # 20:30 EST on DAY-7 is 01:30 UTC on DAY-6: on the consumer's calendar, outside.
    evening = attempt(DAY - 7 * ONE_DAY, 20, 30)
    assert evening.at.date() == DAY - 6 * ONE_DAY
    v = evaluate(call(), facts(history=(evening, *SIX_IN_WINDOW)), day=DAY)
    assert v.verdict == "send"


def test_a_morning_call_seven_local_days_back_is_inside_the_seven_days(worker_zone: str) -> None:
    # 08:30 EST on DAY-6: the seventh attempt in the seven days ending DAY.
    morning = attempt(DAY - 6 * ONE_DAY, 8, 30)
    v = evaluate(call(), facts(history=(morning, *SIX_IN_WINDOW)), day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("us_reg_f.call_frequency_7in7",))
    assert v.evidence()["us_reg_f.call_frequency_7in7"]["facts"]["period"] == [
        str(DAY - 6 * ONE_DAY), str(DAY)]  # fmt: skip
    # The cooldown ends with the local day; calls are allowed again from 08:00 local (issue 13
    # item 2: defer_until is the first instant the call could go).
    assert v.defer_until == local(DAY + ONE_DAY, 8)


@pytest.mark.parametrize(("hh", "mm"), [(8, 30), (20, 30), (23, 59)])
def test_the_pause_after_a_conversation_counts_from_its_local_day(
    worker_zone: str, hh: int, mm: int
) -> None:
    conversation = local(DAY - 7 * ONE_DAY, hh, mm)  # day 1 of 7; calls resume on DAY
    before = evaluate(call(), facts(last_conversation=conversation), day=DAY - ONE_DAY)
    assert (before.verdict, before.reasons) == ("defer", ("us_reg_f.call_after_conversation",))
    assert before.defer_until == local(DAY, 8)  # the first allowed hour of the day it ends
    assert evaluate(call(), facts(last_conversation=conversation), day=DAY).verdict == "send"


def test_windows_and_stated_times_do_not_move_with_the_worker_zone(worker_zone: str) -> None:
    f = facts(inconvenient_times=parse("mon-fri 09:00-17:30"))
    plan = evaluate(sms(), f, day=DAY)
    assert (plan.window_start, plan.window_end) == (local(DAY, 17, 30), local(DAY, 21))
    # Two stretches of equal length (08:00-09:00 and 20:00-21:00): the earlier one is taken.
    even = evaluate(sms(), facts(inconvenient_times=parse("mon 09:00-20:00")), day=DAY)
    assert (even.window_start, even.window_end) == (local(DAY, 8), local(DAY, 9))


def test_equal_stretches_on_a_dst_night_of_the_worker_zone_keep_the_earlier(
    worker_zone: str,
) -> None:
    # Two 15-minute stretches at 02:30 and 03:00 UTC on 2026-03-08: in New York that night
    # 02:30 does not exist, so reading the UTC instants as New York time puts 02:30 after 03:00.
    tokyo = "Asia/Tokyo"
    day = dt.date(2026, 3, 8)
    f = facts(address_zones=(tokyo,),
              inconvenient_times=parse("daily 08:00-11:30; daily 11:45-12:00; daily 12:15-21:00"))
    v = evaluate(Step("sms", 10, (tokyo,), phone_type="mobile", consent=True), f, day=day)
    assert (v.verdict, v.window_start, v.window_end) == (
        "send", dt.datetime(2026, 3, 8, 2, 30), dt.datetime(2026, 3, 8, 2, 45))  # fmt: skip


# --- evidence ------------------------------------------------------------------------------------


def test_a_block_for_no_allowed_time_left_says_what_took_the_time() -> None:
    v = evaluate(sms(), facts(inconvenient_times=parse("mon 08:00-21:00")), day=DAY)
    assert (v.verdict, v.reasons) == ("block", ("us_reg_f.consumer_inconvenient_time",))
    evidence = v.evidence()
    stated = evidence["us_reg_f.consumer_inconvenient_time"]
    assert stated["facts"] == {"stated_inconvenient": "mon 08:00-21:00", "zones": [NY]}
    assert stated["citation"]
    # The hours it was intersected with are on the record too.
    assert evidence["us_reg_f.inconvenient_time"]["facts"] == {"zones": [NY]}


def test_a_whole_stated_day_blocks_with_its_evidence() -> None:
    v = evaluate(sms(), facts(inconvenient_times=parse("mon")), day=DAY)
    assert v.verdict == "block"
    assert v.evidence()["us_reg_f.consumer_inconvenient_time"]["facts"]["stated_inconvenient"] \
        == "mon 00:00-24:00"  # fmt: skip


def test_a_passing_rules_trace_shows_an_inactive_hold_as_inactive() -> None:
    v = evaluate(sms(), facts(), day=DAY, trace=True)
    assert v.verdict == "send"
    evidence = v.evidence()
    hold_rules = {rid: e["facts"] for rid, e in evidence.items() if "active" in e["facts"]}
    assert {"us_reg_f.cease_communication", "core.bankruptcy"} <= set(hold_rules)
    assert all(f["active"] is False for f in hold_rules.values()), hold_rules
    assert all(evidence[rid]["outcome"] == "pass" for rid in hold_rules)


def test_a_passing_trace_shows_an_inactive_moratorium_as_inactive() -> None:
    london = "Europe/London"
    uk = AccountFacts(1, "GB", None, 100.0, balance=5000.0, address_zones=(london,))
    v = evaluate(Step("letter", 30), uk, day=DAY, trace=True)
    evidence = v.evidence()
    for rule_id in ("gb.breathing_space", "gb.mental_health_crisis"):
        assert evidence[rule_id]["outcome"] == "pass"
        assert evidence[rule_id]["facts"]["active"] is False, rule_id
