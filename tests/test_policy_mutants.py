"""Pins for changes to policies/ that the mutation run (scripts/mutate.py) found uncaught.

Each test names the change it catches; docs/testing.md lists the run and what survived.
"""

from __future__ import annotations

import datetime as dt

import pytest

from policies.gate import evaluate
from policies.model import EMERGENCY_CONTACT, AccountFacts, HoldPeriod, PastContact, Step
from policies.revocation import classify
from policies.windows import local_to_utc

BOSTON = "America/New_York"
DAY = dt.date(2026, 11, 23)  # a Monday


def test_a_step_every_account_rule_objects_to_is_judged_in_full() -> None:
    # gate._plain_for: `check(...) is None` flipped to `is not None` would send this on the
    # memoized path, which skips the rules that read the account's own history and dates.
    f = AccountFacts(
        1, "US", "NY", 100.0, balance=5000.0, address_zones=(BOSTON,),
        initial_communication=DAY - dt.timedelta(days=60), limitation_date=DAY,
        hold_periods=(HoldPeriod("dispute", DAY - dt.timedelta(days=3)),),
    )  # fmt: skip
    step = Step("letter", 30, relation=EMERGENCY_CONTACT, purpose="credit_report",
                threatens_suit=True)  # fmt: skip
    v = evaluate(step, f, day=DAY)
    assert v.verdict == "block"
    full = evaluate(step, f, day=DAY, trace=True)
    assert (v.verdict, v.reasons) == (full.verdict, full.reasons)
    assert {"core.third_party_contact", "core.time_barred",
            "us_reg_f.validation_notice_overdue"} <= set(v.reasons)  # fmt: skip


def _voicemail(day: dt.date, phone_type: str, cp: int) -> PastContact:
    return PastContact(local_to_utc(day, 10, 0, BOSTON), "call", "voicemail", cp, phone_type)


def test_calls_to_a_work_phone_do_not_count_against_the_personal_phones_in_massachusetts() -> None:
    # checks.frequency._scope_filter("personal_phone"): `h.phone_type is None` flipped to
    # `is not None` would count typed work-phone calls against the consumer's personal phones.
    work = tuple(_voicemail(DAY - dt.timedelta(days=d), "work", 20) for d in (1, 2))
    f = AccountFacts(1, "US", "MA", 100.0, balance=5000.0, address_zones=(BOSTON,), history=work)
    mobile = Step("call", 10, (BOSTON,), phone_type="mobile")
    assert evaluate(mobile, f, day=DAY).verdict == "send"
    # Two calls to the mobile itself do fill the two in seven days.
    personal = tuple(_voicemail(DAY - dt.timedelta(days=d), "mobile", 10) for d in (1, 2))
    full = AccountFacts(1, "US", "MA", 100.0, balance=5000.0, address_zones=(BOSTON,),
                        history=personal)  # fmt: skip
    assert evaluate(mobile, full, day=DAY).reasons == ("us_ma.personal_phone_2in7",)


def test_every_purpose_a_rule_names_can_be_declared_by_a_ladder_action() -> None:
    # policies.model.PURPOSES with an element dropped (e.g. "locate") would make the ladder
    # refuse an action for a purpose the rules still allow (outreach.planning.ladder validates against it).
    from policies.model import PURPOSES
    from policies.packs import all_packs

    named = {
        purpose
        for pack in all_packs()
        for rule in pack.rules
        for key in ("except_purposes", "allowed_purposes")
        for purpose in rule.params.get(key, ())
    }
    assert "locate" in named and named <= set(PURPOSES)


@pytest.mark.parametrize(
    "text", ["别再打给我", "别再发了", "不要再联系我", "请不要再联系我了", "停止发送短信"]
)
def test_every_chinese_stop_phrase_revokes_consent(text: str) -> None:
    # policies.revocation._CHINESE_STOP with a phrase dropped ("不要再联系") would keep texting
    # a consumer who said "do not contact me again".
    assert classify(text) == "stop"
