"""The policy gate at its boundaries: local hours, DST, several zones, call caps, holds, opt-outs."""

from __future__ import annotations

import datetime as dt

import pytest

from policies.codes import REASON_CODES
from policies.gate import evaluate
from policies.model import AccountFacts, PastContact, Step
from policies.packs import all_packs, jurisdiction, rules_for, validate_packs
from policies.windows import local_to_utc

NY = "America/New_York"
LA = "America/Los_Angeles"
DAY = dt.date(2026, 11, 23)  # a Monday, EST (UTC-5)
US_NY = jurisdiction("US", "NY", None, "credit_card", "collector")
CN_BJ = jurisdiction("CN", "BJ", None, "credit_card", "collector")


def us(**kw) -> AccountFacts:  # type: ignore[no-untyped-def]
    base = dict(account_id=1, country="US", region="NY", past_due=100.0, address_zones=(NY,))
    base.update(kw)
    return AccountFacts(**base)  # type: ignore[arg-type]


def sms(cp: int = 10, zones: tuple[str, ...] = (NY,)) -> Step:
    # A mobile the consumer consented to text (TCPA blocks a text to a mobile without consent).
    return Step("sms", cp, zones, phone_type="mobile", consent=True)


def call(cp: int = 10, zones: tuple[str, ...] = (NY,)) -> Step:
    return Step("call", cp, zones, phone_type="mobile")


def local(day: dt.date, hh: int, mm: int, ss: int, zone: str = NY) -> dt.datetime:
    return local_to_utc(day, hh, mm, zone) + dt.timedelta(seconds=ss)


def test_packs_validate_and_every_rule_has_a_documented_code() -> None:
    assert validate_packs() == []
    for pack in all_packs():
        for rule in pack.rules:
            assert rule.rule_id in REASON_CODES, rule.rule_id


def test_plan_window_is_eight_to_nine_local_in_utc() -> None:
    v = evaluate(sms(), us(), day=DAY)
    assert v.verdict == "send"
    assert v.window_start == dt.datetime(2026, 11, 23, 13, 0)
    assert v.window_end == dt.datetime(2026, 11, 24, 2, 0)


@pytest.mark.parametrize(
    ("hh", "mm", "ss", "verdict"),
    [(7, 59, 59, "defer"), (8, 0, 0, "send"), (20, 59, 59, "send"), (21, 0, 0, "defer")],
)
def test_send_time_boundaries_in_local_time(hh: int, mm: int, ss: int, verdict: str) -> None:
    v = evaluate(sms(), us(), day=DAY, at=local(DAY, hh, mm, ss))
    assert v.verdict == verdict
    if verdict == "defer":
        assert v.reasons == ("us_reg_f.inconvenient_time",)
        assert v.defer_until is not None and v.defer_until > local(DAY, hh, mm, ss)


def test_dst_week_moves_the_window_and_refuses_a_fixed_utc_time() -> None:
    saturday, monday = dt.date(2026, 10, 31), dt.date(2026, 11, 2)  # DST ends 2026-11-01
    before = evaluate(sms(), us(), day=saturday)
    after = evaluate(sms(), us(), day=monday)
    assert before.window_start == dt.datetime(2026, 10, 31, 12, 0)  # 08:00 EDT
    assert after.window_start == dt.datetime(2026, 11, 2, 13, 0)  # 08:00 EST
    fixed = dt.time(12, 30)  # 08:30 EDT on Saturday, 07:30 EST on Monday
    assert evaluate(sms(), us(), day=saturday,
                    at=dt.datetime.combine(saturday, fixed)).verdict == "send"  # fmt: skip
    refused = evaluate(sms(), us(), day=monday, at=dt.datetime.combine(monday, fixed))
    assert refused.verdict == "defer"
    assert refused.reasons == ("us_reg_f.inconvenient_time",)


def test_address_and_phone_in_two_zones_allow_only_common_hours() -> None:
    v = evaluate(sms(zones=(LA,)), us(), day=DAY)
    assert v.verdict == "send"
    assert v.window_start == dt.datetime(2026, 11, 23, 16, 0)  # 08:00 in Los Angeles
    assert v.window_end == dt.datetime(2026, 11, 24, 2, 0)  # 21:00 in New York
    assert v.evidence()["us_reg_f.inconvenient_time"]["facts"]["zones"] == [NY, LA]
    # 08:30 in New York is 05:30 in Los Angeles: refused.
    assert evaluate(sms(zones=(LA,)), us(), day=DAY, at=local(DAY, 8, 30, 0)).verdict == "defer"


def test_arizona_and_hawaii_keep_standard_time_all_year() -> None:
    july = dt.date(2026, 7, 15)
    az = evaluate(sms(zones=()), us(region="AZ", address_zones=("America/Phoenix",)), day=july)
    hi = evaluate(sms(zones=()), us(region="HI", address_zones=("Pacific/Honolulu",)), day=july)
    assert az.window_start == dt.datetime(2026, 7, 15, 15, 0)  # UTC-7 in July too
    assert hi.window_start == dt.datetime(2026, 7, 15, 18, 0)  # UTC-10


