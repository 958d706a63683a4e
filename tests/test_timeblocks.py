"""Stated inconvenient times at every boundary of their text form and of the gate's reading.

Each test pins a change that once went unnoticed (issue 13 item 14): a span that stops covering
Sunday, a span ending off the hour, trailing words, the hour and minute limits of a span.
"""

from __future__ import annotations

import datetime as dt

import pytest

from policies.gate import evaluate
from policies.model import AccountFacts, Step, TimeBlock
from policies.timeblocks import TimeBlockError, format_blocks, normalize, parse
from policies.windows import local_to_utc

NY = "America/New_York"
MONDAY = dt.date(2026, 11, 23)  # EST (UTC-5)
SUNDAY = dt.date(2026, 11, 29)
EVERY_DAY = frozenset({0, 1, 2, 3, 4, 5, 6})


def local(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return local_to_utc(day, hh, mm, NY)


def facts(stated: str) -> AccountFacts:
    return AccountFacts(
        1, "US", "NY", 100.0, balance=5000.0, address_zones=(NY,),
        inconvenient_times=parse(stated),
    )  # fmt: skip


def sms() -> Step:
    return Step("sms", 10, (NY,), phone_type="mobile", consent=True)


# --- the text form ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["daily 12:00-13:00", "12:00-13:00", "Daily 12:00-13:00"])
def test_daily_and_a_bare_span_cover_all_seven_days_sunday_included(text: str) -> None:
    assert parse(text) == (TimeBlock(EVERY_DAY, 12 * 60, 13 * 60),)


@pytest.mark.parametrize(
    ("days", "weekdays"),
    [
        ("sun", {6}),
        ("mon", {0}),
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("sat-sun", {5, 6}),
        ("mon-mon", {0}),
        ("sat,sun", {5, 6}),
        ("mon,wed-fri", {0, 2, 3, 4}),
        ("Mon-Fri", {0, 1, 2, 3, 4}),
    ],
)
def test_days_read_as_written(days: str, weekdays: set[int]) -> None:
    assert parse(days) == (TimeBlock(frozenset(weekdays), 0, 1440),)
    assert parse(f"{days} 08:00-09:00") == (TimeBlock(frozenset(weekdays), 480, 540),)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("09:00-17:30", 540, 1050),
        ("09:15-09:45", 555, 585),
        ("9:05-10:00", 545, 600),
        ("00:00-00:01", 0, 1),
        ("09:00-09:59", 540, 599),
        ("09:59-10:00", 599, 600),
        ("23:59-24:00", 1439, 1440),
        ("00:00-24:00", 0, 1440),
    ],
)
def test_a_span_keeps_its_minutes(text: str, start: int, end: int) -> None:
    assert parse(f"mon-fri {text}") == (TimeBlock(frozenset(range(5)), start, end),)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("09:75-10:00", "not a valid time of day"),
        ("09:60-10:00", "not a valid time of day"),
        ("09:00-09:60", "not a valid time of day"),
        ("25:00-26:00", "not a valid time of day"),
        ("24:00-24:00", "not a valid time of day"),
        ("09:00-25:00", "not a valid time of day"),
        ("09:00-24:30", "not a valid time of day"),
        ("09:00-24:01", "not a valid time of day"),
        ("17:00-09:00", "ends before it starts"),
        ("09:00-09:00", "ends before it starts"),
        ("09:00", "not a time span"),
        ("9-17", "not a time span"),
        ("09:0-10:00", "not a time span"),
    ],
)
def test_impossible_spans_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(TimeBlockError, match=reason):
        parse(f"mon {text}")


