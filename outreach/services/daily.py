"""Use cases the DAGs and the CLI call: each takes plain values and returns counts (no PII).

Everything returned here may go into XCom: integers, dates as ISO strings, channel and stage
names, reason codes. Never names, numbers, addresses or amounts per person.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from outreach import settings
from outreach.kernel.clock import on_day, utcnow
from outreach.planning.kinds import CHANNELS, KINDS, channel_kind, resolve
from outreach.planning.planner import PlanScope
from outreach.services.config import Config, load_config
from outreach.storage.db import get_engine, migrate

log = logging.getLogger(__name__)


def checked_config() -> Config:
    """The whole configuration, validated (``outreach.services.config``). Every task of a run that acts
    calls it first, so a broken file fails the run at its first task, with one error listing
    every problem, before anything is imported, planned or sent; never after some channels
    have dispatched."""
    return load_config(engine=get_engine())


def setup_database() -> None:
    """Create or upgrade the application schema (idempotent)."""
    migrate()


def ingest(inbox: Path | None = None) -> dict[str, Any]:
    """Import what waits in the inbox (``data/inbox`` by default), moving each file to a
    ``done`` folder beside it once imported: portfolio files at the top, the mail house's
    returned mail under ``returned_mail/``, each agency's returns under
    ``agency_returns/<agency>/``. A file that cannot be read as a whole goes to a
    ``quarantine`` folder beside it with a reason file (outreach.portfolio.quarantine) and the others are
    imported: one bad file never stops the day. Returns counts, and the quarantined files'
    names (``quarantined``, ``quarantined_files``)."""
    import csv

    from outreach.media.agency.returns import import_agency_returns
    from outreach.media.letters.returned import import_returned_mail
    from outreach.portfolio.files import ImportFileError
    from outreach.portfolio.importer import import_file

    checked_config()
    inbox = inbox or settings.data_dir() / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    engine = get_engine()
    at = utcnow()
    totals: dict[str, Any] = {
        "files": 0, "rows_read": 0, "rejected": 0, "quarantined": 0, "quarantined_files": [],
    }  # fmt: skip
    # What a file that cannot be read raises. The returned-mail and agency readers also let a
    # decoding or CSV error through; a database error is not the file's fault and fails the task.
    unreadable = (ImportFileError, UnicodeError, csv.Error)
    for path in _waiting(inbox):
        try:
            report = import_file(path, engine=engine)
        except ImportFileError as exc:
            _quarantine(inbox, path, exc, at, totals)
            continue
        totals["rows_read"] += report.rows_read
        totals["rejected"] += report.rejected
        _done(path, totals)
    for path in _waiting(inbox / "returned_mail"):
        try:
            returned = import_returned_mail(engine, path, at)
        except unreadable as exc:
            _quarantine(inbox, path, exc, at, totals)
            continue
        totals["returned_mail"] = totals.get("returned_mail", 0) + int(returned["returned"])
        totals["rejected"] += int(returned["rejected"])
        _done(path, totals)
    returns = inbox / "agency_returns"
    for agency_dir in sorted(p for p in returns.iterdir() if p.is_dir()) if returns.is_dir() else []:
        if agency_dir.name == "done":
            continue
        for path in _waiting(agency_dir):
            try:
                imported = import_agency_returns(engine, agency_dir.name, path, at)
            except unreadable as exc:
                _quarantine(inbox, path, exc, at, totals)
                continue
            totals["agency_returns"] = totals.get("agency_returns", 0) + int(imported["inserted"])
            totals["rejected"] += int(imported.get("rejected", 0))
            _done(path, totals)
    return totals


def _quarantine(
    inbox: Path, path: Path, exc: Exception, at: dt.datetime, totals: dict[str, Any]
) -> None:
    from outreach.portfolio.quarantine import quarantine

    # ImportFileError's text names the file and the problem; a decoding or CSV error from the
    # other readers is named by its kind (its text could quote the bytes it choked on).
    reason = str(exc) if not isinstance(exc, UnicodeError) else f"{path.name}: not UTF-8 text"
    log.warning("ingest: %s quarantined: %s", path.relative_to(inbox).as_posix(), reason)
    quarantine(path, reason, at)
    totals["quarantined"] += 1
    totals["quarantined_files"].append(path.relative_to(inbox).as_posix())


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
    from outreach.media.agency.files import recall_placements as recall

    checked_config()
    return recall(get_engine(), as_of)


def settle(as_of: dt.date, clock: str = "wall") -> dict[str, Any]:
    """Settle the day's promises, instalments and arrangements before it is planned
    (outreach.resolution.settle): a broken promise resumes escalation the same day. Then the
    previous day, now complete, goes to the system of record: its arrangement file
    (outreach.operations.arrangement_file). On the logical clock the changes are stamped on the
    day settled (``on_the_day``)."""
    from outreach.operations.arrangement_file import write_arrangement_file
    from outreach.resolution.settle import settle_day

    checked_config()
    engine = get_engine()
    with on_the_day(as_of, clock):
        counts = settle_day(engine, as_of)
        exported = write_arrangement_file(engine, as_of - dt.timedelta(days=1))
    return {"as_of": as_of.isoformat(), **counts, **exported}


def score(as_of: dt.date, controls: RunControls | None = None) -> dict[str, Any]:
    """Score every account with the active score model before the day is planned
    (outreach.measurement.scoring): the plan reads each account's band. No active model: nothing
    is scored and the result says so; the plan runs as it always has. A dry run writes no score
    (the plan reads the latest ones already written)."""
    from outreach.measurement.score_config import score_config
    from outreach.measurement.scoring import score_day

    checked_config()
    if controls is not None and controls.dry_run:
        return {"as_of": as_of.isoformat(), "scored": 0, "skipped": "dry run"}
    return score_day(get_engine(), as_of, score_config())


@contextlib.contextmanager
def on_the_day(as_of: dt.date, clock: str = "wall") -> Iterator[None]:
    """On the logical clock (a demo, a backfill), what a step records is stamped on the run's
    day at the wall clock's time of day (``outreach.kernel.clock``), so that the day's summary,
    explain and the timeline place it on that day; on the wall clock, nothing changes."""
    if clock != "logical":
        yield
        return
    with on_day(as_of):
        yield


def channel_kinds() -> tuple[str, ...]:
    """Every channel kind, in the order a run takes them (``outreach.planning.kinds``)."""
    return CHANNELS


def redriven_kinds() -> tuple[str, ...]:
    """The kinds whose transient failures (a provider outage, its retries spent) are sent
    again while their window is open: those an outside provider carries."""
    return tuple(k for k in CHANNELS if KINDS[k].medium == "provider")


def closing_kinds(closing: str) -> tuple[str, ...]:
    """The kinds that close a day by ``closing``: ``batch`` (``close_day`` once the day's
    contacts are out: the print batch, the placement files) or ``upkeep`` (kept up on the wall
    clock: the agent call queue, ``refresh_call_queue``)."""
    return tuple(k for k in CHANNELS if KINDS[k].closing == closing)


def close_day(
    as_of: dt.date, channel: str, controls: RunControls | None = None
) -> dict[str, Any]:
    """What a channel writes once its day's contacts are dispatched: the print batch's
    manifest for letters, a placement file per agency for placements (not on a dry run)."""
    checked_config()
    if controls is not None and not controls.sends(channel):
        return {"skipped": "dry run or channel left out"}
    kind = channel_kind(channel)
    if kind.closing == "batch" and kind.close_step is not None:
        result: dict[str, Any] = resolve(kind.close_step)(get_engine(), as_of)
        return result
    return {}


def refresh_call_queue(
    as_of: dt.date, *, clock: str = "wall", controls: RunControls | None = None
) -> dict[str, Any]:
    """Upkeep of the agent call queue on the wall clock: expire closed windows, queue stale
    claims again, withdraw tasks the gate now stops. Agents work in real time, so a run on the
    logical clock (a demo, a backfill) leaves the queue alone."""
    kind = channel_kind("call")
    assert kind.closing == "upkeep" and kind.close_step is not None
    refresh = resolve(kind.close_step)

    checked_config()
    if clock == "logical":
        return {"skipped": "logical clock"}
    if controls is not None and not controls.sends("call"):
        return {"skipped": "dry run or calls left out"}
    now = utcnow()
    result: dict[str, Any] = refresh(get_engine(), as_of, now)
    return result


@dataclass(frozen=True)
class RunControls:
    """What one run of the daily DAG does (its trigger form's params): a dry run plans and
    counts but writes and sends nothing; a scope limits the plan to some channels, stages or
    accounts, and the dispatch to those channels and accounts."""

    dry_run: bool = False
    scope: PlanScope = field(default_factory=PlanScope)

    @property
    def account_refs(self) -> frozenset[str] | None:
        return self.scope.account_refs

    def sends(self, channel: str) -> bool:
        return not self.dry_run and (self.scope.channels is None or channel in self.scope.channels)


MAX_ACCOUNT_FILTER = 1000


def run_controls(params: Mapping[str, Any] | None) -> RunControls:
    """The controls from a run's params, checked: unknown channels or stages, or too many
    accounts, are refused with the param named (an empty list means all)."""

    params = params or {}
    channels = list(params.get("channels") or [])
    unknown = sorted(set(channels) - set(CHANNELS))
    if unknown:
        raise ValueError(f"params.channels: unknown channel {unknown[0]!r}")
    stages = list(params.get("stages") or [])
    # The whole configuration first: a broken file is reported as such, not as a bad param.
    # The resolution actions' stage (``resolution``) may be named like any other.
    known = {stage.id for stage in checked_config().ladder.all_stages}
    unknown = sorted(set(stages) - known)
    if unknown:
        raise ValueError(f"params.stages: {unknown[0]!r} is not a stage of the ladder in force")
    accounts = [str(a).strip() for a in params.get("accounts") or [] if str(a).strip()]
    if len(accounts) > MAX_ACCOUNT_FILTER:
        raise ValueError(f"params.accounts: at most {MAX_ACCOUNT_FILTER} account refs a run")
    scope = PlanScope(
        channels=frozenset(channels) or None,
        stages=frozenset(stages) or None,
        account_refs=frozenset(accounts) or None,
    )
    return RunControls(dry_run=bool(params.get("dry_run", False)), scope=scope)


def plan_batches(
    as_of: dt.date, batch_size: int, controls: RunControls | None = None
) -> list[dict[str, int]]:
    """Split the portfolio (or the run's accounts) into account-id ranges of about
    ``batch_size`` accounts."""
    from outreach.planning.planner import account_ranges
    from policies.packs import assert_valid

    # A broken pack or config file fails the run before anything is planned.
    assert_valid()
    checked_config()
    controls = controls or RunControls()
    if controls.account_refs is None:
        return [{"lo": lo, "hi": hi} for lo, hi in account_ranges(get_engine(), batch_size)]
    ids = _account_ids(controls.account_refs)
    return [
        {"lo": ids[i], "hi": ids[min(i + batch_size, len(ids)) - 1]}
        for i in range(0, len(ids), batch_size)
    ]


def _account_ids(refs: frozenset[str]) -> list[int]:
    """The ids of the run's accounts, sorted; an unknown ref is refused by name."""
    from outreach.kernel.facts import account_ids_by_ref

    with get_engine().connect() as conn:
        found = account_ids_by_ref(conn, refs)
    missing = sorted(refs - set(found))
    if missing:
        raise ValueError(f"params.accounts: no account {missing[0]!r}")
    return sorted(int(i) for i in found.values())


def plan_batch(
    as_of: dt.date, lo: int, hi: int, controls: RunControls | None = None
) -> dict[str, int]:
    """Plan accounts ``lo..hi`` (inclusive ids) as of ``as_of``; returns verdict counts."""
    from outreach.planning.planner import plan_range

    controls = controls or RunControls()
    ladder = checked_config().ladder
    counts = plan_range(
        get_engine(), ladder, as_of, lo, hi, scope=controls.scope, write=not controls.dry_run
    )
    return counts.as_dict()


def dispatch_batches(
    as_of: dt.date, channel: str, batch_size: int, controls: RunControls | None = None
) -> list[dict[str, int]]:
    """Account-id ranges holding contacts of ``channel`` planned for ``as_of``: none on a dry
    run or for a channel the run leaves out; only the run's accounts when it names some."""
    from outreach.dispatch.dispatcher import dispatch_ranges

    checked_config()
    controls = controls or RunControls()
    if not controls.sends(channel):
        return []
    ranges = dispatch_ranges(get_engine(), as_of, channel, batch_size)
    if controls.account_refs is not None:
        ids = _account_ids(controls.account_refs)
        # One range per account named (the filter is for a few accounts at a time): a range
        # never takes in an account the run did not name.
        return [{"lo": i, "hi": i} for i in ids if any(lo <= i <= hi for lo, hi in ranges)]
    return [{"lo": lo, "hi": hi} for lo, hi in ranges]


def dispatch_batch(
    as_of: dt.date, channel: str, lo: int, hi: int, *, clock: str = "wall"
) -> dict[str, int]:
    """Send the planned ``channel`` contacts of accounts ``lo..hi`` for ``as_of``.

    ``clock="wall"`` sends what is inside its window now. ``clock="logical"`` (outbox only)
    walks the day's dispatch windows as the hourly dispatcher would, so a demo or a backfill
    on the outbox covers the whole day.
    """
    from outreach.dispatch.dispatcher import dispatch_range

    checked_config()
    return dispatch_range(get_engine(), as_of, channel, lo, hi, clock=clock).as_dict()


def redrive(as_of: dt.date, channel: str) -> dict[str, int]:
    """Give contacts of ``channel`` that failed transiently (a provider outage, its retries
    spent) back to the queue while their window is open, for today and yesterday's evening
    windows; the dispatch that follows judges them again before sending."""
    from outreach.operations.redrive import redrive_failed

    checked_config()
    totals: dict[str, int] = {}
    for day in (as_of - dt.timedelta(days=1), as_of):
        for name, n in redrive_failed(get_engine(), day, channel).items():
            totals[name] = totals.get(name, 0) + int(n)
    return totals


def summary(
    as_of: dt.date,
    controls: RunControls | None = None,
    planned: Iterable[Mapping[str, int]] = (),
) -> dict[str, Any]:
    """Counts for the day: planned/sent by stage and channel, suppressed by reason code. A dry
    run's are its plan's counts (``planned``, one dict per batch): nothing was written."""
    from outreach.operations.reporting import day_summary
    from outreach.portfolio.quarantine import in_quarantine

    if controls is not None and controls.dry_run:
        totals: dict[str, int] = {}
        for counts in planned:
            for name, n in counts.items():
                totals[name] = totals.get(name, 0) + int(n)
        return {
            "as_of": as_of.isoformat(),
            "dry_run": True,
            "plan": totals,
            "quarantined_files": in_quarantine(settings.data_dir() / "inbox"),
        }
    return day_summary(get_engine(), as_of)
