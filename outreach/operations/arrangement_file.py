"""The day's arrangement file for the system of record: every arrangement that was made, changed
(an instalment paid or missed, kept again, re-aged), broken, completed or cancelled on the day,
read from the day's resolution events. Written whole to the drop location
(config/arrangements.yaml ``export_drop``, default ``data/drop/arrangements``), its bytes
recorded in ``document`` (kind ``arrangement_file``): a rerun for a finished day writes the same
bytes. Format: docs/resolution.md, "Arrangements and offers"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, bindparam, text

from contact_channels.drops import csv_bytes, drop_location, write_file
from outreach import settings
from outreach.kernel.clock import utcnow
from outreach.kernel.facts import as_date
from outreach.media.documents import record_document
from outreach.resolution.policy import resolution_policy

COLUMNS = (
    "day", "arrangement_ref", "account_ref", "change", "state", "kind", "total", "term_months",
    "instalment_amount", "first_due_on", "band", "missed", "reaged_on", "approved_by", "actor",
    "reason",
)  # fmt: skip
RECIPIENT = "system_of_record"
ENDED = ("broken", "completed", "cancelled")


def day_rows(engine: Engine, day: dt.date) -> list[dict[str, str]]:
    """One row per arrangement with an event on ``day`` (UTC), as that day left it."""
    start = dt.datetime(day.year, day.month, day.day)
    end = start + dt.timedelta(days=1)
    with engine.connect() as conn:
        events = conn.execute(
            text(
                "SELECT subject, subject_ref, from_state, to_state, actor, reason FROM "
                "resolution_event WHERE subject IN ('arrangement', 'instalment') "
                "AND occurred_at >= :start AND occurred_at < :end ORDER BY occurred_at, id"
            ),
            {"start": start, "end": end},
        ).all()
        touched: dict[str, dict[str, Any]] = {}
        for subject, ref, from_state, to_state, actor, reason in events:
            ref = ref.split("#", 1)[0] if subject == "instalment" else ref
            seen = touched.setdefault(ref, {"new": False, "state": None})
            if subject == "arrangement":
                seen["new"] = seen["new"] or from_state is None
                seen["state"] = to_state
            seen["actor"], seen["reason"] = actor, reason
        if not touched:
            return []
        plans = conn.execute(
            text(
                "SELECT ar.arrangement_ref, a.account_ref, ar.kind, ar.total, ar.term_months, "
                "ar.instalment_amount, ar.first_due_on, ar.band, ar.reaged_on, ar.approved_by, "
                "ar.state, (SELECT COUNT(*) FROM resolution_event e WHERE e.subject = 'instalment' "
                "AND e.account_id = ar.account_id AND e.to_state = 'missed' "
                "AND e.subject_ref LIKE ar.arrangement_ref || '#%' AND e.occurred_at < :end) "
                "FROM arrangement ar JOIN account a ON a.id = ar.account_id "
                "WHERE ar.arrangement_ref IN :refs"
            ).bindparams(bindparam("refs", expanding=True)),
            {"refs": sorted(touched), "end": end},
        ).all()
    rows = []
    for p in plans:
        seen = touched[p[0]]
        state = seen["state"] or "active"
        change = "new" if seen["new"] else state if state in ENDED else "changed"
        reaged = as_date(p[8])
        rows.append({
            "day": day.isoformat(), "arrangement_ref": p[0], "account_ref": p[1],
            "change": change, "state": state, "kind": p[2], "total": _money(p[3]),
            "term_months": str(p[4]), "instalment_amount": _money(p[5]),
            "first_due_on": str(as_date(p[6])), "band": p[7] or "", "missed": str(p[11]),
            "reaged_on": str(reaged) if reaged and reaged <= day else "",
            "approved_by": p[9] or "", "actor": seen["actor"], "reason": seen["reason"],
        })  # fmt: skip
    return sorted(rows, key=lambda r: r["arrangement_ref"])


def _money(value: Any) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01")))


def drop_root() -> Any:
    return drop_location(resolution_policy().export_drop, None, None,
                         settings.data_dir() / "drop" / "arrangements")  # fmt: skip


def write_arrangement_file(engine: Engine, day: dt.date) -> dict[str, Any]:
    """Write ``<drop>/<day>/arrangements-<day>.csv`` (a header alone on a quiet day: the
    system of record knows the day was exported) and its ``document`` row."""
    rows = day_rows(engine, day)
    data = csv_bytes(COLUMNS, rows)
    path = drop_root() / day.isoformat() / f"arrangements-{day.isoformat()}.csv"
    written = write_file(path, data)
    with engine.begin() as conn:
        record_document(conn, kind="arrangement_file", day=day, recipient=RECIPIENT,
                        path=str(path), data=data, now=utcnow())  # fmt: skip
    return {"arrangement_file_rows": len(rows), "arrangement_file_written": int(written),
            **_counts(rows)}  # fmt: skip


def _counts(rows: Sequence[dict[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[f"arrangement_file_{r['change']}"] = counts.get(f"arrangement_file_{r['change']}", 0) + 1
    return counts