@pytest.mark.parametrize(
    "text",
    ["12:00-13:00 and weekends", "mon-fri 09:00-17:00 except holidays", "sun 10:00-11:00 x",
     "mon-fri 09:00-17:00; 12:00-13:00 and weekends"],
)  # fmt: skip
def test_trailing_words_are_refused_not_dropped(text: str) -> None:
    with pytest.raises(TimeBlockError, match="expected days, a time span, or both"):
        parse(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("12:00-13:00 weekends", "unknown day '12:00-13:00'"),
        ("weekends", "unknown day 'weekends'"),
        ("mon-fry", "unknown day 'mon-fry'"),
        ("mon-", "unknown day 'mon-'"),
        ("fri-mon", "runs backwards"),
        ("sun mon", "'mon' is not a time span"),
    ],
)
def test_unknown_days_are_refused_with_the_entry(text: str, reason: str) -> None:
    with pytest.raises(TimeBlockError, match=reason):
        parse(text)


def test_entries_are_separated_by_semicolons_and_empty_ones_say_nothing() -> None:
    assert parse("mon-fri 09:00-17:00; sun") == (
        TimeBlock(frozenset(range(5)), 540, 1020), TimeBlock(frozenset({6}), 0, 1440))  # fmt: skip
    assert parse(None) == parse("") == parse(" ; ;") == ()
    assert normalize(" ; ") is None and normalize(None) is None


def test_the_canonical_text_reads_back_to_the_same_blocks() -> None:
    text = "Mon-Fri 9:00-17:30; sun; 12:00-13:00; sat,sun 22:00-24:00"
    canonical = normalize(text)
    assert canonical == (
        "mon,tue,wed,thu,fri 09:00-17:30; sun 00:00-24:00; daily 12:00-13:00; "
        "sat,sun 22:00-24:00"
    )
    assert parse(canonical) == parse(text)
    assert format_blocks(parse(canonical)) == canonical
    # Every minute of the hour prints as itself, the last one of the day too.
    assert normalize("00:59-01:00; 12:01-13:58; 23:59-24:00") == (
        "daily 00:59-01:00; daily 12:01-13:58; daily 23:59-24:00")  # fmt: skip


# --- what the gate makes of them ------------------------------------------------------------------


@pytest.mark.parametrize("stated", ["daily 12:00-13:00", "12:00-13:00"])
def test_a_daily_lunch_hour_defers_an_sms_on_sunday_too(stated: str) -> None:
    v = evaluate(sms(), facts(stated), day=SUNDAY, at=local(SUNDAY, 12, 30))
    assert (v.verdict, v.reasons) == ("defer", ("us_reg_f.consumer_inconvenient_time",))
    assert v.defer_until == local(SUNDAY, 13)
    assert evaluate(sms(), facts(stated), day=SUNDAY, at=local(SUNDAY, 13)).verdict == "send"


def test_a_span_ending_at_half_past_ends_at_half_past() -> None:
    f = facts("mon-fri 09:00-17:30")
    late = evaluate(sms(), f, day=MONDAY, at=local(MONDAY, 17, 15))
    assert (late.verdict, late.reasons) == ("defer", ("us_reg_f.consumer_inconvenient_time",))
    assert late.defer_until == local(MONDAY, 17, 30)
    assert evaluate(sms(), f, day=MONDAY, at=local(MONDAY, 17, 29)).verdict == "defer"
    assert evaluate(sms(), f, day=MONDAY, at=local(MONDAY, 17, 30)).verdict == "send"
    assert evaluate(sms(), f, day=MONDAY, at=local(MONDAY, 17, 31)).verdict == "send"
    # The plan's window starts at 17:30, not at 17:00 or 16:30.
    plan = evaluate(sms(), f, day=MONDAY)
    assert (plan.window_start, plan.window_end) == (local(MONDAY, 17, 30), local(MONDAY, 21))


def test_a_span_starting_off_the_hour_starts_there() -> None:
    f = facts("mon 08:30-20:15")
    assert evaluate(sms(), f, day=MONDAY, at=local(MONDAY, 8, 29)).verdict == "send"
    v = evaluate(sms(), f, day=MONDAY, at=local(MONDAY, 8, 30))
    assert (v.verdict, v.defer_until) == ("defer", local(MONDAY, 20, 15))
    plan = evaluate(sms(), f, day=MONDAY)
    assert (plan.window_start, plan.window_end) == (local(MONDAY, 20, 15), local(MONDAY, 21))
