"""China and United Kingdom rules at their boundaries."""

from __future__ import annotations

import datetime as dt

import pytest

from policies.gate import evaluate
from policies.model import AccountFacts, HoldPeriod, PastContact, Step
from policies.windows import local_to_utc

SHANGHAI = "Asia/Shanghai"
LONDON = "Europe/London"
DAY = dt.date(2026, 11, 23)  # a Monday
ONE_DAY = dt.timedelta(days=1)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def local(day: dt.date, hh: int, mm: int = 0, ss: int = 0, zone: str = SHANGHAI) -> dt.datetime:
    return local_to_utc(day, hh, mm, zone) + dt.timedelta(seconds=ss)


def cn(**kw: object) -> AccountFacts:
    base: dict[str, object] = dict(
        account_id=1, country="CN", region="BJ", past_due=100.0, balance=5000.0,
        final_notice_sent=dt.date(2020, 1, 1), address_zones=(SHANGHAI,)
    )
    base.update(kw)
    return AccountFacts(**base)  # type: ignore[arg-type]


def gb(**kw: object) -> AccountFacts:
    base: dict[str, object] = dict(
        account_id=1, country="GB", region=None, past_due=100.0, balance=5000.0,
        final_notice_sent=dt.date(2020, 1, 1), address_zones=(LONDON,)
    )
    base.update(kw)
    return AccountFacts(**base)  # type: ignore[arg-type]


def call(cp: int = 10, zone: str = SHANGHAI, **kw: object) -> Step:
    return Step("call", cp, (zone,), phone_type="mobile", **kw)  # type: ignore[arg-type]


def sms(cp: int = 10, zone: str = SHANGHAI, **kw: object) -> Step:
    return Step("sms", cp, (zone,), phone_type="mobile", consent=True, **kw)  # type: ignore[arg-type]


# --- China: hours -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hh", "mm", "ss", "verdict"),
    [(7, 59, 59, "defer"), (8, 0, 0, "send"), (21, 0, 0, "send"), (21, 59, 59, "send"),
     (22, 0, 0, "defer")],
)
def test_china_collection_hours_are_eight_to_ten_local(hh: int, mm: int, ss: int,
                                                      verdict: str) -> None:  # fmt: skip
    v = evaluate(call(), cn(), day=DAY, at=local(DAY, hh, mm, ss))
    assert v.verdict == verdict
    if verdict == "defer":
        assert v.reasons == ("cn.collection_hours",)


def test_china_plan_window_in_utc() -> None:
    v = evaluate(sms(), cn(), day=DAY)
    assert (v.window_start, v.window_end) == (dt.datetime(2026, 11, 23, 0), dt.datetime(2026, 11, 23, 14))


def test_china_pack_covers_credit_cards_and_consumer_loans_only() -> None:
    late = local(DAY, 21, 30)
    assert evaluate(call(), cn(product="consumer_loan"), day=DAY, at=late).verdict == "send"
    v = evaluate(call(), cn(product="mortgage"), day=DAY, at=late)
    assert v.reasons == ("core.quiet_hours",)


# --- China: unanswered attempts a day per number ------------------------------------------------


def unanswered(n: int, cp: int = 10, day: dt.date = DAY, outcome: str = "no_answer"
               ) -> tuple[PastContact, ...]:  # fmt: skip
    return tuple(PastContact(local(day, 9, i), "call", outcome, cp, "mobile") for i in range(n))


def test_sixth_unanswered_attempt_of_the_day_is_allowed() -> None:
    v = evaluate(call(), cn(history=unanswered(5)), day=DAY, at=local(DAY, 15))
    assert v.verdict == "send"


def test_seventh_attempt_to_the_same_number_in_a_day_waits_for_08_00_next_day() -> None:
    v = evaluate(call(), cn(history=unanswered(6)), day=DAY, at=local(DAY, 15))
    assert (v.verdict, v.reasons) == ("defer", ("cn.unanswered_attempts_daily",))
    # The count starts again at local midnight; calls are allowed from 08:00.
    assert v.defer_until == local(DAY + ONE_DAY, 8)
    assert v.defer_until == dt.datetime(2026, 11, 24, 0, 0)
    plan = evaluate(call(), cn(history=unanswered(6)), day=DAY)
    assert plan.reasons == ("cn.unanswered_attempts_daily",)


def test_another_number_is_not_affected_by_the_daily_limit() -> None:
    assert evaluate(call(cp=11), cn(history=unanswered(6)), day=DAY, at=local(DAY, 15)).verdict \
        == "send"  # fmt: skip


