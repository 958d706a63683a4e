"""Imports a portfolio file (CSV or JSONL, optionally gzipped) into the application database.

Bad rows go to a rejects file with their line, field and reason; good rows are upserted in
set-based batches; importing the same file again changes nothing. Format: docs/import-format.md.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, update
from sqlalchemy.exc import DataError, IntegrityError

from outreach.kernel.clock import utcnow
from outreach.portfolio.accounts import (
    AccountIn,
    AccountRef,
    known_accounts,
    parse_account,
    write_accounts,
)
from outreach.portfolio.arrangement_records import (
    ArrangementIn,
    MeansIn,
    parse_arrangement,
    parse_means,
    write_arrangement_records,
)
from outreach.portfolio.cause_records import CauseIn, parse_cause, write_causes
from outreach.portfolio.files import (
    ImportInterruptedError,
    RejectsFile,
    default_rejects_path,
    file_format,
    iter_rows,
    text_stream,
)
from outreach.portfolio.history import (
    UNKNOWN_ACCOUNT,
    EventIn,
    HoldIn,
    OptOutIn,
    PaymentIn,
    ReversalIn,
    contact_point_ids,
    opt_out_people,
    parse_event,
    parse_hold,
    parse_opt_out,
    parse_payment,
    parse_reversal,
    write_events,
    write_holds,
    write_opt_outs,
    write_payments,
    write_reversals,
)
from outreach.portfolio.prescan import LaterLines, prescan, scan_keys
from outreach.portfolio.resolution_records import PromiseIn, parse_promise, write_promises
from outreach.portfolio.rows import REJECTED, STATUSES, Bad, Item, Reject, Row, shown_value
from outreach.storage.models import ImportRun

log = logging.getLogger(__name__)

CHUNK_LINES = 5000  # lines per transaction: big enough to amortise queries, small for memory

IMPORT_RUN = cast(Table, ImportRun.__table__)

RECORD_TYPES = (
    "account", "payment", "hold", "contact_event", "opt_out", "promise", "cause", "arrangement",
    "means", "payment_reversal",
)  # fmt: skip


@dataclass
class ImportReport:
    """What one import did. ``rows_read`` = inserted + updated + unchanged + superseded + rejected."""

    path: Path
    import_run_id: int
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # Earlier rows of a key that appears again later in the file: the last row decides (see doc).
    superseded: int = 0
    rejected: int = 0
    rejects_path: Path | None = None
    by_record: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        text = (
            f"{self.path.name}: {self.rows_read} rows read, {self.inserted} inserted, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.superseded} superseded, "
            f"{self.rejected} rejected in {self.seconds:.1f}s (import run {self.import_run_id})"
        )
        if self.rejects_path:
            text += f"; rejects in {self.rejects_path}"
        return text


_PARSERS: dict[str, Any] = {
    "payment": lambda row, fmt: parse_payment(row),
    "hold": lambda row, fmt: parse_hold(row),
    "contact_event": lambda row, fmt: parse_event(row),
    "opt_out": lambda row, fmt: parse_opt_out(row),
    "payment_reversal": lambda row, fmt: parse_reversal(row),
    "account": parse_account,
    "promise": lambda row, fmt: parse_promise(row),
    "cause": lambda row, fmt: parse_cause(row),
    "arrangement": lambda row, fmt: parse_arrangement(row),
    "means": lambda row, fmt: parse_means(row),
}


def _parse_row(row: Row, fmt: str) -> Item | Bad:
    """Validate one row on its own (no database); what needs the database waits for apply."""
    try:
        if row.error:
            raise Reject(row.data.get("field") if row.data else None, row.error)
        parser = _PARSERS.get(row.record)
        if parser is None:
            if not row.record:
                raise Reject("record", "required")
            raise Reject(
                "record", f"{shown_value(row.record)} is not one of: {', '.join(RECORD_TYPES)}"
            )
        item: Item = parser(row, fmt)
        item.keys = scan_keys(row.record, row.data)
        return item
    except Reject as rej:
        return Bad(row, rej.field, rej.reason)
    except Exception as exc:  # noqa: BLE001 - a row never stops the import
        # The type only: the message may quote the row's values.
        log.warning("line %d: %s while validating; the row is rejected", row.line,
                    type(exc).__name__)  # fmt: skip
        return Bad(row, None, f"cannot be read ({type(exc).__name__})")
    finally:
        row.data = {}


def _parse_chunks(path: Path, fmt: str, chunk_size: int) -> Iterator[list[Item | Bad]]:
    with path.open("rb", buffering=1 << 20) as binary, text_stream(path, binary) as text:
        chunk: list[Item | Bad] = []
        for row in iter_rows(path, fmt, text):
            chunk.append(_parse_row(row, fmt))
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


class _Chunks:
    """Applies the rows of one chunk in one transaction, set-based, in dependency order."""

    def __init__(self, engine: Engine, stamp: dt.datetime, later: LaterLines, fmt: str) -> None:
        self.engine = engine
        self.stamp = stamp
        self.later = later
        self.fmt = fmt
        self.sqlite = engine.dialect.name == "sqlite"

    def apply(self, items: list[Item | Bad]) -> list[tuple[Row, str | None, str]]:
        """Write one chunk; every item ends with a status; returns the rejects found here."""
        rejects: list[tuple[Row, str | None, str]] = []
        accounts: list[AccountIn] = []
        payments: list[PaymentIn] = []
        holds: list[HoldIn] = []
        events: list[EventIn] = []
        opt_outs: list[OptOutIn] = []
        promises: list[PromiseIn] = []
        causes: list[CauseIn] = []
        resolution: list[ArrangementIn | MeansIn] = []
        reversals: list[ReversalIn] = []
        later = self.later
        for item in items:
            if isinstance(item, Bad):
                rejects.append((item.row, item.field, item.reason))
                continue
            if item.keys:
                item.final = not later.superseded(item.keys[0], item.row.line)
            if isinstance(item, AccountIn):
                item.person_final = not later.superseded(item.keys[1], item.row.line)
                accounts.append(item)
            elif isinstance(item, PaymentIn):
                payments.append(item)
            elif isinstance(item, HoldIn):
                holds.append(item)
            elif isinstance(item, EventIn):
                events.append(item)
            elif isinstance(item, OptOutIn):
                opt_outs.append(item)
            elif isinstance(item, PromiseIn):
                promises.append(item)
            elif isinstance(item, CauseIn):
                causes.append(item)
            elif isinstance(item, (ArrangementIn, MeansIn)):
                resolution.append(item)
            elif isinstance(item, ReversalIn):
                reversals.append(item)

        with self.engine.begin() as conn:
            new_accounts, new_persons = write_accounts(conn, accounts, self.stamp)
            refs = {p.account_ref for p in payments} | {h.account_ref for h in holds}
            refs.update(e.account_ref for e in events)
            refs.update(o.account_ref for o in opt_outs if o.account_ref)
            refs.update(p.account_ref for p in promises)
            refs.update(c.account_ref for c in causes)
            refs.update(r.account_ref for r in resolution)
            known = known_accounts(conn, refs)

            def account_of(item: Item, ref: str) -> AccountRef | None:
                found = known.get(ref)
                if found is None or new_accounts.get(ref, 0) > item.row.line:
                    item.status = REJECTED
                    rejects.append((item.row, "account_ref", UNKNOWN_ACCOUNT))
                    return None
                return found

            # Promises and arrangements before the payments: a payment is allocated to the open
            # promises and the instalments of its account (outreach.resolution.payments), so what
            # a payment pays must be there when the chunk's payments are.
            write_promises(
                conn, [(p, a) for p in promises if (a := account_of(p, p.account_ref))], rejects
            )
            write_arrangement_records(
                conn, [(r, a) for r in resolution if (a := account_of(r, r.account_ref))],
                self.stamp.date(), rejects,
            )  # fmt: skip
            inserted = write_payments(
                conn, [(p, a) for p in payments if (a := account_of(p, p.account_ref))], rejects
            )
            write_reversals(conn, reversals, inserted, rejects)
            write_holds(
                conn,
                [(h, a) for h in holds if (a := account_of(h, h.account_ref))],
                self.sqlite,
            )
            resolved_events = [(e, a) for e in events if (a := account_of(e, e.account_ref))]
            resolved_opt_outs = opt_out_people(
                conn, opt_outs, known, new_accounts, new_persons, rejects
            )
            person_ids = {a.person_id for _, a in resolved_events}
            person_ids.update(a.person_id for _, a in resolved_opt_outs)
            contact_ids = contact_point_ids(conn, person_ids)
            write_events(conn, resolved_events, contact_ids, rejects)
            write_opt_outs(conn, resolved_opt_outs, contact_ids, rejects, self.sqlite)
            write_causes(conn, [(c, a) for c in causes if (a := account_of(c, c.account_ref))])
        return rejects


def import_file(
    path: Path,
    *,
    engine: Engine,
    rejects_path: Path | None = None,
    chunk_size: int = CHUNK_LINES,
) -> ImportReport:
    """Import one portfolio file; see docs/import-format.md for the format and the rules.

    Raises ImportFileError when the file cannot be read at all (nothing written); bad rows are
    rejected one by one. Raises ImportInterruptedError when the import stops part-way (the
    chunks before the line it names are committed; importing the file again finishes).
    """
    path = Path(path)
    began = time.monotonic()
    fmt = file_format(path)
    # One instant for the whole run: every row it writes carries it as updated_at.
    stamp = utcnow()
    scan = prescan(path, fmt)
    with engine.begin() as conn:
        run_id = conn.execute(
            insert(IMPORT_RUN).values(
                file_name=str(path)[-300:],
                file_sha256=scan.sha256,
                started_at=stamp,
                rows_read=0,
                rows_upserted=0,
                rows_unchanged=0,
                rows_rejected=0,
            )  # fmt: skip
        ).inserted_primary_key[0]  # type: ignore[index]
    report = ImportReport(path=path, import_run_id=run_id)
    rejects = RejectsFile(
        rejects_path or default_rejects_path(path, stamp), always=rejects_path is not None
    )
    chunks = _Chunks(engine, stamp, scan.later, fmt)
    # The import allocates millions of short-lived, acyclic objects: collecting the young
    # generation every 700 allocations costs ~15% of the run for nothing.
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 100_000), *thresholds[1:])
    committed = 0  # the last line of the last committed chunk
    try:
        for parsed in _parse_chunks(path, fmt, chunk_size):
            try:
                found = chunks.apply(parsed)
            except (DataError, IntegrityError):
                # A row the database refuses (a constraint the validation does not know): find
                # it by applying the chunk's rows one by one, and reject it like any other.
                found = _apply_one_by_one(chunks, parsed)
            _count(report, rejects, parsed, found)
            committed = parsed[-1].row.line
    except Exception as exc:
        # The type only: a driver's message may quote the rows.
        log.error("import run %d stopped after line %d: %s", run_id, committed,
                  type(exc).__name__)  # fmt: skip
        done = (
            f"lines 1-{committed} are in the database, the rest are not"
            if committed
            else "nothing was imported"
        )
        raise ImportInterruptedError(
            f"{path.name}: the import stopped after line {committed} ({type(exc).__name__}): "
            f"{done}; import the file again to finish (a re-import leaves what is already "
            "there unchanged)"
        ) from exc
    finally:
        gc.set_threshold(*thresholds)
        rejects.close()
        report.rejects_path = rejects.path if rejects.written else None
        report.seconds = time.monotonic() - began
        _finish_run(engine, report)
    log.info(
        "import run %d: %d rows read, %d inserted, %d updated, %d unchanged, %d superseded, "
        "%d rejected in %.1fs",
        report.import_run_id, report.rows_read, report.inserted, report.updated,
        report.unchanged, report.superseded, report.rejected, report.seconds,
    )  # fmt: skip
    return report


def _apply_one_by_one(
    chunks: _Chunks, items: list[Item | Bad]
) -> list[tuple[Row, str | None, str]]:
    """Apply a chunk the database refused one row at a time (each its own transaction), the
    rows it refuses becoming rejects; the result is the chunk's, as the file's split into
    chunks never changes it."""
    rejected: list[tuple[Row, str | None, str]] = []
    for item in items:
        if isinstance(item, Item):
            item.status, item.changed = "", False  # what the failed attempt had set
        try:
            rejected.extend(chunks.apply([item]))
        except (DataError, IntegrityError) as exc:
            assert isinstance(item, Item)  # a Bad is never written
            item.status = REJECTED
            refused = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
            rejected.append((item.row, None, f"refused by the database ({refused})"))
    return rejected


def _count(
    report: ImportReport,
    rejects: RejectsFile,
    items: list[Item | Bad],
    rejected: list[tuple[Row, str | None, str]],
) -> None:
    for row, field_name, reason in sorted(rejected, key=lambda r: r[0].line):
        rejects.write(row, field_name, reason)
    for item in items:
        if isinstance(item, Bad):
            record = item.row.record if item.row.record in RECORD_TYPES else "invalid"
            status = REJECTED
        else:
            record, status = item.row.record, item.status
            if not status:
                raise RuntimeError(f"line {item.row.line}: no outcome recorded (importer bug)")
        counts = report.by_record.setdefault(record, dict.fromkeys(("read", *STATUSES), 0))
        counts["read"] += 1
        counts[status] += 1
        report.rows_read += 1
        setattr(report, status, getattr(report, status) + 1)


def _finish_run(engine: Engine, report: ImportReport) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(IMPORT_RUN)
            .where(IMPORT_RUN.c.id == report.import_run_id)
            .values(
                rows_read=report.rows_read,
                rows_upserted=report.inserted + report.updated,
                # The table has no superseded column: those rows decided nothing, like unchanged.
                rows_unchanged=report.unchanged + report.superseded,
                rows_rejected=report.rejected,
                rejects_path=str(report.rejects_path) if report.rejects_path else None,
            )
        )
