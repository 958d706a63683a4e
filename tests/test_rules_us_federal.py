"""US federal rules at their boundaries: Regulation F (12 CFR part 1006) for a third-party
collector, the TCPA for texts and automated calls to mobiles, the SCRA before a suit.

Days are the consumer's local days; instants are naive UTC, built from local clock times with
zoneinfo so that DST is whatever the tz database says.
"""

from __future__ import annotations

import datetime as dt

import pytest

from policies.calendar import add_business_days, validation_period
from policies.gate import evaluate
from policies.model import AccountFacts, HoldPeriod, PastContact, Step
from policies.timeblocks import parse
from policies.windows import local_to_utc

NY = "America/New_York"
CHICAGO = "America/Chicago"
DENVER = "America/Denver"
LA = "America/Los_Angeles"
PHOENIX = "America/Phoenix"
HONOLULU = "Pacific/Honolulu"
DAY = dt.date(2026, 11, 23)  # a Monday, EST (UTC-5)
ONE_DAY = dt.timedelta(days=1)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def facts(**kw: object) -> AccountFacts:
    base: dict[str, object] = dict(
        account_id=1, country="US", region="NY", past_due=100.0, balance=5000.0,
        final_notice_sent=dt.date(2020, 1, 1), address_zones=(NY,)
    )
    base.update(kw)
    return AccountFacts(**base)  # type: ignore[arg-type]


def sms(cp: int = 10, zones: tuple[str, ...] = (NY,), **kw: object) -> Step:
    base: dict[str, object] = dict(phone_type="mobile", consent=True)
    base.update(kw)
    return Step("sms", cp, zones, **base)  # type: ignore[arg-type]


def call(cp: int = 10, zones: tuple[str, ...] = (NY,), **kw: object) -> Step:
    base: dict[str, object] = dict(phone_type="mobile")
    base.update(kw)
    return Step("call", cp, zones, **base)  # type: ignore[arg-type]


def email(cp: int = 20, **kw: object) -> Step:
    return Step("email", cp, **kw)  # type: ignore[arg-type]


def letter(cp: int = 30, **kw: object) -> Step:
    return Step("letter", cp, **kw)  # type: ignore[arg-type]


def legal(**kw: object) -> Step:
    return Step("legal", **kw)  # type: ignore[arg-type]


def local(day: dt.date, hh: int, mm: int = 0, ss: int = 0, zone: str = NY) -> dt.datetime:
    return local_to_utc(day, hh, mm, zone) + dt.timedelta(seconds=ss)


def attempt(day: dt.date, outcome: str = "no_answer", cp: int = 10, hh: int = 10,
            phone_type: str | None = "mobile") -> PastContact:  # fmt: skip
    return PastContact(local(day, hh), "call", outcome, cp, phone_type)


def week_of_attempts(n: int, last_day: dt.date = DAY - ONE_DAY, outcome: str = "no_answer",
                     cps: tuple[int, ...] = (10,)) -> tuple[PastContact, ...]:  # fmt: skip
    """``n`` attempts spread over the 6 days before ``last_day`` + 1 (so all within DAY's 7)."""
    return tuple(
        attempt(last_day - days(i % 6), outcome, cps[i % len(cps)]) for i in range(n)
    )


# --- call frequency (1006.14(b)(2)(i)) ---------------------------------------------------------


def test_seventh_call_in_seven_days_is_allowed() -> None:
    v = evaluate(call(), facts(history=week_of_attempts(6)), day=DAY)
    assert v.verdict == "send"


def test_eighth_call_in_seven_days_is_deferred() -> None:
    history = week_of_attempts(7)
    v = evaluate(call(), facts(history=history), day=DAY)
    assert v.verdict == "defer"
    assert v.reasons == ("us_reg_f.call_frequency_7in7",)
    # The oldest attempt (DAY-6) leaves the 7 days at the next local midnight: 08:00 then.
    assert min(h.at for h in history) < local(DAY - days(5), 0)
    assert v.defer_until == local(DAY + ONE_DAY, 8)
    assert v.evidence()["us_reg_f.call_frequency_7in7"]["facts"]["attempts_in_period"] == 7


