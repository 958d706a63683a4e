"""What agencies report back: their returns files (payments, outcomes), each row applied to the
account once (a payment, a hold, the placement closed). Format: docs/agency-and-legal.md."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, bindparam, text

from contact_channels.csvsafe import restore
from outreach.kernel.facts import as_date
from outreach.media.agency.config import agency_config
from outreach.media.agency.placement import MONEY, _decimal

log = logging.getLogger(__name__)


RETURN_COLUMNS = ("return_ref", "account_ref", "occurred_on", "kind", "amount", "outcome")
RETURN_KINDS = frozenset({"payment", "outcome"})
# Outcomes an agency reports that are holds here too: recorded at once, so the gate and the
# next recall see them.
HOLD_OUTCOMES = frozenset({"dispute", "bankruptcy", "cease_communication", "deceased", "attorney"})


@dataclass
class _Return:
    line: int
    return_ref: str  # '<agency>:<the agency's ref>'
    account_ref: str
    occurred_on: dt.date
    kind: str
    amount: Decimal | None
    outcome: str | None


def _parse_return(agency: str, row: Any) -> _Return:
    from outreach.portfolio.rows import Reject as _Reject
    from outreach.portfolio.rows import choice as _choice
    from outreach.portfolio.rows import date as _date
    from outreach.portfolio.rows import money as _money
    from outreach.portfolio.rows import required_text as _required_text
    from outreach.portfolio.rows import text as _text

    d = row.data
    ref = _required_text(d.get("return_ref"), "return_ref", max_len=63 - len(agency))
    kind = _choice(d.get("kind"), "kind", RETURN_KINDS)
    amount: Decimal | None = None
    if kind == "payment":
        amount = _money(d.get("amount"), "amount", positive=True)
    elif d.get("amount") not in (None, ""):
        amount = _money(d.get("amount"), "amount")
    outcome = _text(d.get("outcome"), "outcome", max_len=64)
    if kind == "outcome" and outcome is None:
        raise _Reject("outcome", "required for an outcome")
    if outcome is not None:
        outcome = outcome.lower()
    occurred_on = _date(d.get("occurred_on"), "occurred_on", required=True)
    assert occurred_on is not None
    return _Return(
        row.line,
        f"{agency}:{ref}",
        # As our placement file had it: a neutralised ref matches with its quote or without.
        restore(_required_text(d.get("account_ref"), "account_ref", max_len=64)),
        occurred_on,
        kind,
        amount,
        outcome,
    )


def _read_returns_text(path: str | Path) -> str:
    if "://" in str(path):
        from airflow.sdk import ObjectStoragePath

        data: bytes = ObjectStoragePath(str(path)).read_bytes()
    else:
        data = Path(path).read_bytes()
    return data.decode("utf-8-sig")


def import_agency_returns(
    engine: Engine, agency: str, path: str | Path, at: dt.datetime
) -> dict[str, Any]:
    """Import an agency's returns file (CSV: return_ref, account_ref, occurred_on, kind
    payment|outcome, amount, outcome) into ``placement_return``, payments also into ``payment``
    (payment_ref '<agency>:<return_ref>') so the account's facts see them; outcomes that are
    holds (dispute, bankruptcy, cease_communication, ...) into ``account_hold``. Idempotent on
    return_ref. Bad rows go to a rejects file (JSON lines: line, field, reason, record), as the
    portfolio import writes them. ``at`` is the import's instant (recorded_at, rejects name)."""
    from outreach.portfolio.files import ImportFileError
    from outreach.portfolio.files import RejectsFile as _RejectsFile
    from outreach.portfolio.files import default_rejects_path as _default_rejects_path
    from outreach.portfolio.rows import Reject as _Reject
    from outreach.portfolio.rows import Row as _Row

    source = Path(urlsplit(str(path)).path if "://" in str(path) else path)
    try:
        content = _read_returns_text(path)
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{source.name}: not UTF-8 text ({exc.reason})") from None
    reader = csv.reader(io.StringIO(content), strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        raise ImportFileError(f"{source.name}: line 1: {exc}") from None
    missing = [c for c in ("return_ref", "account_ref", "occurred_on", "kind") if c not in header]
    if missing:
        raise ImportFileError(f"{source.name}: the CSV header lacks {', '.join(missing)}")
    rejects = _RejectsFile(_default_rejects_path(source, at), always=False)
    counts = {
        "rows_read": 0,
        "inserted": 0,
        "payments": 0,
        "holds": 0,
        "duplicates": 0,
        "rejected": 0,
    }
    config = agency_config()
    if config.agencies and config.agency(agency) is None:
        raise ImportFileError(f"{source.name}: unknown agency {agency!r} (config/agencies.yaml)")
    rows: list[_Row] = []
    previous_end = reader.line_num
    try:
        for values in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            data = {h: v for h, v in zip(header, values, strict=False) if v != ""}
            error = (
                f"{len(values)} values for {len(header)} header columns"
                if len(values) > len(header)
                else None
            )
            rows.append(_Row(start, "agency_return", data, values, header, error))
    except csv.Error as exc:
        raise ImportFileError(f"{source.name}: line {previous_end + 1}: {exc}") from None
    try:
        with engine.begin() as conn:
            for row in rows:
                counts["rows_read"] += 1
                try:
                    if row.error is not None:
                        raise _Reject(None, row.error)
                    outcome = _apply_return(conn, agency, _parse_return(agency, row), at)
                except _Reject as rej:
                    rejects.write(row, rej.field, rej.reason)
                    counts["rejected"] += 1
                    continue
                for name in outcome:
                    counts[name] += 1
    finally:
        rejects.close()
    log.info("agency returns %s: %s", agency, counts)
    return {**counts, "rejects_file": str(rejects.path) if rejects.written else None}


def _apply_return(conn: Connection, agency: str, r: _Return, at: dt.datetime) -> list[str]:
    from outreach.portfolio.rows import Reject as _Reject

    placement = conn.execute(
        text(
            "SELECT p.id, p.account_id FROM placement p JOIN account a ON a.id = p.account_id "
            "WHERE a.account_ref = :ref AND p.agency = :agency AND p.placed_on <= :on "
            "ORDER BY p.placed_on DESC, p.id DESC LIMIT 1"
        ),
        {"ref": r.account_ref, "agency": agency, "on": r.occurred_on},
    ).first()
    if placement is None:
        raise _Reject(
            "account_ref", f"no placement of this account with {agency} on or before occurred_on"
        )
    placement_id, account_id = placement
    existing = conn.execute(
        text(
            "SELECT placement_id, occurred_on, kind, amount, outcome FROM placement_return "
            "WHERE return_ref = :ref"
        ),
        {"ref": r.return_ref},
    ).first()
    if existing is not None:
        same = (
            existing[0] == placement_id
            and as_date(existing[1]) == r.occurred_on
            and existing[2] == r.kind
            and (None if existing[3] is None else _decimal(existing[3]))
            == (None if r.amount is None else r.amount)
            and existing[4] == r.outcome
        )
        if not same:
            raise _Reject("return_ref", "already imported with other values")
        return ["duplicates"]
    conn.execute(
        text(
            "INSERT INTO placement_return (return_ref, placement_id, occurred_on, kind, amount, "
            "outcome, recorded_at) VALUES (:ref, :p, :on, :kind, :amount, :outcome, :at)"
        ).bindparams(bindparam("amount", type_=MONEY)),
        {
            "ref": r.return_ref,
            "p": placement_id,
            "on": r.occurred_on,
            "kind": r.kind,
            "amount": r.amount,
            "outcome": r.outcome,
            "at": at,
        },
    )
    done = ["inserted"]
    if r.kind == "payment":
        conn.execute(
            text(
                "INSERT INTO payment (payment_ref, account_id, paid_on, amount) "
                "VALUES (:ref, :a, :on, :amount) ON CONFLICT (payment_ref) DO NOTHING"
            ).bindparams(bindparam("amount", type_=MONEY)),
            {"ref": r.return_ref, "a": account_id, "on": r.occurred_on, "amount": r.amount},
        )
        done.append("payments")
    if r.outcome in HOLD_OUTCOMES:
        conn.execute(
            text(
                "INSERT INTO account_hold (account_id, kind, started_on, source) "
                "VALUES (:a, :kind, :on, 'agency') "
                "ON CONFLICT (account_id, kind, started_on) DO NOTHING"
            ),
            {"a": account_id, "kind": r.outcome, "on": r.occurred_on},
        )
        done.append("holds")
    return done