def test_zones_with_no_common_hour_are_blocked() -> None:
    # A country with no pack of its own: the house hours apply, 08:00-21:00 in every zone.
    # Shanghai's 21:00 is New York's 08:00 (EST): no instant is allowed in both.
    facts = AccountFacts(1, "DE", None, 100.0, address_zones=("Asia/Shanghai",))
    v = evaluate(sms(zones=(NY,)), facts, day=DAY)
    assert v.verdict == "block"
    assert v.reasons == ("core.quiet_hours",)


def test_unknown_zone_falls_back_to_every_zone_of_the_country() -> None:
    v = evaluate(sms(zones=()), us(address_zones=()), day=DAY)
    # Alaska and Hawaii are US zones too: 08:00 in Honolulu (UTC-10) opens the window.
    assert v.window_start == dt.datetime(2026, 11, 23, 18, 0)
    assert v.window_end == dt.datetime(2026, 11, 24, 2, 0)  # 21:00 Eastern


def attempts(n: int, first_day: dt.date, outcome: str = "no_answer") -> tuple[PastContact, ...]:
    return tuple(
        PastContact(local(first_day + dt.timedelta(days=i % 6), 10, 0, 0), "call", outcome, 10,
                    "mobile")
        for i in range(n)
    )  # fmt: skip


def test_seventh_call_in_seven_days_is_allowed_and_the_eighth_deferred() -> None:
    start = DAY - dt.timedelta(days=6)
    assert evaluate(call(), us(history=attempts(6, start)), day=DAY).verdict == "send"
    v = evaluate(call(), us(history=attempts(7, start)), day=DAY)
    assert v.verdict == "defer"
    assert v.reasons == ("us_reg_f.call_frequency_7in7",)
    # The oldest attempt (DAY-6) leaves the period the next day: the first allowed hour then.
    assert v.defer_until == local(DAY + dt.timedelta(days=1), 8, 0, 0)
    assert v.evidence()["us_reg_f.call_frequency_7in7"]["facts"]["attempts_in_period"] == 7


def test_calls_that_reach_no_one_do_not_count() -> None:
    start = DAY - dt.timedelta(days=6)
    busy = attempts(7, start, outcome="busy") + attempts(2, start, "not_in_service")
    assert evaluate(call(), us(history=busy), day=DAY).verdict == "send"


def test_attempts_older_than_seven_days_do_not_count() -> None:
    old = attempts(7, DAY - dt.timedelta(days=13))
    assert evaluate(call(), us(history=old), day=DAY).verdict == "send"


def test_texts_and_emails_do_not_count_as_call_attempts() -> None:
    start = DAY - dt.timedelta(days=6)
    texts = tuple(
        PastContact(local(start + dt.timedelta(days=i % 6), 10, 0, 0), channel, "sent", 10)
        for i, channel in enumerate(["sms", "email"] * 5)
    )
    assert evaluate(call(), us(history=texts + attempts(6, start)), day=DAY).verdict == "send"


def test_send_time_recheck_counts_attempts_made_earlier_that_day() -> None:
    start = DAY - dt.timedelta(days=6)
    earlier = PastContact(local(DAY, 9, 0, 0), "call", "voicemail", 10, "mobile")
    history = attempts(6, start) + (earlier,)
    v = evaluate(call(), us(history=history), day=DAY, at=local(DAY, 15, 0, 0))
    assert v.verdict == "defer"


@pytest.mark.parametrize(("day_number", "verdict"), [(1, "defer"), (7, "defer"), (8, "send")])
def test_no_call_within_seven_days_after_a_conversation(day_number: int, verdict: str) -> None:
    conversation_day = DAY - dt.timedelta(days=day_number - 1)  # the conversation day is day 1
    facts = us(last_conversation=local(conversation_day, 14, 0, 0))
    v = evaluate(call(), facts, day=DAY)
    assert v.verdict == verdict
    if verdict == "defer":
        assert v.reasons == ("us_reg_f.call_after_conversation",)
        assert v.defer_until == local(conversation_day + dt.timedelta(days=7), 8, 0, 0)


def test_conversation_does_not_stop_texts() -> None:
    facts = us(last_conversation=local(DAY, 9, 0, 0))
    assert evaluate(sms(), facts, day=DAY).verdict == "send"


# For a third-party collector (the default role) Regulation F's versions of the cease and dispute
# rules stand in for the house rules; a first-party creditor outside California gets the house's.
HOLD_CODES = [
    ("cease_communication", "us_reg_f.cease_communication", "core.cease_communication"),
    ("dispute", "us_reg_f.dispute_in_validation_period", "core.dispute_open"),
    ("bankruptcy", "core.bankruptcy", "core.bankruptcy"),
    ("deceased", "core.deceased", "core.deceased"),
    ("attorney", "core.attorney_represented", "core.attorney_represented"),
]


