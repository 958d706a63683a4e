"""The gate's memoized path gives exactly the verdict of the full evaluation (hypothesis)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.gate import _evaluate, evaluate
from policies.model import AccountFacts, Step

ZONES = ["America/New_York", "America/Chicago", "America/Los_Angeles", "Pacific/Honolulu",
         "America/Phoenix", "Asia/Shanghai"]
DAY = dt.date(2026, 11, 1)  # a DST change day in the US

instants = st.builds(lambda h: dt.datetime(2026, 10, 20) + dt.timedelta(hours=h),
                     st.integers(min_value=0, max_value=14 * 24))
facts_strategy = st.builds(
    AccountFacts,
    account_id=st.just(1),
    country=st.sampled_from(["US", "CN", "GB"]),
    region=st.sampled_from([None, "NY", "CA"]),
    past_due=st.sampled_from([0.0, 5.0, 250.0]),
    holds=st.frozensets(st.sampled_from(["dispute", "hardship", "bankruptcy"]), max_size=1),
    opt_outs=st.frozensets(st.tuples(st.sampled_from(["sms", "call", "email"]),
                                     st.sampled_from(["*", "7", "8"])), max_size=2),
    address_zones=st.lists(st.sampled_from(ZONES), max_size=2, unique=True).map(tuple),
    call_attempts=st.lists(st.tuples(instants, st.sampled_from(
        ["no_answer", "voicemail", "busy", "conversation"])), max_size=10).map(
        lambda xs: tuple(sorted(xs))),
    last_conversation=st.one_of(st.none(), instants),
)
steps = st.builds(
    Step,
    channel=st.sampled_from(["sms", "email", "call", "letter", "agency"]),
    contact_point_id=st.sampled_from([None, 7, 8]),
    destination_zones=st.lists(st.sampled_from(ZONES), max_size=2, unique=True).map(tuple),
    destination_valid=st.booleans(),
)
send_times = st.one_of(st.none(), st.builds(
    lambda h: dt.datetime(2026, 11, 1) + dt.timedelta(minutes=h),
    st.integers(min_value=0, max_value=36 * 60)))


@settings(max_examples=3000, deadline=None)
@given(step=steps, facts=facts_strategy, day_offset=st.integers(0, 3), at=send_times)
def test_memoized_verdict_equals_full_evaluation(step: Step, facts: AccountFacts,
                                                 day_offset: int, at: dt.datetime | None) -> None:
    day = DAY + dt.timedelta(days=day_offset)
    fast = evaluate(step, facts, day=day, at=at)
    full = _evaluate(step, facts, day=day, at=at, trace=False)
    assert (fast.verdict, fast.reasons, fast.window_start, fast.window_end, fast.defer_until,
            fast.pack_versions) == (full.verdict, full.reasons, full.window_start,
                                    full.window_end, full.defer_until, full.pack_versions)
    assert fast.evidence() == full.evidence()
