"""The one clock: naive UTC instants, as every table stores them.

Everything that needs "now" calls :func:`utcnow` (or takes a ``now`` callable that defaults to
it). Tests and the simulator inject a clock with :func:`use`; nothing else reads the wall clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


_source: Callable[[], dt.datetime] = wall_clock


def utcnow() -> dt.datetime:
    """Now, as a naive UTC datetime, from the clock in use."""
    return _source()


def today() -> dt.date:
    """Today's date in UTC, from the clock in use."""
    return _source().date()


@contextlib.contextmanager
def use(source: Callable[[], dt.datetime] | dt.datetime) -> Iterator[None]:
    """Run the block on another clock: a callable, or a fixed naive-UTC instant."""
    global _source
    previous = _source
    _source = source if callable(source) else (lambda: source)
    try:
        yield
    finally:
        _source = previous


@contextlib.contextmanager
def on_day(day: dt.date) -> Iterator[None]:
    """Run the block on ``day``: the clock in use, moved by whole days so that today is ``day``
    while the time of day goes on (a run on the logical clock, a demo's later day)."""
    previous = _source
    shift = dt.datetime.combine(day, dt.time()) - dt.datetime.combine(previous().date(), dt.time())
    with use(lambda: previous() + shift):
        yield