def test_eighth_call_is_deferred_in_send_mode_too() -> None:
    history = week_of_attempts(6) + (attempt(DAY, hh=9),)
    v = evaluate(call(), facts(history=history), day=DAY, at=local(DAY, 15))
    assert (v.verdict, v.reasons) == ("defer", ("us_reg_f.call_frequency_7in7",))


def test_attempts_eight_days_back_have_left_the_seven_days() -> None:
    history = tuple(attempt(DAY - days(7)) for _ in range(3)) + week_of_attempts(6)
    assert evaluate(call(), facts(history=history), day=DAY).verdict == "send"
    # One day earlier the three attempts of DAY-7 were inside the seven days.
    v = evaluate(call(), facts(history=history[:3] + week_of_attempts(4, DAY - 2 * ONE_DAY)),
                 day=DAY - ONE_DAY)  # fmt: skip
    assert v.verdict == "defer"


@pytest.mark.parametrize(
    ("outcome", "counted"),
    [("no_answer", True), ("voicemail", True), ("busy", False), ("not_in_service", False)],
)
def test_which_call_outcomes_count_as_attempts(outcome: str, counted: bool) -> None:
    v = evaluate(call(), facts(history=week_of_attempts(7, outcome=outcome)), day=DAY)
    assert v.verdict == ("defer" if counted else "send")


def test_calls_to_every_number_of_the_consumer_count_together() -> None:
    history = week_of_attempts(7, cps=(10, 11, 12))
    for cp in (10, 11, 12, 13):
        v = evaluate(call(cp=cp), facts(history=history), day=DAY)
        assert v.reasons == ("us_reg_f.call_frequency_7in7",), cp


def test_texts_and_emails_are_not_call_attempts() -> None:
    texts = tuple(PastContact(local(DAY - days(i % 6 + 1), 11), "sms", "delivered", 10, "mobile")
                  for i in range(10))  # fmt: skip
    assert evaluate(call(), facts(history=texts + week_of_attempts(6)), day=DAY).verdict == "send"


def test_attempts_are_counted_on_the_consumers_local_days() -> None:
    # 23:30 in New York on DAY-7 is 04:30 UTC on DAY-6: outside the seven local days ending DAY.
    late = tuple(PastContact(local(DAY - days(7), 23, 30), "call", "no_answer", 10)
                 for _ in range(2))  # fmt: skip
    assert late[0].at.date() == DAY - days(6)
    assert evaluate(call(), facts(history=late + week_of_attempts(6)), day=DAY).verdict == "send"


# --- after a conversation (1006.14(b)(2)(ii)) ---------------------------------------------------


@pytest.mark.parametrize(("day_number", "verdict"),
                         [(1, "defer"), (2, "defer"), (7, "defer"), (8, "send"), (9, "send")])
def test_calls_wait_seven_days_after_a_conversation(day_number: int, verdict: str) -> None:
    conversation_day = DAY - days(day_number - 1)  # the conversation's day is day 1
    v = evaluate(call(), facts(last_conversation=local(conversation_day, 14)), day=DAY)
    assert v.verdict == verdict
    if verdict == "defer":
        assert v.reasons == ("us_reg_f.call_after_conversation",)
        assert v.defer_until == local(conversation_day + days(7), 8)


def test_a_late_evening_conversation_counts_on_its_local_day() -> None:
    # 23:00 EST is 04:00 UTC the next day; day 8 is still counted from the local day.
    conversation = local(DAY - days(7), 23)
    assert conversation.date() == DAY - days(6)
    assert evaluate(call(), facts(last_conversation=conversation), day=DAY).verdict == "send"


def test_after_a_conversation_texts_and_letters_still_go() -> None:
    f = facts(last_conversation=local(DAY, 9))
    assert evaluate(sms(), f, day=DAY).verdict == "send"
    assert evaluate(letter(), f, day=DAY).verdict == "send"


# --- time of day (1006.6(b)(1)(i)) --------------------------------------------------------------


