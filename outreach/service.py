"""Use cases the DAGs and the CLI call: each takes plain values and returns counts (no PII).

Everything returned here may go into XCom: integers, dates as ISO strings, channel and stage
names, reason codes. Never names, numbers, addresses or amounts per person.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from outreach import settings
from outreach.db import get_engine, migrate


def setup_database() -> None:
    """Create or upgrade the application schema (idempotent)."""
    migrate()


def ingest(inbox: Path | None = None) -> dict[str, Any]:
    """Import every portfolio file waiting in the inbox (``data/inbox`` by default), moving each
    to ``data/inbox/done`` once imported. Returns counts per file."""
    from outreach.importer import import_file

    inbox = inbox or settings.data_dir() / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    done = inbox / "done"
    done.mkdir(exist_ok=True)
    totals: dict[str, Any] = {"files": 0, "rows_read": 0, "rejected": 0}
    for path in sorted(p for p in inbox.iterdir() if p.is_file()):
        report = import_file(path, engine=get_engine())
        totals["files"] += 1
        totals["rows_read"] += report.rows_read
        totals["rejected"] += report.rejected
        path.rename(done / path.name)
    return totals


def plan_batches(as_of: dt.date, batch_size: int) -> list[dict[str, int]]:
    """Split the portfolio into account-id ranges of about ``batch_size`` accounts."""
    from outreach.ladder import load_ladder
    from outreach.planner import account_ranges
    from outreach.policy_settings import policy_settings
    from policies.packs import assert_valid

    # A broken pack, ladder or policy setting fails the run before anything is planned.
    assert_valid()
    load_ladder(settings.ladder_path())
    policy_settings()
    return [{"lo": lo, "hi": hi} for lo, hi in account_ranges(get_engine(), batch_size)]


def plan_batch(as_of: dt.date, lo: int, hi: int) -> dict[str, int]:
    """Plan accounts ``lo..hi`` (inclusive ids) as of ``as_of``; returns verdict counts."""
    from outreach.ladder import load_ladder
    from outreach.planner import plan_range

    ladder = load_ladder(settings.ladder_path())
    return plan_range(get_engine(), ladder, as_of, lo, hi).as_dict()


def dispatch_batches(as_of: dt.date, channel: str, batch_size: int) -> list[dict[str, int]]:
    """Account-id ranges holding contacts of ``channel`` planned for ``as_of``."""
    from outreach.dispatcher import dispatch_ranges

    return [
        {"lo": lo, "hi": hi} for lo, hi in dispatch_ranges(get_engine(), as_of, channel, batch_size)
    ]


def dispatch_batch(
    as_of: dt.date, channel: str, lo: int, hi: int, *, clock: str = "wall"
) -> dict[str, int]:
    """Send the planned ``channel`` contacts of accounts ``lo..hi`` for ``as_of``.

    ``clock="wall"`` sends what is inside its window now. ``clock="logical"`` (outbox only)
    walks the day's dispatch windows as the hourly dispatcher would, so a demo or a backfill
    on the outbox covers the whole day.
    """
    from outreach.dispatcher import dispatch_range

    return dispatch_range(get_engine(), as_of, channel, lo, hi, clock=clock).as_dict()


def summary(as_of: dt.date) -> dict[str, Any]:
    """Counts for the day: planned/sent by stage and channel, suppressed by reason code."""
    from outreach.reporting import day_summary

    return day_summary(get_engine(), as_of)
