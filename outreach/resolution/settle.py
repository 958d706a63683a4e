"""The day's settling, before the day is planned: promises past their date plus grace days are
judged kept, partly kept or broken; instalments past their grace period are missed and
arrangements broken or completed. Each settler is idempotent (a rerun of the day changes
nothing more) and records its transitions (outreach.resolution.events). A payment posted during
the day settles its own account at once (``settle_accounts``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection

from sqlalchemy import Connection, Engine

# settler(conn, day, actor, account_ids or None for all) -> counts. Each module of the loop
# adds its own below, in the order they must run.
Settler = Callable[[Connection, dt.date, str, Collection[int] | None], dict[str, int]]


def settlers() -> list[tuple[str, Settler]]:
    from outreach.resolution.arrangements import settle_arrangements
    from outreach.resolution.promises import settle_promises

    return [("promises", settle_promises), ("arrangements", settle_arrangements)]


def settle_accounts(
    conn: Connection, day: dt.date, account_ids: Collection[int] | None, actor: str = "system"
) -> dict[str, int]:
    """Run every settler for ``day`` on these accounts (None: all), in ``conn``'s transaction;
    the counts are prefixed by the settler's name."""
    counts: dict[str, int] = {}
    for name, settler in settlers():
        for key, n in settler(conn, day, actor, account_ids).items():
            counts[f"{name}_{key}"] = counts.get(f"{name}_{key}", 0) + int(n)
    return counts


def settle_day(engine: Engine, day: dt.date, actor: str = "system") -> dict[str, int]:
    """Settle the whole portfolio for ``day``, in one transaction."""
    with engine.begin() as conn:
        return settle_accounts(conn, day, None, actor)
