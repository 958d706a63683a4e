"""The files agencies get: the day's placement file per agency, written once the day's placements
are out, and the recall file; recalling the placements due back (by days, or at once on a
dispute, bankruptcy, cease request or payment in full). Format: docs/agency-and-legal.md."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, text

from contact_channels.drops import csv_bytes
from outreach.kernel.clock import utcnow
from outreach.kernel.facts import as_date
from outreach.media.agency.config import agency_config, drop_root
from outreach.media.agency.placement import (
    PLACEMENT_COLUMNS,
    RECALL_COLUMNS,
    RECALL_HOLDS,
    RECALL_REASONS,
    _decimal,
    account_lines,
    recall_reason,
)
from outreach.media.documents import record_document

log = logging.getLogger(__name__)


def write_if_changed(path: Any, data: bytes) -> bool:
    """Write ``data`` to an ObjectStoragePath unless it already holds exactly these bytes."""
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def _write_agency_files(
    engine: Engine,
    day: dt.date,
    kind: str,
    name: str,
    columns: Sequence[str],
    rows_by_agency: Mapping[str, list[dict[str, str]]],
) -> dict[str, int]:
    config = agency_config()
    counts = {"files_written": 0, "files_unchanged": 0}
    now = utcnow()
    for agency_id in sorted(rows_by_agency):
        rows = sorted(rows_by_agency[agency_id], key=lambda r: (r["account_ref"], r["placed_on"]))
        agency = config.agency(agency_id)
        root = drop_root(
            "agency", agency_id, agency.drop if agency else None, agency.conn_id if agency else None
        )
        path = root / day.isoformat() / f"{name}-{agency_id}.csv"
        data = csv_bytes(columns, rows)
        written = write_if_changed(path, data)
        counts["files_written" if written else "files_unchanged"] += 1
        with engine.begin() as conn:
            record_document(
                conn, kind=kind, day=day, recipient=agency_id, path=str(path), data=data, now=now
            )
    return counts


def write_placement_files(engine: Engine, day: dt.date) -> dict[str, int]:
    """One CSV per agency of the accounts placed with it on ``day`` (recalled since or not, so
    a rerun after a recall writes the same file): ``<drop>/<day>/placements-<agency>.csv``,
    sorted by account, with a ``document`` row (kind placement_file). A rerun of the same day
    on the same data writes nothing and adds no row."""
    with engine.connect() as conn:
        placements = conn.execute(
            text(
                "SELECT account_id, agency, balance_at_placement, placed_on, recall_due_on "
                "FROM placement WHERE placed_on = :day ORDER BY agency, account_id"
            ),
            {"day": day},
        ).all()
        lines = account_lines(conn, [p[0] for p in placements], day)
    by_agency: dict[str, list[dict[str, str]]] = {}
    for account_id, agency, balance, placed_on, recall_due_on in placements:
        by_agency.setdefault(agency, []).append(
            {
                **lines[account_id],
                # The balance as placed: what the agency was given to collect.
                "balance": str(_decimal(balance)),
                "placed_on": str(as_date(placed_on)),
                "recall_due_on": str(as_date(recall_due_on)),
            }
        )
    counts = _write_agency_files(
        engine, day, "placement_file", "placements", PLACEMENT_COLUMNS, by_agency
    )
    return {"agencies": len(by_agency), "placements": len(placements), **counts}


# --- recall -------------------------------------------------------------------------------------


def recall_placements(engine: Engine, day: dt.date) -> dict[str, Any]:
    """Recall the open placements whose recall date has come, and at once those whose account
    is disputed, bankrupt, under a cease request, paid in full or no longer past due (facts as
    of ``day``: holds active on it, payments up to it). Then one recall file per agency of the
    placements recalled on ``day``: ``<drop>/<day>/recalls-<agency>.csv`` (document kind
    recall_file). Idempotent: a rerun recalls nothing new and rewrites the same bytes."""
    now = utcnow()
    recalled: Counter[str] = Counter()
    with engine.begin() as conn:
        # Balance and past due as the gate's facts have them on ``day``: less the payments
        # made after the balance's date.
        placements = conn.execute(
            text(
                "SELECT p.id, p.account_id, p.recall_due_on, a.balance, a.amount_past_due, "
                "(SELECT COALESCE(SUM(y.amount), 0) FROM payment y WHERE y.account_id = p.account_id "
                "AND y.paid_on > a.balance_as_of AND y.paid_on <= :day "
                "AND NOT (y.status = 'reversed' AND y.reversed_on <= :day)) "
                "FROM placement p JOIN account a ON a.id = p.account_id "
                "WHERE p.state = 'open' AND p.placed_on <= :day ORDER BY p.id"
            ),
            {"day": day},
        ).all()
        holds: dict[int, set[str]] = {}
        for account_id, kind in conn.execute(
            text(
                "SELECT account_id, kind FROM account_hold WHERE account_id IN "
                "(SELECT account_id FROM placement WHERE state = 'open') "
                "AND kind IN :kinds AND started_on <= :day "
                "AND (ended_on IS NULL OR ended_on > :day)"
            ).bindparams(bindparam("kinds", expanding=True)),
            {"day": day, "kinds": list(RECALL_HOLDS)},
        ):
            holds.setdefault(account_id, set()).add(kind)
        for placement_id, account_id, recall_due_on, balance, past_due, paid in placements:
            reason = recall_reason(
                holds.get(account_id, ()),
                _decimal(balance) - _decimal(paid),
                _decimal(past_due) - _decimal(paid),
                recall_due_on=as_date(recall_due_on),
                day=day,
            )
            if reason is None:
                continue
            conn.execute(
                text(
                    "UPDATE placement SET state = 'recalled', recalled_on = :day, "
                    "recall_reason = :reason, updated_at = :now WHERE id = :id AND state = 'open'"
                ),
                {"day": day, "reason": reason, "now": now, "id": placement_id},
            )
            recalled[reason] += 1
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.agency, a.account_ref, p.placed_on, p.recalled_on, p.recall_reason "
                "FROM placement p JOIN account a ON a.id = p.account_id "
                "WHERE p.state = 'recalled' AND p.recalled_on = :day"
            ),
            {"day": day},
        ).all()
    by_agency: dict[str, list[dict[str, str]]] = {}
    for agency, account_ref, placed_on, recalled_on, reason in rows:
        by_agency.setdefault(agency, []).append(
            {
                "account_ref": account_ref,
                "placed_on": str(as_date(placed_on)),
                "recalled_on": str(as_date(recalled_on)),
                "recall_reason": reason,
            }
        )
    counts = _write_agency_files(engine, day, "recall_file", "recalls", RECALL_COLUMNS, by_agency)
    log.info("recall %s: %d recalled %s", day, sum(recalled.values()), dict(recalled))
    return {
        "open_checked": len(placements),
        "recalled": sum(recalled.values()),
        "by_reason": {r: recalled[r] for r in RECALL_REASONS if recalled[r]},
        "recalled_today": len(rows),
        **counts,
    }


def placements_summary(engine: Engine) -> dict[str, Any]:
    """Open placements per agency and capacity: counts only."""
    config = agency_config()
    with engine.connect() as conn:
        open_counts: dict[str, int] = dict(
            conn.execute(
                text("SELECT agency, COUNT(*) FROM placement WHERE state = 'open' GROUP BY agency")
            ).all()
        )
    return {
        a.id: {"open": int(open_counts.get(a.id, 0)), "capacity": a.capacity}
        for a in config.agencies
    }
