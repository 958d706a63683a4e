"""Planning in parallel: batches of accounts planned in worker processes, as parallel mapped
tasks of the DAG would."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from outreach.planning.ladder import Ladder
from outreach.planning.planner import PlanCounts, account_ranges, plan_range
from policies.packs import assert_valid


def _forget_inherited_pool(url: str) -> None:
    """A forked worker must not use the parent's pooled connections (SQLAlchemy's recipe:
    dispose without closing them, so the parent keeps its own)."""
    from outreach.storage.db import engine_for

    engine_for(url).dispose(close=False)


def _plan_worker(args: tuple[str, str, dt.date, int, int]) -> PlanCounts:
    from outreach.planning.ladder import load_ladder
    from outreach.storage.db import engine_for

    url, ladder_file, day, lo, hi = args
    return plan_range(engine_for(url), load_ladder(Path(ladder_file)), day, lo, hi)


def plan_parallel(
    url: str, ladder: Ladder, day: dt.date, batch_size: int, workers: int
) -> Iterator[PlanCounts]:
    """Plan batches in ``workers`` processes, as parallel mapped tasks of the DAG would.

    Each batch is its own transaction; on SQLite the writes take turns (WAL, busy timeout)
    while the reading and judging of other batches goes on.
    """
    from concurrent.futures import ProcessPoolExecutor

    from outreach.storage.db import engine_for

    assert_valid()
    ranges = account_ranges(engine_for(url), batch_size)
    jobs = [(url, ladder.source, day, lo, hi) for lo, hi in ranges]
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_forget_inherited_pool, initargs=(url,)
    ) as pool:
        yield from pool.map(_plan_worker, jobs)
