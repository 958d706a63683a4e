"""Hourly dispatch window: send the planned contacts whose send window is open now.

Production companion of ``outreach_daily``: the daily run plans the day (and sends what is open at
its start); this DAG runs every hour on the wall clock and sends, per channel, what has come into
its window since. A day's windows are local calendar days, so American evenings run past
midnight UTC (New York until 02:00, Hawaii until 07:00): each run therefore covers the previous
UTC day as well as the current one; the dispatcher sends only what is inside its window now.
The dispatcher claims each contact in the ledger before sending, so this DAG and the daily run
never send the same contact twice. Before each SMS and email dispatch, contacts that failed
transiently (a provider outage that outlasted the retries) go back to the queue while their
window is open (``outreach.operations.redrive``); the dispatch judges them again before sending. Wiring only; counts, days and id ranges in XCom.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from outreach.services.daily import channel_kinds, closing_kinds, redriven_kinds

log = logging.getLogger(__name__)

# Channels whose transient failures (provider outages, retries spent) are sent again.
REDRIVEN = redriven_kinds()

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "collections-ops",
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,  # 30 s, 60 s, 120 s (Airflow 3.3 takes a multiplier)
    "max_retry_delay": dt.timedelta(minutes=10),
}


def _as_of() -> dt.date:
    """The run's logical date in UTC (``run_after`` if it has none)."""
    context = get_current_context()
    when = (context.get("logical_date") or context["dag_run"].run_after).astimezone(dt.UTC)
    # A plain date: Airflow hands out pendulum objects, which database drivers cannot bind.
    return dt.date(when.year, when.month, when.day)


@dag(
    dag_id="outreach_dispatch",
    description="Hourly: send the day's planned contacts whose window is open now (wall clock).",
    schedule="0 * * * *",
    start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=55),
    default_args=DEFAULT_ARGS,
    tags=["outreach"],
    params={
        "batch_size": Param(5000, type="integer", minimum=1, description="Accounts per batch."),
    },
    doc_md=__doc__,
)
def outreach_dispatch() -> None:
    @task
    def dispatch_batches(channel: str) -> list[dict[str, Any]]:
        from outreach.services import daily as service

        batch_size = int(get_current_context()["params"]["batch_size"])
        today = _as_of()
        return [
            {"day": day.isoformat(), **batch}
            for day in (today - dt.timedelta(days=1), today)
            for batch in service.dispatch_batches(day, channel, batch_size)
        ]

    @task
    def dispatch(channel: str, batch: dict[str, Any]) -> dict[str, int]:
        from outreach.services import daily as service

        day = dt.date.fromisoformat(batch["day"])
        return service.dispatch_batch(day, channel, batch["lo"], batch["hi"], clock="wall")

    # none_failed: with nothing to send the mapped dispatch is skipped, which is not a failure.
    @task(trigger_rule="none_failed")
    def close_day(channel: str) -> dict[str, Any]:
        from outreach.services import daily as service

        return service.close_day(_as_of(), channel)

    @task(trigger_rule="none_failed")
    def refresh_call_queue() -> dict[str, Any]:
        from outreach.services import daily as service

        return service.refresh_call_queue(_as_of())

    @task
    def redrive(channel: str) -> dict[str, int]:
        from outreach.services import daily as service

        return service.redrive(_as_of(), channel)

    closes_batch = closing_kinds("batch")
    kept_up = closing_kinds("upkeep")
    for channel in channel_kinds():
        ranges = dispatch_batches.override(task_id=f"dispatch_batches_{channel}")(channel=channel)
        if channel in REDRIVEN:
            # What failed transiently goes back to the queue first; the dispatch re-judges it.
            redrive.override(task_id=f"redrive_{channel}")(channel=channel) >> ranges
        sent = dispatch.override(task_id=f"dispatch_{channel}", pool=f"{channel}_dispatch").partial(
            channel=channel
        ).expand(batch=ranges)
        # Letters and placements sent this hour join the day's manifest and files (rewritten,
        # same bytes for what was there); the call queue is kept up on the wall clock.
        if channel in closes_batch:
            sent >> close_day.override(task_id=f"close_{channel}")(channel)
        elif channel in kept_up:
            sent >> refresh_call_queue()


outreach_dispatch()
