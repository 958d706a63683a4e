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
    """Import what waits in the inbox (``data/inbox`` by default), moving each file to a
    ``done`` folder beside it once imported: portfolio files at the top, the mail house's
    returned mail under ``returned_mail/``, each agency's returns under
    ``agency_returns/<agency>/``. Returns counts."""
    from outreach.importer import import_file
    from outreach.letters import import_returned_mail
    from outreach.placement import import_agency_returns

    inbox = inbox or settings.data_dir() / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    engine = get_engine()
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    totals: dict[str, Any] = {"files": 0, "rows_read": 0, "rejected": 0}
    for path in _waiting(inbox):
        report = import_file(path, engine=engine)
        totals["rows_read"] += report.rows_read
        totals["rejected"] += report.rejected
        _done(path, totals)
    for path in _waiting(inbox / "returned_mail"):
        returned = import_returned_mail(engine, path, at)
        totals["returned_mail"] = totals.get("returned_mail", 0) + int(returned["returned"])
        totals["rejected"] += int(returned["rejected"])
        _done(path, totals)
    returns = inbox / "agency_returns"
    for agency_dir in sorted(p for p in returns.iterdir() if p.is_dir()) if returns.is_dir() else []:
        if agency_dir.name == "done":
            continue
        for path in _waiting(agency_dir):
            imported = import_agency_returns(engine, agency_dir.name, path, at)
            totals["agency_returns"] = totals.get("agency_returns", 0) + int(imported["inserted"])
            totals["rejected"] += int(imported.get("rejected", 0))
            _done(path, totals)
    return totals


def _waiting(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def _done(path: Path, totals: dict[str, Any]) -> None:
    done = path.parent / "done"
    done.mkdir(exist_ok=True)
    path.rename(done / path.name)
    totals["files"] += 1


def recall_placements(as_of: dt.date) -> dict[str, Any]:
    """Recall the placements due back (by days, or at once on a dispute, bankruptcy, cease
    request or payment in full) and write the recall files; before the day is planned, so the
    plan sees the accounts back."""
    from outreach.placement import recall_placements as recall

    return recall(get_engine(), as_of)


def close_day(as_of: dt.date, channel: str) -> dict[str, Any]:
    """What a channel writes once its day's contacts are dispatched: the print batch's
    manifest for letters, a placement file per agency for placements."""
    if channel == "letter":
        from outreach.letters import close_print_batch

        return close_print_batch(get_engine(), as_of)
    if channel == "agency":
        from outreach.placement import write_placement_files

        return write_placement_files(get_engine(), as_of)
    return {}


def refresh_call_queue(as_of: dt.date, *, clock: str = "wall") -> dict[str, Any]:
    """Upkeep of the agent call queue on the wall clock: expire closed windows, queue stale
    claims again, withdraw tasks the gate now stops. Agents work in real time, so a run on the
    logical clock (a demo, a backfill) leaves the queue alone."""
    from outreach.call_queue import refresh_call_queue as refresh

    if clock == "logical":
        return {"skipped": "logical clock"}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return refresh(get_engine(), as_of, now)


def plan_batches(as_of: dt.date, batch_size: int) -> list[dict[str, int]]:
    """Split the portfolio into account-id ranges of about ``batch_size`` accounts."""
    from outreach.ladder import load_ladder
    from outreach.placement import agency_config
    from outreach.planner import account_ranges
    from outreach.policy_settings import policy_settings
    from policies.packs import assert_valid

    # A broken pack, ladder, policy setting or agency file fails the run before anything is
    # planned.
    assert_valid()
    load_ladder(settings.ladder_path())
    policy_settings()
    agency_config()
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