@pytest.mark.parametrize("outcome", ["no_answer", "busy", "voicemail", "not_in_service"])
def test_every_unanswered_outcome_counts_toward_the_daily_limit(outcome: str) -> None:
    v = evaluate(call(), cn(history=unanswered(6, outcome=outcome)), day=DAY)
    assert v.verdict == "defer"


def test_answered_calls_and_yesterdays_attempts_do_not_count_toward_the_daily_limit() -> None:
    assert evaluate(call(), cn(history=unanswered(6, day=DAY - ONE_DAY)), day=DAY).verdict == "send"
    talked = unanswered(5) + (PastContact(local(DAY, 11), "call", "conversation", 10, "mobile"),)
    v = evaluate(call(), cn(history=talked), day=DAY)
    assert "cn.unanswered_attempts_daily" not in v.reasons


def test_the_daily_limit_counts_shanghai_days() -> None:
    # 23:30 in Shanghai is 15:30 UTC the same date; 00:30 is 16:30 UTC the day before.
    before_midnight = tuple(PastContact(local(DAY - ONE_DAY, 23, 30), "call", "no_answer", 10)
                            for _ in range(6))  # fmt: skip
    assert evaluate(call(), cn(history=before_midnight), day=DAY).verdict == "send"
    after_midnight = tuple(PastContact(local(DAY, 0, 30), "call", "no_answer", 10)
                           for _ in range(6))  # fmt: skip
    assert after_midnight[0].at.date() == DAY - ONE_DAY
    assert evaluate(call(), cn(history=after_midnight), day=DAY).verdict == "defer"


# --- China: third parties, instalment plans, agencies -------------------------------------------


@pytest.mark.parametrize(
    ("reachable", "purpose", "verdict"),
    [(0, "locate", "send"), (1, "locate", "block"), (0, "reminder", "block"),
     (2, "reminder", "block")],
)
def test_china_emergency_contact_only_to_locate_an_unreachable_debtor(
    reachable: int, purpose: str, verdict: str
) -> None:
    step = call(relation="emergency_contact", purpose=purpose)
    v = evaluate(step, cn(reachable_destinations=reachable), day=DAY)
    assert v.verdict == verdict
    if verdict == "block":
        assert v.reasons == ("cn.third_party_locate_only",)


def test_china_kept_instalment_plan_stops_collection_but_not_the_offer() -> None:
    f = cn(holds=frozenset({"instalment_plan"}))
    for step in (call(), sms(), Step("letter", 30), Step("agency", agency="acme",
                                                          agency_approved=True)):  # fmt: skip
        v = evaluate(step, f, day=DAY)
        assert (v.verdict, v.reasons) == ("block", ("cn.instalment_agreement_kept",)), step.channel
    assert evaluate(sms(purpose="instalment_offer"), f, day=DAY).verdict == "send"


@pytest.mark.parametrize(
    ("agency", "approved", "verdict"),
    [("acme", True, "send"), ("acme", False, "block"), (None, False, "block"), (None, True, "block")],
)
def test_china_placement_only_with_an_approved_agency(agency: str | None, approved: bool,
                                                      verdict: str) -> None:  # fmt: skip
    v = evaluate(Step("agency", agency=agency, agency_approved=approved), cn(), day=DAY)
    assert v.verdict == verdict
    if verdict == "block":
        assert v.reasons == ("cn.agency_not_approved",)


def test_agency_approval_is_a_chinese_rule_only() -> None:
    us = AccountFacts(1, "US", "NY", 100.0, address_zones=("America/New_York",))
    # An agency not on the approved list: only China's rule asks for approval.
    assert evaluate(Step("agency", agency="acme"), us, day=DAY).verdict == "send"


# --- United Kingdom: hours ----------------------------------------------------------------------


@pytest.mark.parametrize("day", [DAY, dt.date(2026, 7, 15)])  # GMT and BST
@pytest.mark.parametrize(
    ("hh", "mm", "ss", "verdict"),
    [(7, 59, 59, "defer"), (8, 0, 0, "send"), (20, 59, 59, "send"), (21, 0, 0, "defer")],
)
def test_uk_contact_hours_are_eight_to_nine_local(day: dt.date, hh: int, mm: int, ss: int,
                                                 verdict: str) -> None:  # fmt: skip
    v = evaluate(sms(zone=LONDON), gb(), day=day, at=local(day, hh, mm, ss, LONDON))
    assert v.verdict == verdict
    if verdict == "defer":
        assert v.reasons == ("gb.unreasonable_hours",)


