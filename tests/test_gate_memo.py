"""The gate's memoized path gives exactly the verdict of the full evaluation (hypothesis)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.gate import _evaluate, _judge, evaluate, first_allowed, jurisdiction_of
from policies.model import PURPOSES, RELATIONS, ROLES, AccountFacts, HoldPeriod, PastContact, Step
from policies.timeblocks import parse

ZONES = ["America/New_York", "America/Chicago", "America/Los_Angeles", "Pacific/Honolulu",
         "America/Phoenix", "Asia/Shanghai", "Europe/London"]  # fmt: skip
DAY = dt.date(2026, 11, 1)  # a DST change day in the US
HOLDS = ["dispute", "original_creditor_request", "hardship", "bankruptcy", "cease_communication",
         "deceased", "attorney", "instalment_plan", "vulnerable", "agency_placement",
         "legal_referral"]  # fmt: skip
STATED = ["mon-fri 09:00-17:00", "sun", "daily 12:00-13:00", "sat,sun 00:00-10:00; mon",
          "daily 20:00-24:00", "daily 00:00-09:00"]  # fmt: skip

instants = st.builds(lambda m: dt.datetime(2026, 10, 1) + dt.timedelta(minutes=m),
                     st.integers(min_value=0, max_value=36 * 24 * 60))  # fmt: skip
dates = st.builds(lambda d: dt.date(2026, 8, 1) + dt.timedelta(days=d), st.integers(0, 110))
optional_dates = st.one_of(st.none(), st.none(), dates)  # mostly absent: more plain paths


def mostly_empty(strategy: st.SearchStrategy, empty: object) -> st.SearchStrategy:
    """Half the time nothing, so that many examples take the memoized path."""
    return st.one_of(st.just(empty), strategy)

past_contacts = st.builds(
    PastContact,
    at=instants,
    channel=st.sampled_from(["call", "sms", "email", "letter"]),
    outcome=st.sampled_from(["no_answer", "voicemail", "busy", "not_in_service", "conversation",
                             "sent", "delivered", "bounced", "attempted", "failed"]),
    contact_point_id=st.sampled_from([None, 7, 8]),
    phone_type=st.sampled_from([None, "mobile", "landline", "work"]),
    is_workplace=st.booleans(),
)  # fmt: skip
hold_periods = st.builds(
    HoldPeriod,
    kind=st.sampled_from(["breathing_space", "mental_health_crisis", "dispute",
                          "original_creditor_request"]),
    started_on=dates,
    ended_on=optional_dates,
)  # fmt: skip
facts_strategy = st.builds(
    AccountFacts,
    account_id=st.just(1),
    country=st.sampled_from(["US", "CN", "GB", "DE"]),
    region=st.sampled_from([None, "NY", "CA", "MA", "WA", "AZ"]),
    past_due=st.sampled_from([0.0, 5.0, 250.0]),
    holds=mostly_empty(st.frozensets(st.sampled_from(HOLDS), max_size=2), frozenset()),
    opt_outs=mostly_empty(st.frozensets(st.tuples(st.sampled_from(["sms", "call", "email", "letter"]),
                                                  st.sampled_from(["*", "7", "8"])), max_size=2),
                          frozenset()),
    address_zones=st.lists(st.sampled_from(ZONES), max_size=2, unique=True).map(tuple),
    history=st.lists(past_contacts, max_size=12).map(lambda xs: tuple(sorted(xs, key=lambda h: h.at))),
    last_conversation=st.one_of(st.none(), st.none(), instants),
    city=st.sampled_from([None, "Brooklyn", "new york", "Buffalo", "Seattle"]),
    product=st.sampled_from(["credit_card", "consumer_loan", "mortgage"]),
    role=st.sampled_from(ROLES),
    hold_periods=mostly_empty(st.lists(hold_periods, max_size=2).map(tuple), ()),
    inconvenient_times=st.one_of(st.just(()), st.sampled_from(STATED).map(parse)),
    initial_communication=optional_dates,
    validation_notice_sent=optional_dates,
    limitation_date=optional_dates,
    scra_checked_on=optional_dates,
    scra_active_duty=st.booleans(),
    reachable_destinations=st.sampled_from([0, 1, 2]),
    balance=st.sampled_from([0.0, 1000.0, 5000.0]),
    final_notice_sent=optional_dates,
)  # fmt: skip
steps = st.builds(
    Step,
    channel=st.sampled_from(["sms", "email", "call", "letter", "agency", "legal"]),
    contact_point_id=st.sampled_from([None, 7, 8]),
    destination_zones=st.lists(st.sampled_from(ZONES), max_size=2, unique=True).map(tuple),
    destination_valid=st.booleans(),
    purpose=st.sampled_from(PURPOSES),
    phone_type=st.sampled_from([None, "mobile", "landline", "work"]),
    is_workplace=st.booleans(),
    consent=st.booleans(),
    used_by_consumer=st.booleans(),
    no_calls_at_work=st.booleans(),
    relation=st.sampled_from(RELATIONS),
    dialer=st.sampled_from(["manual", "autodialed", "prerecorded"]),
    threatens_suit=st.booleans(),
    agency=st.sampled_from([None, "acme"]),
    agency_approved=st.booleans(),
)
send_times = st.one_of(st.none(), st.builds(
    lambda m: dt.datetime(2026, 11, 1) + dt.timedelta(minutes=m),
    st.integers(min_value=0, max_value=4 * 24 * 60)))  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(step=steps, facts=facts_strategy, day_offset=st.integers(0, 3), at=send_times)
def test_memoized_verdict_equals_full_evaluation(step: Step, facts: AccountFacts,
                                                 day_offset: int, at: dt.datetime | None) -> None:
    day = DAY + dt.timedelta(days=day_offset)
    judged = _judge(step, facts, day=day, at=at, trace=False)
    full = _evaluate(step, facts, jurisdiction_of(facts), day=day, at=at, trace=False)
    # The memoized path (plain steps) judges as the full one does ...
    assert (judged.verdict, judged.reasons, judged.window_start, judged.window_end,
            judged.defer_until, judged.pack_versions) == (
        full.verdict, full.reasons, full.window_start, full.window_end, full.defer_until,
        full.pack_versions)  # fmt: skip
    # ... and a defer's first allowed instant is searched from the full judgement's: never
    # before the time its rules named, nor before the instant judged.
    fast = evaluate(step, facts, day=day, at=at)
    if full.verdict == "defer":
        full = replace(full, defer_until=first_allowed(step, facts, full, day=day, at=at))
        if full.defer_until is not None and judged.defer_until is not None:
            assert full.defer_until >= judged.defer_until
        if full.defer_until is not None and at is not None:
            assert full.defer_until > at
    assert (fast.verdict, fast.reasons, fast.window_start, fast.window_end, fast.defer_until,
            fast.pack_versions) == (full.verdict, full.reasons, full.window_start,
                                    full.window_end, full.defer_until, full.pack_versions)
    assert fast.evidence() == full.evidence()