@pytest.mark.parametrize("zone", [NY, CHICAGO, DENVER, LA, PHOENIX, HONOLULU])
@pytest.mark.parametrize(
    ("hh", "mm", "ss", "verdict"),
    [(7, 59, 59, "defer"), (8, 0, 0, "send"), (20, 59, 59, "send"), (21, 0, 0, "defer")],
)
def test_send_mode_allows_eight_to_nine_local(zone: str, hh: int, mm: int, ss: int,
                                              verdict: str) -> None:  # fmt: skip
    f = facts(address_zones=(zone,))
    at = local(DAY, hh, mm, ss, zone)
    v = evaluate(sms(zones=(zone,)), f, day=DAY, at=at)
    assert v.verdict == verdict
    if verdict == "defer":
        assert v.reasons == ("us_reg_f.inconvenient_time",)
        # Before 08:00: that morning's 08:00; from 21:00: the next morning's.
        expected = local(DAY, 8, zone=zone) if hh < 8 else local(DAY + ONE_DAY, 8, zone=zone)
        assert v.defer_until == expected
    else:
        assert v.window_start == local(DAY, 8, zone=zone)
        assert v.window_end == local(DAY, 21, zone=zone)


@pytest.mark.parametrize(
    ("day", "morning", "evening"),
    [
        (dt.date(2026, 10, 29), "send", "defer"),  # EDT: 12:30 UTC is 08:30, 01:30 UTC is 21:30
        (dt.date(2026, 10, 30), "send", "defer"),
        (dt.date(2026, 10, 31), "send", "defer"),
        (dt.date(2026, 11, 1), "defer", "send"),  # EST from 02:00 local on Sunday
        (dt.date(2026, 11, 2), "defer", "send"),  # EST: 12:30 UTC is 07:30, 01:30 UTC 20:30
        (dt.date(2026, 11, 4), "defer", "send"),
    ],
)
def test_a_send_time_fixed_in_utc_slides_across_the_dst_change(day: dt.date, morning: str,
                                                               evening: str) -> None:  # fmt: skip
    f = facts()
    v = evaluate(sms(), f, day=day, at=dt.datetime.combine(day, dt.time(12, 30)))
    assert v.verdict == morning
    if morning == "defer":
        assert v.reasons == ("us_reg_f.inconvenient_time",)
        assert v.defer_until == dt.datetime.combine(day, dt.time(13, 0))  # 08:00 EST
    late = evaluate(sms(), f, day=day, at=dt.datetime.combine(day + ONE_DAY, dt.time(1, 30)))
    assert late.verdict == evening


def test_plan_windows_follow_the_dst_change_in_spring_and_autumn() -> None:
    windows = {
        d: evaluate(sms(), facts(), day=d)
        for d in (dt.date(2026, 3, 7), dt.date(2026, 3, 8), dt.date(2026, 10, 31),
                  dt.date(2026, 11, 1))
    }  # fmt: skip
    hours = {d: (v.window_start.hour, v.window_end.hour) for d, v in windows.items()}  # type: ignore[union-attr]
    assert hours == {
        dt.date(2026, 3, 7): (13, 2),  # EST
        dt.date(2026, 3, 8): (12, 1),  # EDT from 02:00 local
        dt.date(2026, 10, 31): (12, 1),  # EDT
        dt.date(2026, 11, 1): (13, 2),  # EST from 02:00 local
    }


@pytest.mark.parametrize(
    ("address", "phone", "start", "end"),
    [
        (NY, LA, local(DAY, 8, zone=LA), local(DAY, 21, zone=NY)),
        (LA, NY, local(DAY, 8, zone=LA), local(DAY, 21, zone=NY)),
        (CHICAGO, NY, local(DAY, 8, zone=CHICAGO), local(DAY, 21, zone=NY)),
        (NY, HONOLULU, local(DAY, 8, zone=HONOLULU), local(DAY, 21, zone=NY)),
    ],
)
def test_address_in_one_zone_and_phone_in_another_allow_only_common_hours(
    address: str, phone: str, start: dt.datetime, end: dt.datetime
) -> None:
    f = facts(address_zones=(address,))
    v = evaluate(sms(zones=(phone,)), f, day=DAY)
    assert (v.verdict, v.window_start, v.window_end) == ("send", start, end)
    assert evaluate(sms(zones=(phone,)), f, day=DAY, at=start - dt.timedelta(seconds=1)).verdict \
        == "defer"  # fmt: skip
    assert evaluate(sms(zones=(phone,)), f, day=DAY, at=start).verdict == "send"
    assert evaluate(sms(zones=(phone,)), f, day=DAY, at=end - dt.timedelta(seconds=1)).verdict \
        == "send"  # fmt: skip
    assert evaluate(sms(zones=(phone,)), f, day=DAY, at=end).verdict == "defer"


