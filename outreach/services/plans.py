"""Planning and dispatching a day from the CLI (``outreach plan``, ``outreach dispatch``); the DAGs
do the same batch by batch through ``outreach.services.daily``."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Engine

from outreach import settings
from outreach.dispatch.dispatcher import dispatch_range, dispatch_ranges
from outreach.measurement.score_config import score_config
from outreach.measurement.scoring import score_day
from outreach.planning.ladder import Ladder
from outreach.planning.parallel import plan_parallel
from outreach.planning.planner import PlanCounts, iter_plan
from outreach.resolution.settle import settle_day

log = logging.getLogger(__name__)


def plan_day(engine: Engine, ladder: Ladder, day: dt.date, batch_size: int, workers: int
             ) -> PlanCounts:  # fmt: skip
    """Settle the day's promises and arrangements (as the DAG's ``settle`` task does before it
    plans: a promise broken today resumes escalation today), score the accounts when a score
    model is active (the DAG's ``score`` task: the plan reads today's bands), then plan ``day``
    for the whole portfolio, batch by batch (in ``workers`` processes when more than one); the
    plan's counts summed."""
    settle_day(engine, day)
    scored = score_day(engine, day, score_config())
    log.info("scoring before the plan (counts only): %s", scored)
    total = PlanCounts()
    batches = (iter_plan(engine, ladder, day, batch_size) if workers == 1 else
               plan_parallel(settings.database_url(), ladder, day, batch_size, workers))
    for counts in batches:
        total.add(counts)
    return total


def dispatch_channel(engine: Engine, day: dt.date, channel: str, batch_size: int, clock: str
                     ) -> dict[str, int]:  # fmt: skip
    """Send what ``channel`` has due on ``day`` (exactly once); the counts summed over its
    batches, empty when nothing was planned."""
    totals: dict[str, int] = {}
    for lo, hi in dispatch_ranges(engine, day, channel, batch_size):
        counts = dispatch_range(engine, day, channel, lo, hi, clock=clock)
        for k, v in counts.as_dict().items():
            totals[k] = totals.get(k, 0) + v
    return totals
