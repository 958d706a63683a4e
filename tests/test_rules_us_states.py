"""US state and city rules at their boundaries: Massachusetts, New York City, Washington and
California (the Rosenthal Act's federal conduct rules for first-party creditors)."""

from __future__ import annotations

import datetime as dt

import pytest

from policies.gate import evaluate
from policies.model import AccountFacts, PastContact, Step
from policies.windows import local_to_utc

NY = "America/New_York"
LA = "America/Los_Angeles"
SEATTLE = "America/Los_Angeles"
DAY = dt.date(2026, 11, 23)  # a Monday
ONE_DAY = dt.timedelta(days=1)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def local(day: dt.date, hh: int, mm: int = 0, zone: str = NY) -> dt.datetime:
    return local_to_utc(day, hh, mm, zone)


def facts(region: str, zone: str = NY, **kw: object) -> AccountFacts:
    base: dict[str, object] = dict(
        account_id=1, country="US", region=region, past_due=100.0, balance=5000.0,
        final_notice_sent=dt.date(2020, 1, 1), address_zones=(zone,)
    )
    base.update(kw)
    return AccountFacts(**base)  # type: ignore[arg-type]


def phone_step(channel: str, cp: int = 10, phone_type: str | None = "mobile", zone: str = NY,
               **kw: object) -> Step:  # fmt: skip
    base: dict[str, object] = dict(phone_type=phone_type, consent=True)
    base.update(kw)
    return Step(channel, cp, (zone,), **base)  # type: ignore[arg-type]


def past(day: dt.date, channel: str = "call", outcome: str = "no_answer", cp: int = 10,
         phone_type: str | None = "mobile", workplace: bool = False, zone: str = NY,
         hh: int = 11) -> PastContact:  # fmt: skip
    return PastContact(local(day, hh, zone=zone), channel, outcome, cp, phone_type, workplace)


# --- Massachusetts (940 CMR 7.04(1)(f)) ---------------------------------------------------------


@pytest.mark.parametrize("channel", ["call", "sms"])
def test_massachusetts_third_call_or_text_to_a_personal_number_in_seven_days_is_deferred(
    channel: str,
) -> None:
    two = (past(DAY - days(6), "call"), past(DAY - days(2), "sms", "delivered"))
    v = evaluate(phone_step(channel), facts("MA", history=two), day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("us_ma.personal_phone_2in7",))
    # The contact of DAY-6 leaves the seven days at the next local midnight: 08:00 then.
    assert v.defer_until == local(DAY + ONE_DAY, 8)
    assert evaluate(phone_step(channel), facts("MA", history=two[1:]), day=DAY).verdict == "send"


def test_massachusetts_personal_cap_counts_every_personal_number_together() -> None:
    two = (past(DAY - days(1), cp=10, phone_type="mobile"),
           past(DAY - days(1), cp=11, phone_type="landline"))  # fmt: skip
    v = evaluate(phone_step("call", cp=12, phone_type="landline"), facts("MA", history=two), day=DAY)
    assert v.reasons == ("us_ma.personal_phone_2in7",)


def test_massachusetts_personal_cap_forgets_contacts_seven_days_back() -> None:
    two = (past(DAY - days(7)), past(DAY - days(1)))
    assert evaluate(phone_step("call"), facts("MA", history=two), day=DAY).verdict == "send"


def test_massachusetts_third_call_to_a_work_number_in_thirty_days_is_deferred() -> None:
    work = dict(cp=20, phone_type="work", workplace=True)
    two = (past(DAY - days(29), **work), past(DAY - days(10), **work))  # type: ignore[arg-type]
    step = phone_step("call", cp=20, phone_type="work", is_workplace=True)
    v = evaluate(step, facts("MA", history=two), day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("us_ma.other_phone_2in30",))
    assert v.defer_until == local(DAY + ONE_DAY, 8)
    older = (past(DAY - days(30), **work), past(DAY - days(10), **work))  # type: ignore[arg-type]
    assert evaluate(step, facts("MA", history=older), day=DAY).verdict == "send"


