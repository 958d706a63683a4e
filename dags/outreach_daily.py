"""The day's outreach: ingest, recall placements, settle, score, plan in batches, dispatch per
channel, close the day's print batch and placement files, report counts.

Wiring only: each task calls one function of ``outreach.services.daily``. The day is the run's logical
date (UTC), never the wall clock, so a rerun or a backfill of a day plans that same day.
Everything passed between tasks is counts and account-id ranges: no personal data in XCom.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from outreach.services.daily import channel_kinds, closing_kinds

log = logging.getLogger(__name__)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "collections-ops",
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,  # 30 s, 60 s, 120 s (Airflow 3.3 takes a multiplier)
    "max_retry_delay": dt.timedelta(minutes=10),
}


def _controls() -> Any:
    """The run's controls (its trigger form), checked: a bad value fails the task, naming it."""
    from outreach.services import daily as service

    return service.run_controls(get_current_context()["params"])


def _as_of() -> dt.date:
    """The run's logical date in UTC; a run triggered without one uses its ``run_after``."""
    context = get_current_context()
    when = (context.get("logical_date") or context["dag_run"].run_after).astimezone(dt.UTC)
    # A plain date: Airflow hands out pendulum objects, which database drivers cannot bind.
    return dt.date(when.year, when.month, when.day)


@dag(
    dag_id="outreach_daily",
    description="Ingest, plan (policy-gated) and dispatch the day's outreach; report counts.",
    schedule="0 6 * * *",
    start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["outreach"],
    params={
        "clock": Param(
            "wall",
            enum=["wall", "logical"],
            description="wall: send what is inside its window now. logical (outbox only): "
            "walk the day's windows and stamp the day's settling on the day, for demos and "
            "backfills.",
        ),
        "batch_size": Param(
            5000, type="integer", minimum=1, description="Accounts per planning/dispatch batch."
        ),
        "dry_run": Param(
            False,
            type="boolean",
            description="Plan and count what would go out; write nothing to the ledger, send "
            "nothing.",
        ),
        "channels": Param(
            [],
            type="array",
            items={"type": "string", "enum": list(channel_kinds())},
            description="Channels to plan and send (empty: every channel).",
        ),
        "stages": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Ladder stages to plan (empty: every stage).",
        ),
        "accounts": Param(
            [],
            type="array",
            items={"type": "string"},
            maxItems=1000,
            description="Account refs to plan and send (empty: the whole portfolio).",
        ),
    },
    doc_md=__doc__,
)
def outreach_daily() -> None:
    @task
    def ingest() -> dict[str, Any]:
        from outreach.services import daily as service

        return service.ingest()

    @task
    def recall_placements() -> dict[str, Any]:
        from outreach.services import daily as service

        return service.recall_placements(_as_of())

    @task
    def settle() -> dict[str, Any]:
        from outreach.services import daily as service

        return service.settle(_as_of(), clock=get_current_context()["params"]["clock"])

    @task
    def score() -> dict[str, Any]:
        from outreach.services import daily as service

        return service.score(_as_of(), _controls())

    @task
    def plan_batches() -> list[dict[str, int]]:
        from outreach.services import daily as service

        params = get_current_context()["params"]
        return service.plan_batches(_as_of(), int(params["batch_size"]), _controls())

    @task
    def plan_batch(batch: dict[str, int]) -> dict[str, int]:
        from outreach.services import daily as service

        return service.plan_batch(_as_of(), batch["lo"], batch["hi"], _controls())

    @task
    def dispatch_batches(channel: str) -> list[dict[str, int]]:
        from outreach.services import daily as service

        params = get_current_context()["params"]
        return service.dispatch_batches(
            _as_of(), channel, int(params["batch_size"]), _controls()
        )

    @task
    def dispatch(channel: str, batch: dict[str, int]) -> dict[str, int]:
        from outreach.services import daily as service

        clock = get_current_context()["params"]["clock"]
        return service.dispatch_batch(_as_of(), channel, batch["lo"], batch["hi"], clock=clock)

    # none_failed: a channel with nothing to send skips its mapped task, which is not a failure.
    @task(trigger_rule="none_failed")
    def close_day(channel: str) -> dict[str, Any]:
        from outreach.services import daily as service

        return service.close_day(_as_of(), channel, _controls())

    @task(trigger_rule="none_failed")
    def refresh_call_queue() -> dict[str, Any]:
        from outreach.services import daily as service

        clock = get_current_context()["params"]["clock"]
        return service.refresh_call_queue(_as_of(), clock=clock, controls=_controls())

    @task(trigger_rule="none_failed")
    def summary(planned: list[dict[str, int]]) -> dict[str, Any]:
        from outreach.services import daily as service

        counts = service.summary(_as_of(), _controls(), planned)
        log.info("outreach summary (counts only): %s", counts)
        return counts

    batches = plan_batches()
    # Recalls first: an account back from its agency is planned the same day; then the day's
    # promises and arrangements are settled, so that a broken one resumes escalation today;
    # then the accounts are scored, so that the plan reads today's score bands.
    ingest() >> recall_placements() >> settle() >> score() >> batches
    planned = plan_batch.expand(batch=batches)
    finished = []
    closes_batch = closing_kinds("batch")
    kept_up = closing_kinds("upkeep")
    for channel in channel_kinds():
        ranges = dispatch_batches.override(task_id=f"dispatch_batches_{channel}")(channel=channel)
        planned >> ranges
        sent = (
            dispatch.override(task_id=f"dispatch_{channel}", pool=f"{channel}_dispatch")
            .partial(channel=channel)
            .expand(batch=ranges)
        )
        # What a channel writes for the whole day once its contacts are out: the print
        # batch's manifest, the placement file per agency; the call queue's upkeep.
        if channel in closes_batch:
            finished.append(sent >> close_day.override(task_id=f"close_{channel}")(channel))
        elif channel in kept_up:
            finished.append(sent >> refresh_call_queue())
        else:
            finished.append(sent)
    # The plan's counts go to the summary: a dry run's only record of what it would do.
    finished >> summary(planned)


outreach_daily()
