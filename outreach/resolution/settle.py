"""The day's settling, before the day is planned: promises past their date plus grace days are
judged kept, partly kept or broken; instalments past their grace period are missed and
arrangements broken or completed; holds that ran their course end. Each settler is idempotent
(a rerun of the day changes nothing more) and records its transitions (events.record)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine

# name -> settler(engine, day, actor) -> counts. Each module of the loop adds its own, in the
# order they must run (promises before arrangements: a payment both touch is allocated once).
Settler = Callable[[Engine, dt.date, str], dict[str, int]]


def settlers() -> list[tuple[str, Settler]]:
    return []


def settle_day(engine: Engine, day: dt.date, actor: str = "system") -> dict[str, int]:
    """Run every settler for ``day``; the counts are prefixed by the settler's name."""
    counts: dict[str, int] = {}
    for name, settler in settlers():
        for key, n in settler(engine, day, actor).items():
            counts[f"{name}_{key}"] = counts.get(f"{name}_{key}", 0) + int(n)
    return counts