def test_massachusetts_personal_and_work_numbers_have_separate_caps() -> None:
    personal = (past(DAY - days(1)), past(DAY - days(2)))
    work_step = phone_step("call", cp=20, phone_type="work", is_workplace=True)
    assert evaluate(work_step, facts("MA", history=personal), day=DAY).verdict == "send"
    work = tuple(past(DAY - days(d), cp=20, phone_type="work", workplace=True) for d in (3, 20))
    assert evaluate(phone_step("call"), facts("MA", history=work), day=DAY).verdict == "send"


def test_massachusetts_caps_do_not_cover_email_and_letters() -> None:
    two = (past(DAY - days(1)), past(DAY - days(2)))
    f = facts("MA", history=two)
    assert evaluate(Step("email", 30), f, day=DAY).verdict == "send"
    assert evaluate(Step("letter", 40), f, day=DAY).verdict == "send"
    emails = tuple(past(DAY - days(d), "email", "sent", cp=30, phone_type=None) for d in (1, 2))
    assert evaluate(phone_step("sms"), facts("MA", history=emails), day=DAY).verdict == "send"


def test_massachusetts_caps_apply_to_creditors_too() -> None:
    two = (past(DAY - days(1)), past(DAY - days(2)))
    v = evaluate(phone_step("call"), facts("MA", history=two, role="creditor"), day=DAY)
    assert v.reasons == ("us_ma.personal_phone_2in7",)


def test_massachusetts_number_of_unknown_type_is_capped() -> None:
    # Whether personal or not, one of the caps covers it: both apply until the type is known.
    two = (past(DAY - days(1), phone_type=None), past(DAY - days(2), phone_type=None))
    v = evaluate(phone_step("call", phone_type=None), facts("MA", history=two), day=DAY)
    assert v.verdict == "defer"
    assert set(v.reasons) == {"us_ma.personal_phone_2in7", "us_ma.other_phone_2in30"}
    month = (past(DAY - days(25), phone_type=None), past(DAY - days(20), phone_type=None))
    v = evaluate(phone_step("sms", phone_type=None), facts("MA", history=month), day=DAY)
    assert v.reasons == ("us_ma.other_phone_2in30",)


def test_massachusetts_rules_stay_in_massachusetts() -> None:
    two = (past(DAY - days(1)), past(DAY - days(2)))
    assert evaluate(phone_step("call"), facts("NH", history=two), day=DAY).verdict == "send"


# --- New York City (6 RCNY 5-77) ----------------------------------------------------------------


def three_contacts() -> tuple[PastContact, ...]:
    return (past(DAY - days(6), "call", "no_answer"), past(DAY - days(3), "sms", "delivered"),
            past(DAY - days(1), "email", "sent", cp=30, phone_type=None))  # fmt: skip


@pytest.mark.parametrize("city", ["Brooklyn", "brooklyn ", "New York", "Manhattan", "Queens",
                                  "The Bronx", "Staten Island"])  # fmt: skip
def test_nyc_fourth_contact_in_seven_days_is_deferred(city: str) -> None:
    f = facts("NY", city=city, history=three_contacts())
    for step in (phone_step("call"), phone_step("sms"), Step("email", 30, consent=True),
                 Step("letter", 40)):  # fmt: skip
        v = evaluate(step, f, day=DAY)
        assert (v.verdict, v.reasons) == ("defer", ("us_nyc.contacts_3in7",)), (city, step.channel)
        # A letter has no hours: from local midnight; the others from 08:00.
        assert v.defer_until == local(DAY + ONE_DAY, 0 if step.channel == "letter" else 8)


