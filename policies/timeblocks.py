"""Times a consumer said are inconvenient, as text and as TimeBlocks (pure, no clock).

The text form is what operations import and what the ledger's evidence shows::

    mon-fri 09:00-17:00; sun          (working hours on weekdays, and all of Sunday)
    daily 12:00-13:00                 (every day at lunch)

Entries are separated by ``;``. Each has days (``mon``..``sun``, ranges ``mon-fri``, lists
``sat,sun``, or ``daily``), a local time span ``HH:MM-HH:MM`` (``24:00`` ends the day), or both;
days alone mean the whole day, a span alone means every day. A span that crosses midnight is
written as two entries (``22:00-24:00; 00:00-07:00``).
"""

from __future__ import annotations

import re

from policies.model import TimeBlock

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = frozenset(range(7))
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class TimeBlockError(ValueError):
    """Raised with a short reason naming the entry that cannot be read."""


def _days(text: str) -> frozenset[int]:
    if text == "daily":
        return ALL_DAYS
    days: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.partition("-")
        # A dangling dash ("mon-") is a range cut short, not one day: refuse it.
        if low not in DAY_NAMES or (dash and high not in DAY_NAMES):
            raise TimeBlockError(f"unknown day {part!r} (use mon..sun, mon-fri or daily)")
        a, b = DAY_NAMES.index(low), DAY_NAMES.index(high or low)
        if b < a:
            raise TimeBlockError(f"day range {part!r} runs backwards")
        days.update(range(a, b + 1))
    return frozenset(days)


def _span(text: str) -> tuple[int, int]:
    m = _SPAN.match(text)
    if not m:
        raise TimeBlockError(f"{text!r} is not a time span HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise TimeBlockError(f"{text!r} is not a valid time of day")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise TimeBlockError(f"{text!r} ends before it starts (split a span across midnight)")
    return start, end


def parse(text: str | None) -> tuple[TimeBlock, ...]:
    """The blocks of ``text``; () for empty text. Raises TimeBlockError with the reason."""
    blocks: list[TimeBlock] = []
    for entry in (text or "").lower().split(";"):
        words = entry.split()
        if not words:
            continue
        if len(words) > 2:
            raise TimeBlockError(f"{entry.strip()!r}: expected days, a time span, or both")
        days, span = ALL_DAYS, (0, 1440)
        if len(words) == 2:
            days, span = _days(words[0]), _span(words[1])
        elif _SPAN.match(words[0]):
            span = _span(words[0])
        else:
            days = _days(words[0])
        blocks.append(TimeBlock(days, span[0], span[1]))
    return tuple(blocks)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_blocks(blocks: tuple[TimeBlock, ...]) -> str:
    """The canonical text of ``blocks`` (what ``parse`` reads back to the same blocks)."""
    entries = []
    for b in blocks:
        days = "daily" if b.weekdays == ALL_DAYS else ",".join(DAY_NAMES[d] for d in sorted(b.weekdays))
        entries.append(f"{days} {_clock(b.start)}-{_clock(b.end)}")
    return "; ".join(entries)


def normalize(text: str | None) -> str | None:
    """Canonical text for storage, or None when ``text`` says nothing. Raises TimeBlockError."""
    blocks = parse(text)
    return format_blocks(blocks) if blocks else None