def test_new_york_and_honolulu_at_summer_time_share_only_a_few_hours() -> None:
    july = dt.date(2026, 7, 15)  # New York is UTC-4, Honolulu UTC-10 all year
    v = evaluate(sms(zones=(HONOLULU,)), facts(), day=july)
    assert (v.window_start, v.window_end) == (dt.datetime(2026, 7, 15, 18), dt.datetime(2026, 7, 16, 1))


@pytest.mark.parametrize(("zone", "offset_hours"), [(PHOENIX, 7), (HONOLULU, 10)])
def test_arizona_and_hawaii_have_no_dst(zone: str, offset_hours: int) -> None:
    for day in (dt.date(2026, 1, 15), dt.date(2026, 7, 15), dt.date(2026, 11, 2)):
        v = evaluate(sms(zones=()), facts(address_zones=(zone,)), day=day)
        assert v.window_start == dt.datetime.combine(day, dt.time(8 + offset_hours)), (zone, day)
    # Denver, next door, does move.
    jan = evaluate(sms(zones=()), facts(address_zones=(DENVER,)), day=dt.date(2026, 1, 15))
    jul = evaluate(sms(zones=()), facts(address_zones=(DENVER,)), day=dt.date(2026, 7, 15))
    assert (jan.window_start.hour, jul.window_start.hour) == (15, 14)  # type: ignore[union-attr]


def test_letters_have_no_hours_but_keep_to_the_consumers_local_day() -> None:
    v = evaluate(letter(), facts(), day=DAY)
    assert (v.verdict, v.window_start, v.window_end) == (
        "send", local(DAY, 0), local(DAY + ONE_DAY, 0))  # fmt: skip
    assert v.window_start == dt.datetime(2026, 11, 23, 5)


# --- stated inconvenient times (1006.6(b)(1)(i)) ------------------------------------------------


def test_stated_working_hours_leave_the_evening_as_the_window() -> None:
    f = facts(inconvenient_times=parse("mon-fri 09:00-17:00"))
    v = evaluate(sms(), f, day=DAY)
    # 08:00-09:00 and 17:00-21:00 are allowed; the window is the longest stretch.
    assert (v.verdict, v.window_start, v.window_end) == ("send", local(DAY, 17), local(DAY, 21))


def test_a_send_inside_a_stated_block_is_deferred_to_its_end() -> None:
    f = facts(inconvenient_times=parse("mon-fri 09:00-17:00"))
    v = evaluate(sms(), f, day=DAY, at=local(DAY, 12))
    assert v.verdict == "defer"
    assert v.reasons == ("us_reg_f.consumer_inconvenient_time",)
    assert v.defer_until == local(DAY, 17)
    assert evaluate(sms(), f, day=DAY, at=local(DAY, 8, 30)).verdict == "send"
    assert evaluate(sms(), f, day=DAY, at=local(DAY, 16, 59, 59)).verdict == "defer"
    assert evaluate(sms(), f, day=DAY, at=local(DAY, 17)).verdict == "send"


def test_a_stated_block_on_other_days_leaves_the_day_open() -> None:
    saturday = dt.date(2026, 11, 28)
    v = evaluate(sms(), facts(inconvenient_times=parse("mon-fri 09:00-17:00")), day=saturday)
    assert (v.window_start, v.window_end) == (local(saturday, 8), local(saturday, 21))


def test_a_whole_stated_day_blocks_the_plan() -> None:
    v = evaluate(call(), facts(inconvenient_times=parse("mon")), day=DAY)
    assert (v.verdict, v.reasons) == ("block", ("us_reg_f.consumer_inconvenient_time",))
    assert evaluate(call(), facts(inconvenient_times=parse("mon")), day=DAY + ONE_DAY).verdict \
        == "send"  # fmt: skip


def test_a_creditor_honours_stated_times_under_the_house_rule() -> None:
    v = evaluate(sms(), facts(role="creditor", inconvenient_times=parse("mon")), day=DAY)
    assert v.reasons == ("core.stated_inconvenient_time",)


# --- validation notice and validation period (1006.34, 1006.38) --------------------------------


