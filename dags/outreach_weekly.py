"""The week's reports: the KPI report of the last complete ISO week (HTML with charts, JSON,
CSV) written to the report drop (``OUTREACH_REPORT_DROP``: a folder or an object-storage URL).

Wiring only: each task calls one function of ``outreach.services``. The week is taken from the
run's logical date, never the wall clock, and the files are stamped with that date: a rerun
writes the same bytes. Only counts and the drop folder go to XCom.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

log = logging.getLogger(__name__)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "collections-ops",
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=10),
}


def _as_of() -> dt.date:
    """The run's logical date in UTC; a run triggered without one uses its ``run_after``."""
    context = get_current_context()
    when = (context.get("logical_date") or context["dag_run"].run_after).astimezone(dt.UTC)
    return dt.date(when.year, when.month, when.day)


@dag(
    dag_id="outreach_weekly",
    description="The last complete ISO week's KPI report (HTML, JSON, CSV) to the report drop.",
    schedule="0 7 * * 1",  # Mondays 07:00 UTC, after the day's outreach_daily has planned
    start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["outreach"],
    params={
        "lang": Param("en", enum=["en", "zh-CN"], description="The report's labels."),
    },
    doc_md=__doc__,
)
def outreach_weekly() -> None:
    @task
    def report() -> dict[str, Any]:
        from outreach.services import reports as service

        lang = get_current_context()["params"]["lang"]
        written = service.weekly_report(_as_of(), lang=lang)
        log.info("weekly report (counts only): %s", written)
        return written

    report()


outreach_weekly()
