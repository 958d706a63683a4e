"""Checks of the time of day: the allowed hours in every candidate zone, and the times the
consumer said are inconvenient."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from policies.checks.base import ONE_DAY, Context, Interval, Outcome, _pass
from policies.model import BLOCK, DEFER, PASS, AccountFacts, Step, TimeBlock
from policies.pack_model import Rule
from policies.timeblocks import format_blocks
from policies.windows import common_window, local_midnight_utc, local_time_text, local_to_utc


def _hours(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    start_h, end_h = rule.params["start_hour"], rule.params["end_hour"]
    hours = f"{start_h:02d}:00-{end_h:02d}:00"
    if not ctx.zones:
        return Outcome(BLOCK, {"zones": [], "hours": hours, "why": "no candidate zone"})
    window = common_window(ctx.day, ctx.zones, start_h, end_h)
    if window is None:
        return Outcome(
            BLOCK,
            {
                "zones": list(ctx.zones),
                "hours": hours,
                "day": str(ctx.day),
                "why": "no instant allowed in every candidate zone",
            },
        )
    if ctx.at is not None and not (window[0] <= ctx.at < window[1]):
        until: dt.datetime | None = None
        if ctx.at < window[0]:
            until = window[0]
        else:
            following = common_window(ctx.day + ONE_DAY, ctx.zones, start_h, end_h)
            until = following[0] if following else None
        return Outcome(
            DEFER,
            {
                "zones": list(ctx.zones),
                "hours": hours,
                "local_times": [local_time_text(ctx.at, z) for z in ctx.zones],
            },
            until=until,
        )
    facts_read: dict[str, Any] = {"zones": list(ctx.zones)}
    if ctx.trace:
        facts_read.update(hours=hours, window_utc=[window[0].isoformat(), window[1].isoformat()])
        if ctx.at is not None:
            facts_read["local_times"] = [local_time_text(ctx.at, z) for z in ctx.zones]
    return Outcome(PASS, facts_read, allowed=(window,))


def _clock_utc(day: dt.date, minutes: int, zone_name: str) -> dt.datetime:
    if minutes >= 1440:
        return local_midnight_utc(day + ONE_DAY, zone_name)
    return local_to_utc(day, minutes // 60, minutes % 60, zone_name)


def _merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@lru_cache(maxsize=4096)
def stated_blocked(
    day: dt.date, zones: tuple[str, ...], blocks: tuple[TimeBlock, ...]
) -> tuple[Interval, ...]:
    """The UTC intervals around local ``day`` that fall in a stated block in any candidate zone
    (the consumer's own clock may be any of them), merged."""
    spans: list[Interval] = []
    for zone_name in zones:
        for offset in (-1, 0, 1):
            local_day = day + dt.timedelta(days=offset)
            for b in blocks:
                if local_day.weekday() in b.weekdays:
                    spans.append(
                        (
                            _clock_utc(local_day, b.start, zone_name),
                            _clock_utc(local_day, b.end, zone_name),
                        )
                    )
    return tuple(_merge(spans))


def _stated_times(rule: Rule, step: Step, facts: AccountFacts, ctx: Context) -> Outcome | None:
    if not facts.inconvenient_times:
        return _pass(ctx, {"stated_inconvenient": []})
    zones = ctx.zones or ("UTC",)
    blocked = stated_blocked(ctx.day, zones, facts.inconvenient_times)
    read: dict[str, Any] = {"stated_inconvenient": format_blocks(facts.inconvenient_times),
                            "zones": list(zones)}  # fmt: skip
    if ctx.at is not None:
        for start, end in blocked:
            if start <= ctx.at < end:
                read["local_times"] = [local_time_text(ctx.at, z) for z in zones]
                return Outcome(DEFER, read, until=end)
        return _pass(ctx, read)
    lo = min(local_midnight_utc(ctx.day - ONE_DAY, z) for z in zones)
    hi = max(local_midnight_utc(ctx.day + 2 * ONE_DAY, z) for z in zones)
    allowed: list[Interval] = []
    cursor = lo
    for start, end in blocked:
        if start > cursor:
            allowed.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < hi:
        allowed.append((cursor, hi))
    return Outcome(PASS, read, allowed=tuple(allowed))