def test_assumed_receipt_skips_a_holiday_weekend() -> None:
    # Sent Wednesday 2026-11-25; Thanksgiving is Thursday 11-26: Fri, Mon, Tue, Wed, Thu.
    assert validation_period(dt.date(2026, 11, 25), 5, 30) == (
        dt.date(2026, 12, 3), dt.date(2027, 1, 2))  # fmt: skip


def test_assumed_receipt_in_a_plain_week() -> None:
    assert validation_period(dt.date(2026, 11, 2), 5, 30) == (
        dt.date(2026, 11, 9), dt.date(2026, 12, 9))  # fmt: skip


@pytest.mark.parametrize(
    ("sent", "receipt"),
    [
        (dt.date(2027, 1, 15), dt.date(2027, 1, 25)),  # Martin Luther King Jr. Day, Mon 01-18
        (dt.date(2026, 12, 23), dt.date(2026, 12, 31)),  # Christmas Day, Fri 12-25
        # Independence Day on a Saturday: 6103(a) names July 4, so Friday 07-03 (the day
        # observed by federal employees under 6103(b)) is a business day.
        (dt.date(2026, 7, 1), dt.date(2026, 7, 8)),
        (dt.date(2026, 11, 6), dt.date(2026, 11, 16)),  # Veterans Day, Wed 11-11
    ],
)
def test_assumed_receipt_skips_legal_public_holidays(sent: dt.date, receipt: dt.date) -> None:
    assert add_business_days(sent, 5) == receipt


def test_legal_referral_waits_until_the_validation_period_ends() -> None:
    sent = dt.date(2026, 11, 25)  # period ends 2027-01-02
    f = facts(validation_notice_sent=sent, scra_checked_on=dt.date(2026, 12, 31))
    v = evaluate(legal(), f, day=dt.date(2027, 1, 2))
    assert (v.verdict, v.reasons) == ("defer", ("us_reg_f.validation_period_open",))
    assert v.defer_until == local(dt.date(2027, 1, 3), 0)
    assert evaluate(legal(), f, day=dt.date(2027, 1, 3)).verdict == "send"


def test_legal_referral_without_a_validation_notice_date_is_blocked() -> None:
    v = evaluate(legal(), facts(scra_checked_on=DAY), day=DAY)
    assert v.reasons == ("us_reg_f.validation_period_open",)
    assert v.verdict == "block"


NOTICE_SENT = dt.date(2026, 11, 2)  # receipt 11-09, the period ends 12-09


def disputed(received: dt.date, kind: str = "dispute", **kw: object) -> AccountFacts:
    return facts(holds=frozenset({kind}), hold_periods=(HoldPeriod(kind, received),),
                 validation_notice_sent=NOTICE_SENT, **kw)  # fmt: skip


@pytest.mark.parametrize("kind", ["dispute", "original_creditor_request"])
def test_dispute_on_day_34_is_within_the_validation_period_and_stops_collection(
    kind: str,
) -> None:
    received = NOTICE_SENT + days(34)  # 12-06
    judged = NOTICE_SENT + days(41)  # after the period: still stopped until verification
    for step in (sms(), call(), email(), letter(), Step("agency"), legal()):
        v = evaluate(step, disputed(received, kind), day=judged)
        assert v.verdict == "block", step.channel
        assert "us_reg_f.dispute_in_validation_period" in v.reasons
    ev = evaluate(sms(), disputed(received, kind), day=judged).evidence()
    assert ev["us_reg_f.dispute_in_validation_period"]["facts"]["received_on"] == "2026-12-06"
    assert ev["us_reg_f.dispute_in_validation_period"]["facts"]["validation_period_ends"] == (
        "2026-12-09")  # fmt: skip


def test_dispute_on_day_40_is_outside_the_validation_period_and_does_not_stop_it() -> None:
    received = NOTICE_SENT + days(40)  # 12-12
    v = evaluate(sms(), disputed(received), day=NOTICE_SENT + days(41))
    assert v.verdict == "send"
    evidence = v.evidence()["us_reg_f.dispute_in_validation_period"]
    assert evidence["outcome"] == "pass"
    assert evidence["facts"]["within"] is False


@pytest.mark.parametrize(("received", "blocked"),
                         [(dt.date(2026, 12, 9), True), (dt.date(2026, 12, 10), False)])