def test_uk_plan_window_follows_british_summer_time() -> None:
    winter = evaluate(sms(zone=LONDON), gb(), day=DAY)
    summer = evaluate(sms(zone=LONDON), gb(), day=dt.date(2026, 7, 15))
    assert (winter.window_start, winter.window_end) == (dt.datetime(2026, 11, 23, 8),
                                                        dt.datetime(2026, 11, 23, 21))  # fmt: skip
    assert (summer.window_start, summer.window_end) == (dt.datetime(2026, 7, 15, 7),
                                                        dt.datetime(2026, 7, 15, 20))  # fmt: skip


# --- United Kingdom: Breathing Space and mental health crisis moratoriums -----------------------

START = dt.date(2026, 9, 1)


@pytest.mark.parametrize(("day_number", "blocked"),
                         [(0, True), (1, True), (59, True), (60, False), (61, False)])
def test_breathing_space_lasts_60_days_by_default(day_number: int, blocked: bool) -> None:
    f = gb(hold_periods=(HoldPeriod("breathing_space", START),))
    day = START + days(day_number)
    for step in (sms(zone=LONDON), call(zone=LONDON), Step("letter", 30), Step("agency"),
                 Step("legal")):  # fmt: skip
        v = evaluate(step, f, day=day)
        assert (v.verdict == "block") is blocked, (day_number, step.channel)
        if blocked:
            assert v.reasons == ("gb.breathing_space",)
            assert v.evidence()["gb.breathing_space"]["facts"]["blocked_until"] == str(
                START + days(60))  # fmt: skip


def test_breathing_space_cancelled_early_ends_on_its_recorded_end() -> None:
    f = gb(hold_periods=(HoldPeriod("breathing_space", START, START + days(20)),))
    assert evaluate(Step("letter", 30), f, day=START + days(19)).verdict == "block"
    assert evaluate(Step("letter", 30), f, day=START + days(20)).verdict == "send"


def test_breathing_space_does_not_reach_back_before_its_start() -> None:
    f = gb(hold_periods=(HoldPeriod("breathing_space", START),))
    assert evaluate(Step("letter", 30), f, day=START - ONE_DAY).verdict == "send"


@pytest.mark.parametrize(("days_after_end", "blocked"),
                         [(-10, True), (0, True), (29, True), (30, False), (31, False)])
def test_mental_health_crisis_moratorium_runs_30_days_past_the_treatments_end(
    days_after_end: int, blocked: bool
) -> None:
    ended = START + days(100)
    f = gb(hold_periods=(HoldPeriod("mental_health_crisis", START, ended),))
    v = evaluate(sms(zone=LONDON), f, day=ended + days(days_after_end))
    assert (v.verdict == "block") is blocked
    if blocked:
        assert v.reasons == ("gb.mental_health_crisis",)


def test_mental_health_crisis_moratorium_without_an_end_has_no_end() -> None:
    f = gb(hold_periods=(HoldPeriod("mental_health_crisis", START),))
    assert evaluate(Step("letter", 30), f, day=START + days(400)).reasons == (
        "gb.mental_health_crisis",)  # fmt: skip


def test_uk_moratoriums_do_not_apply_elsewhere() -> None:
    f = cn(hold_periods=(HoldPeriod("breathing_space", START),))
    assert evaluate(Step("letter", 30), f, day=START + days(5)).verdict == "send"


@pytest.mark.parametrize(
    ("step", "verdict"),
    [(sms(zone=LONDON), "block"), (Step("email", 20), "block"), (Step("letter", 30), "block"),
     (call(zone=LONDON), "send")],
)
def test_vulnerable_customer_gets_a_person_not_automated_contact(step: Step, verdict: str) -> None:
    v = evaluate(step, gb(holds=frozenset({"vulnerable"})), day=DAY)
    assert v.verdict == verdict
    if verdict == "block":
        assert v.reasons == ("gb.vulnerable_customer",)


def test_a_daily_limit_also_reached_on_later_days_defers_past_them() -> None:
    # Facts loaded after the judged day (an explain of a past day) may hold later attempts: the
    # deferral goes to the first day with room, not an error.
    later = unanswered(6) + unanswered(6, day=DAY + ONE_DAY) + unanswered(6, day=DAY + 2 * ONE_DAY)
    v = evaluate(call(), cn(history=later), day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("cn.unanswered_attempts_daily",))
    # The daily limit has room on DAY+3, but by then the 18 attempts fill the house 7-in-7 cap
    # until the seven days ending DAY+8 hold only DAY+2's six: the first allowed instant.
    assert v.defer_until == local(DAY + 8 * ONE_DAY, 8)