def test_nyc_third_contact_in_seven_days_is_allowed() -> None:
    f = facts("NY", city="Brooklyn", history=three_contacts()[1:])
    assert evaluate(phone_step("call"), f, day=DAY).verdict == "send"
    week_old = (past(DAY - days(7)),) + three_contacts()[1:]
    assert evaluate(phone_step("call"), facts("NY", city="Brooklyn", history=week_old),
                    day=DAY).verdict == "send"  # fmt: skip


def test_nyc_letter_window_is_the_local_day_the_cap_was_counted_for() -> None:
    # Three texts eight days back (local): none in DAY's seven days, all in DAY-1's. A letter
    # planned for DAY must not go out on DAY-1 local (as a window of UTC midnights would allow).
    three = tuple(past(DAY - days(7), "sms", "delivered", hh=12) for _ in range(3))
    v = evaluate(Step("letter", 40), facts("NY", city="Brooklyn", history=three), day=DAY)
    assert v.verdict == "send"
    assert (v.window_start, v.window_end) == (local(DAY, 0), local(DAY + ONE_DAY, 0))
    dated_day_before = evaluate(Step("letter", 40), facts("NY", city="Brooklyn", history=three),
                                day=DAY - ONE_DAY)  # fmt: skip
    assert dated_day_before.reasons == ("us_nyc.contacts_3in7",)


def test_nyc_rules_do_not_reach_buffalo() -> None:
    f = facts("NY", city="Buffalo", history=three_contacts())
    assert evaluate(phone_step("call"), f, day=DAY).verdict == "send"
    assert evaluate(Step("email", 30, consent=False), f, day=DAY).verdict == "send"


def test_nyc_rules_bind_collectors_not_creditors() -> None:
    f = facts("NY", city="Brooklyn", history=three_contacts(), role="creditor")
    assert evaluate(phone_step("call"), f, day=DAY).verdict == "send"


@pytest.mark.parametrize(
    ("step", "verdict"),
    [
        (Step("email", 30, consent=False), "block"),
        (Step("email", 30, consent=True), "send"),
        (Step("sms", 10, (NY,), phone_type="landline", consent=False), "block"),
        (Step("sms", 10, (NY,), phone_type="landline", consent=True), "send"),
        (Step("call", 10, (NY,), phone_type="landline", consent=False), "send"),
        (Step("letter", 40), "send"),
    ],
)
def test_nyc_texts_and_emails_need_consent(step: Step, verdict: str) -> None:
    v = evaluate(step, facts("NY", city="Brooklyn"), day=DAY)
    assert v.verdict == verdict
    if verdict == "block":
        assert v.reasons == ("us_nyc.electronic_consent",)


# --- Washington (RCW 19.16.250) -----------------------------------------------------------------


def test_washington_fourth_communication_in_a_week_is_deferred() -> None:
    three = (past(DAY - days(5), "call", "conversation", zone=SEATTLE),
             past(DAY - days(3), "call", "voicemail", zone=SEATTLE),
             past(DAY - days(1), "sms", "delivered", zone=SEATTLE))  # fmt: skip
    f = facts("WA", zone=SEATTLE, history=three)
    v = evaluate(Step("letter", 40), f, day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("us_wa.communications_3_per_week",))
    assert v.defer_until == local(DAY - days(5) + days(7), 0, zone=SEATTLE)
    assert evaluate(Step("letter", 40), facts("WA", zone=SEATTLE, history=three[1:]),
                    day=DAY).verdict == "send"  # fmt: skip


def test_washington_unanswered_calls_are_not_communications() -> None:
    history = tuple(past(DAY - days(d), "call", "no_answer", zone=SEATTLE) for d in (1, 2, 3, 4))
    history += (past(DAY - days(1), "sms", "delivered", zone=SEATTLE),
                past(DAY - days(2), "email", "sent", cp=30, phone_type=None, zone=SEATTLE))  # fmt: skip
    v = evaluate(Step("letter", 40), facts("WA", zone=SEATTLE, history=history), day=DAY)
    assert v.verdict == "send"