def test_dispute_on_the_last_day_of_the_period_is_within_it(received: dt.date,
                                                            blocked: bool) -> None:  # fmt: skip
    v = evaluate(sms(), disputed(received), day=dt.date(2026, 12, 11))
    assert (v.verdict == "block") is blocked


def test_a_first_party_creditor_stops_for_any_open_dispute() -> None:
    v = evaluate(sms(), disputed(NOTICE_SENT + days(40), role="creditor"), day=NOTICE_SENT + days(41))
    assert v.reasons == ("core.dispute_open",)


def test_verification_may_be_sent_during_a_dispute() -> None:
    # The dispute's open verification task: the kernel's facts give it as verification_due
    # (without it, core.verification_not_due keeps the letter back).
    f = facts(holds=frozenset({"dispute", "verification_due"}),
              hold_periods=(HoldPeriod("dispute", NOTICE_SENT + days(10)),),
              validation_notice_sent=NOTICE_SENT)  # fmt: skip
    assert evaluate(letter(purpose="verification"), f, day=NOTICE_SENT + days(12)).verdict == "send"
    assert evaluate(letter(purpose="reminder"), f, day=NOTICE_SENT + days(12)).verdict == "block"
    none_due = disputed(NOTICE_SENT + days(10))
    assert evaluate(letter(purpose="verification"), none_due, day=NOTICE_SENT + days(12)
                    ).reasons == ("core.verification_not_due",)  # fmt: skip


def test_a_dispute_whose_verification_was_sent_no_longer_stops_collection() -> None:
    f = facts(hold_periods=(HoldPeriod("dispute", dt.date(2026, 11, 20), dt.date(2026, 11, 30)),),
              validation_notice_sent=NOTICE_SENT)  # fmt: skip
    assert evaluate(sms(), f, day=dt.date(2026, 11, 29)).verdict == "block"
    assert evaluate(sms(), f, day=dt.date(2026, 11, 30)).verdict == "send"


def test_a_dispute_without_the_notices_date_is_taken_as_within_the_period() -> None:
    f = facts(holds=frozenset({"dispute"}))
    v = evaluate(sms(), f, day=DAY)
    assert v.reasons == ("us_reg_f.dispute_in_validation_period",)


@pytest.mark.parametrize(("days_since_initial", "verdict"),
                         [(0, "send"), (5, "send"), (6, "block"), (30, "block")])
def test_validation_notice_is_due_five_days_after_the_initial_communication(
    days_since_initial: int, verdict: str
) -> None:
    f = facts(initial_communication=DAY - days(days_since_initial))
    v = evaluate(sms(), f, day=DAY)
    assert v.verdict == verdict
    if verdict == "block":
        assert v.reasons == ("us_reg_f.validation_notice_overdue",)
        assert v.evidence()["us_reg_f.validation_notice_overdue"]["facts"]["deadline"] == str(
            DAY - days(days_since_initial) + days(5))  # fmt: skip


def test_an_overdue_validation_notice_itself_may_still_go_out() -> None:
    f = facts(initial_communication=DAY - days(9))
    assert evaluate(letter(purpose="validation_notice"), f, day=DAY).verdict == "send"
    sent = facts(initial_communication=DAY - days(9), validation_notice_sent=DAY - days(1))
    assert evaluate(sms(), sent, day=DAY).verdict == "send"


# --- cease, attorney, deceased (1006.6) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "verdict"),
    [("reminder", "block"), ("final_notice", "block"), ("instalment_offer", "block"),
     ("termination_notice", "send"), ("remedy_notice", "send")],
)
def test_after_a_cease_request_only_the_permitted_notices_go(purpose: str, verdict: str) -> None:
    f = facts(holds=frozenset({"cease_communication"}))
    for step in (letter(purpose=purpose), email(purpose=purpose), sms(purpose=purpose)):
        v = evaluate(step, f, day=DAY)
        assert v.verdict == verdict, (step.channel, purpose)
        if verdict == "block":
            assert v.reasons == ("us_reg_f.cease_communication",)


def test_a_cease_request_does_not_stop_a_legal_referral() -> None:
    f = facts(holds=frozenset({"cease_communication"}), validation_notice_sent=dt.date(2026, 9, 1),
              scra_checked_on=DAY)  # fmt: skip
    assert evaluate(legal(), f, day=DAY).verdict == "send"


