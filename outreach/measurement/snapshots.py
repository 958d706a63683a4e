"""Where each account stood on each planned day (``account_snapshot``): the facts KPIs group by
and the amounts they divide by. The daily plan writes one row per account it planned, in the
same transaction as its plan; a rerun of the day replaces them (upsert on day and account).

The planner gives what it worked out (stage, days past due, ladder version, arm) and the
account's amounts on the day; the currency comes from the account, the score band from the
latest ``account_score`` on or before the day, the agency from the placement open that day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Date, Integer, String

from outreach.measurement.measurement_config import bucket_of
from outreach.storage.bulk import executemany
from outreach.storage.models import Money


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """One account on one day, as the planner saw it."""

    as_of: dt.date
    account_id: int
    dpd: int | None  # None: not delinquent (no oldest unpaid due date, nothing past due)
    past_due: Decimal
    balance: Decimal
    stage: str | None
    segment: str | None
    jurisdiction: str | None
    ladder_version: str | None
    arm: str | None = None  # "EXPERIMENT/ARM" when an experiment placed the account in an arm


def jurisdiction_of(country: str | None, region: str | None) -> str | None:
    """The jurisdiction as the project names it: ``US-NY``, ``CN-BJ``, or the country alone."""
    if not country:
        return None
    region = (region or "").strip().upper()
    return f"{country.upper()}-{region}" if region else country.upper()


def snapshot_row(
    as_of: dt.date,
    account: Any,
    stage: str | None,
    dpd: int | None,
    ladder_version: str | None,
    arm: str | None = None,
) -> SnapshotRow:
    """A row from a planned account (``outreach.kernel.facts.AccountRecord``: its amounts are
    those of the day, payments since the import taken off)."""
    return SnapshotRow(
        as_of=as_of,
        account_id=account.id,
        dpd=dpd if dpd is not None and dpd > 0 else None,
        past_due=account.past_due,
        balance=account.balance,
        stage=stage,
        segment=account.segment,
        jurisdiction=jurisdiction_of(account.country, account.region),
        ladder_version=ladder_version,
        arm=arm,
    )


_COLUMNS = (
    "as_of, account_id, dpd, bucket, past_due, balance, currency, stage, segment, score_band, "
    "jurisdiction, ladder_version, arm, agency"
)
_UPDATE = ", ".join(
    f"{c} = excluded.{c}"
    for c in ("dpd", "bucket", "past_due", "balance", "currency", "stage", "segment",
              "score_band", "jurisdiction", "ladder_version", "arm", "agency")
)  # fmt: skip


def _upsert(dialect: str) -> str:
    """One statement per row, run as one executemany. ``WHERE`` before ``ON CONFLICT`` is
    required: without it SQLite would read ON CONFLICT as a join's ON. PostgreSQL types the
    parameters of a SELECT list as text: the casts say what they are (SQLite needs none, and
    its CAST to DATE would turn a date into a number)."""
    pg = dialect == "postgresql"
    day, num, money = (("CAST(? AS DATE)", "CAST(? AS INTEGER)", "CAST(? AS NUMERIC(14, 2))")
                       if pg else ("?", "?", "?"))  # fmt: skip
    return (
        f"INSERT INTO account_snapshot ({_COLUMNS}) "
        f"SELECT {day}, a.id, {num}, ?, {money}, {money}, a.currency, ?, ?, "
        "(SELECT s.band FROM account_score s WHERE s.account_id = a.id AND s.as_of <= ? "
        " ORDER BY s.as_of DESC LIMIT 1), "
        "?, ?, ?, "
        "(SELECT p.agency FROM placement p WHERE p.account_id = a.id AND p.placed_on <= ? "
        " AND (p.recalled_on IS NULL OR p.recalled_on > ?) ORDER BY p.placed_on DESC LIMIT 1) "
        "FROM account a WHERE a.id = ? "
        f"ON CONFLICT (as_of, account_id) DO UPDATE SET {_UPDATE}"
    )


_TYPES: Sequence[Any] = (
    Date(), Integer(), String(), Money, Money, String(), String(), Date(), String(), String(),
    String(), Date(), Date(), Integer(),
)  # fmt: skip


def write_snapshots(conn: Connection, rows: Iterable[SnapshotRow]) -> int:
    """Upsert ``rows`` in the caller's transaction (one executemany); the number written."""
    params = [
        (
            r.as_of,
            r.dpd or 0,
            bucket_of(r.dpd),
            r.past_due,
            r.balance,
            r.stage,
            r.segment,
            r.as_of,
            r.jurisdiction,
            r.ladder_version,
            r.arm,
            r.as_of,
            r.as_of,
            r.account_id,
        )  # fmt: skip
        for r in rows
    ]
    executemany(conn, _upsert(conn.dialect.name), params, _TYPES)
    return len(params)