def test_washington_second_communication_at_work_in_a_week_is_deferred() -> None:
    at_work = (past(DAY - days(4), "sms", "delivered", cp=20, phone_type="work", workplace=True,
                    zone=SEATTLE),)  # fmt: skip
    f = facts("WA", zone=SEATTLE, history=at_work)
    step = phone_step("call", cp=20, phone_type="work", zone=SEATTLE, is_workplace=True)
    v = evaluate(step, f, day=DAY)
    assert (v.verdict, v.reasons) == ("defer", ("us_wa.workplace_1_per_week",))
    work_email = Step("email", 31, is_workplace=True, used_by_consumer=True)
    assert evaluate(work_email, f, day=DAY).reasons == ("us_wa.workplace_1_per_week",)
    # A personal number is not the workplace.
    assert evaluate(phone_step("call", zone=SEATTLE), f, day=DAY).verdict == "send"
    # A week later the workplace is open again.
    assert evaluate(step, f, day=DAY + days(3)).verdict == "send"


def test_washington_rules_bind_collection_agencies_not_creditors() -> None:
    three = tuple(past(DAY - days(d), "sms", "delivered", zone=SEATTLE) for d in (1, 2, 3))
    assert evaluate(Step("letter", 40), facts("WA", zone=SEATTLE, history=three,
                                              role="creditor"), day=DAY).verdict == "send"  # fmt: skip


# --- California (Rosenthal Act, Cal. Civ. Code 1788) --------------------------------------------


def test_california_creditor_gets_the_california_codes() -> None:
    f = facts("CA", zone=LA, role="creditor")
    early = evaluate(phone_step("call", zone=LA), f, day=DAY, at=local(DAY, 7, 59, zone=LA))
    assert early.reasons == ("us_ca.inconvenient_time",)
    seven = tuple(past(DAY - days(1 + i % 6), zone=LA) for i in range(7))
    capped = evaluate(phone_step("call", zone=LA), facts("CA", zone=LA, role="creditor",
                                                         history=seven), day=DAY)  # fmt: skip
    assert capped.reasons == ("us_ca.call_frequency_7in7",)
    talked = facts("CA", zone=LA, role="creditor", last_conversation=local(DAY, 9, zone=LA))
    assert evaluate(phone_step("call", zone=LA), talked, day=DAY).reasons == (
        "us_ca.call_after_conversation",)  # fmt: skip
    ceased = facts("CA", zone=LA, role="creditor", holds=frozenset({"cease_communication"}))
    assert evaluate(Step("letter", 40), ceased, day=DAY).reasons == ("us_ca.cease_communication",)
    assert evaluate(Step("letter", 40, purpose="termination_notice"), ceased, day=DAY).verdict \
        == "send"  # fmt: skip
    forbidden = phone_step("call", zone=LA, phone_type="work", no_calls_at_work=True)
    assert evaluate(forbidden, f, day=DAY).reasons == ("us_ca.workplace_call_prohibited",)
    assert "us_ca@" in evaluate(Step("letter", 40), f, day=DAY).pack_versions


def test_california_collector_gets_regulation_f_not_the_california_pack() -> None:
    f = facts("CA", zone=LA)
    early = evaluate(phone_step("call", zone=LA), f, day=DAY, at=local(DAY, 7, 59, zone=LA))
    assert early.reasons == ("us_reg_f.inconvenient_time",)
    versions = evaluate(Step("letter", 40), f, day=DAY).pack_versions
    assert "us_reg_f@" in versions and "us_ca@" not in versions


def test_a_creditor_outside_california_gets_the_house_rules() -> None:
    f = facts("NV", zone=LA, role="creditor")
    early = evaluate(phone_step("call", zone=LA), f, day=DAY, at=local(DAY, 7, 59, zone=LA))
    assert early.reasons == ("core.quiet_hours",)