def test_an_attorney_stops_contact_with_the_consumer() -> None:
    f = facts(holds=frozenset({"attorney"}))
    for step in (sms(), call(), email(), letter()):
        assert evaluate(step, f, day=DAY).reasons == ("core.attorney_represented",)


def test_deceased_consumer_only_the_estate_representative_is_contacted() -> None:
    f = facts(holds=frozenset({"deceased"}))
    assert evaluate(letter(), f, day=DAY).reasons == ("core.deceased",)
    assert evaluate(call(), f, day=DAY).reasons == ("core.deceased",)
    estate = letter(relation="estate_representative")
    assert evaluate(estate, f, day=DAY).verdict == "send"
    assert evaluate(call(relation="estate_representative"), f, day=DAY).verdict == "send"


def test_an_emergency_contact_is_only_for_locating_an_unreachable_consumer() -> None:
    third = call(relation="emergency_contact", purpose="locate")
    assert evaluate(third, facts(reachable_destinations=0), day=DAY).verdict == "send"
    assert evaluate(third, facts(reachable_destinations=1), day=DAY).reasons == (
        "core.third_party_contact",)  # fmt: skip
    reminder = call(relation="emergency_contact", purpose="reminder")
    assert evaluate(reminder, facts(reachable_destinations=0), day=DAY).reasons == (
        "core.third_party_contact",)  # fmt: skip


# --- workplace (1006.6(b)(3), 1006.22(f)(3)) ----------------------------------------------------


@pytest.mark.parametrize(
    ("is_workplace", "used_by_consumer", "verdict"),
    [(True, False, "block"), (True, True, "send"), (False, False, "send")],
)
def test_workplace_email_needs_the_consumers_use_or_agreement(
    is_workplace: bool, used_by_consumer: bool, verdict: str
) -> None:
    step = email(is_workplace=is_workplace, used_by_consumer=used_by_consumer)
    v = evaluate(step, facts(), day=DAY)
    assert v.verdict == verdict
    if verdict == "block":
        assert v.reasons == ("us_reg_f.workplace_email",)


def test_no_call_to_a_workplace_whose_employer_forbids_it() -> None:
    step = call(phone_type="work", is_workplace=True, no_calls_at_work=True)
    assert evaluate(step, facts(), day=DAY).reasons == ("us_reg_f.workplace_call_prohibited",)
    allowed = call(phone_type="work", is_workplace=True)
    assert evaluate(allowed, facts(), day=DAY).verdict == "send"


# --- time-barred debts (1006.26(b)) -------------------------------------------------------------


def test_time_barred_debt_no_suit_from_the_limitation_date() -> None:
    f = facts(limitation_date=DAY, validation_notice_sent=dt.date(2026, 9, 1),
              scra_checked_on=DAY - days(2))  # fmt: skip
    v = evaluate(legal(), f, day=DAY)
    assert (v.verdict, v.reasons) == ("block", ("core.time_barred",))
    assert evaluate(legal(), f, day=DAY - ONE_DAY).verdict == "send"


def test_time_barred_debt_no_threat_of_suit_but_other_letters_go() -> None:
    f = facts(limitation_date=DAY)
    assert evaluate(letter(threatens_suit=True), f, day=DAY).reasons == ("core.time_barred",)
    assert evaluate(letter(threatens_suit=True), f, day=DAY - ONE_DAY).verdict == "send"
    assert evaluate(letter(), f, day=DAY + days(100)).verdict == "send"


# --- SCRA ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checked_on", "active_duty", "verdict"),
    [(None, False, "block"), (DAY, False, "send"), (DAY - days(30), False, "send"),
     (DAY - days(31), False, "block"), (DAY, True, "block"), (DAY + ONE_DAY, False, "block")],
)
def test_legal_referral_needs_a_military_status_check_within_30_days(
    checked_on: dt.date | None, active_duty: bool, verdict: str
) -> None:
    f = facts(scra_checked_on=checked_on, scra_active_duty=active_duty,
              validation_notice_sent=dt.date(2026, 9, 1))  # fmt: skip
    v = evaluate(legal(), f, day=DAY)
    assert v.verdict == verdict
    if verdict == "block":
        assert v.reasons == ("us_scra.military_status",)