@pytest.mark.parametrize(("hold", "collector_code", "creditor_code"), HOLD_CODES)
def test_holds_block_every_consumer_channel(hold: str, collector_code: str,
                                            creditor_code: str) -> None:  # fmt: skip
    for step in (sms(), call(), Step("email", 11), Step("letter", 12)):
        for role, code in (("collector", collector_code), ("creditor", creditor_code)):
            v = evaluate(step, us(holds=frozenset({hold}), role=role), day=DAY)
            assert v.verdict == "block", (step.channel, role)
            assert code in v.reasons, (step.channel, role, v.reasons)


def test_hardship_pauses_collection_but_lets_the_offer_and_required_notices_through() -> None:
    held = us(holds=frozenset({"hardship"}))
    v = evaluate(sms(), held, day=DAY)
    assert (v.verdict, v.reasons) == ("block", ("core.hardship_pause",))
    for purpose in ("instalment_offer", "statement", "validation_notice", "verification",
                    "promise_reminder", "instalment_reminder"):  # fmt: skip
        letter = Step("letter", 12, purpose=purpose)
        assert "core.hardship_pause" not in evaluate(letter, held, day=DAY).reasons, purpose


def test_bankruptcy_and_dispute_also_stop_agency_and_legal_steps() -> None:
    for hold in ("bankruptcy", "dispute"):
        for channel in ("agency", "legal"):
            v = evaluate(Step(channel), us(holds=frozenset({hold})), day=DAY)
            assert v.verdict == "block", (hold, channel)


def test_opt_out_blocks_that_destination_only() -> None:
    facts = us(opt_outs=frozenset({("sms", "10")}))
    assert evaluate(sms(cp=10), facts, day=DAY).reasons == ("core.opted_out",)
    assert evaluate(sms(cp=11), facts, day=DAY).verdict == "send"
    assert evaluate(call(cp=10), facts, day=DAY).verdict == "send"


def test_stop_calling_blocks_every_number() -> None:
    facts = us(opt_outs=frozenset({("call", "*")}))
    assert evaluate(call(cp=10), facts, day=DAY).reasons == ("core.opted_out",)
    assert evaluate(call(cp=99), facts, day=DAY).reasons == ("core.opted_out",)
    assert evaluate(sms(cp=10), facts, day=DAY).verdict == "send"


def test_nothing_past_due_blocks_and_no_destination_blocks() -> None:
    assert evaluate(sms(), us(past_due=0.0), day=DAY).reasons == ("core.not_delinquent",)
    no_destination = Step("sms", None, phone_type="mobile", consent=True)
    assert evaluate(no_destination, us(), day=DAY).reasons == ("core.no_destination",)
    invalid = Step("sms", 10, (NY,), destination_valid=False, phone_type="mobile", consent=True)
    assert evaluate(invalid, us(), day=DAY).reasons == ("core.no_destination",)


def test_blocks_win_over_defers_and_every_reason_is_kept() -> None:
    facts = us(holds=frozenset({"dispute"}), history=attempts(7, DAY - dt.timedelta(days=6)))
    v = evaluate(call(), facts, day=DAY)
    assert v.verdict == "block"
    assert set(v.reasons) == {"us_reg_f.dispute_in_validation_period"}
    assert "us_reg_f.call_frequency_7in7" in v.evidence()


def test_regulation_f_replaces_the_house_defaults_for_us_accounts_only() -> None:
    us_rules = {r.rule_id for r, _ in rules_for(US_NY, "call", DAY)}
    cn_rules = {r.rule_id for r, _ in rules_for(CN_BJ, "call", DAY)}
    assert "us_reg_f.call_frequency_7in7" in us_rules and "core.call_frequency_7in7" not in us_rules
    assert "core.call_frequency_7in7" in cn_rules and "cn.collection_hours" in cn_rules
    assert "core.quiet_hours" not in cn_rules  # China's own hours replace the house's
    creditor = jurisdiction("US", "NY", None, "credit_card", "creditor")
    creditor_rules = {r.rule_id for r, _ in rules_for(creditor, "call", DAY)}
    assert "core.call_frequency_7in7" in creditor_rules
    assert not any(r.startswith("us_reg_f.") for r in creditor_rules)


def test_trace_records_every_rule_with_pack_version_and_citation() -> None:
    v = evaluate(call(), us(), day=DAY, trace=True)
    assert {r.rule_id for r in v.results} == {r.rule_id for r, _ in rules_for(US_NY, "call", DAY)}
    for r in v.results:
        assert r.citation and "@" in r.pack_version


def test_compliance_doc_is_generated_from_the_packs() -> None:
    from outreach.settings import PROJECT_ROOT
    from policies.docs import render

    assert (PROJECT_ROOT / "docs" / "compliance.md").read_text() == render(), (
        "run: python -m policies.docs > docs/compliance.md")  # fmt: skip