def test_military_status_does_not_affect_other_channels() -> None:
    assert evaluate(letter(), facts(scra_active_duty=True), day=DAY).verdict == "send"


# --- TCPA ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["collector", "creditor"])
def test_text_to_a_mobile_needs_consent(role: str) -> None:
    v = evaluate(sms(consent=False), facts(role=role), day=DAY)
    assert (v.verdict, v.reasons) == ("block", ("us_tcpa.mobile_consent",))
    assert evaluate(sms(consent=True), facts(role=role), day=DAY).verdict == "send"


def test_text_to_a_landline_is_not_covered() -> None:
    assert evaluate(sms(phone_type="landline", consent=False), facts(), day=DAY).verdict == "send"


def test_text_to_a_number_of_unknown_type_is_taken_as_a_mobile() -> None:
    # Texts reach mobiles: without knowing the line is not wireless, consent is needed.
    v = evaluate(sms(phone_type=None, consent=False), facts(), day=DAY)
    assert v.reasons == ("us_tcpa.mobile_consent",)
    assert evaluate(sms(phone_type=None, consent=True), facts(), day=DAY).verdict == "send"


@pytest.mark.parametrize(
    ("dialer", "consent", "verdict"),
    [("manual", False, "send"), ("autodialed", False, "block"), ("prerecorded", False, "block"),
     ("autodialed", True, "send"), ("prerecorded", True, "send")],
)
def test_call_to_a_mobile_needs_consent_only_when_automated(dialer: str, consent: bool,
                                                            verdict: str) -> None:  # fmt: skip
    v = evaluate(call(dialer=dialer, consent=consent), facts(), day=DAY)
    assert v.verdict == verdict
    if verdict == "block":
        assert v.reasons == ("us_tcpa.mobile_consent",)


def test_autodialed_call_to_a_landline_is_not_covered() -> None:
    step = call(phone_type="landline", dialer="autodialed", consent=False)
    assert evaluate(step, facts(), day=DAY).verdict == "send"


def test_tcpa_version_in_force_is_recorded() -> None:
    assert "us_tcpa@2025.04.11" in evaluate(sms(), facts(), day=DAY).pack_versions
    old = evaluate(sms(), facts(), day=dt.date(2024, 6, 3))
    assert "us_tcpa@1992.12.20" in old.pack_versions


# --- credit reporting (1006.30(a)(1)) -----------------------------------------------------------


def report() -> Step:
    return Step("letter", 30, purpose="credit_report")


def sent(day: dt.date, channel: str = "letter", outcome: str = "sent", cp: int = 30) -> PastContact:
    return PastContact(local(day, 12), channel, outcome, cp)


@pytest.mark.parametrize(("days_ago", "verdict"), [(13, "defer"), (14, "send"), (20, "send")])
def test_credit_reporting_waits_14_days_after_a_letter(days_ago: int, verdict: str) -> None:
    v = evaluate(report(), facts(history=(sent(DAY - days(days_ago)),)), day=DAY)
    assert v.verdict == verdict
    if verdict == "defer":
        assert v.reasons == ("us_reg_f.credit_reporting_before_contact",)
        assert v.defer_until == local(DAY + ONE_DAY, 0)


def test_credit_reporting_after_an_email_delivered_14_days_ago() -> None:
    history = (sent(DAY - days(14), "email", "delivered", cp=20),)
    assert evaluate(report(), facts(history=history), day=DAY).verdict == "send"


def test_credit_reporting_does_not_rely_on_a_bounced_message() -> None:
    history = (sent(DAY - days(20), "email", "sent", cp=20),
               sent(DAY - days(19), "email", "bounced", cp=20))  # fmt: skip
    v = evaluate(report(), facts(history=history), day=DAY)
    assert (v.verdict, v.reasons) == ("block", ("us_reg_f.credit_reporting_before_contact",))


def test_credit_reporting_after_a_conversation() -> None:
    f = facts(last_conversation=local(DAY - ONE_DAY, 10))
    assert evaluate(report(), f, day=DAY).verdict == "send"


def test_credit_reporting_with_no_prior_contact_is_blocked() -> None:
    assert evaluate(report(), facts(), day=DAY).reasons == (
        "us_reg_f.credit_reporting_before_contact",)  # fmt: skip
