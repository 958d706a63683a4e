"""Letters the mail house sends back: each marks the postal address it came back from invalid (later
letters to it are blocked) and records the event and the ledger row's outcome. Format:
docs/letters.md."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from contact_channels.csvsafe import restore
from outreach import settings
from outreach.kernel.facts import as_date
from outreach.portfolio.files import ImportFileError

log = logging.getLogger(__name__)


RETURNED_MAIL_COLUMNS = ("key", "account_ref", "returned_on", "reason")
MAX_REASON = 120


@dataclass(frozen=True, slots=True)
class _Returned:
    line: int
    record: Mapping[str, Any]


class _Reject(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _rows(
    path_or_rows: str | Path | Iterable[Mapping[str, Any]],
) -> tuple[str, Iterator[_Returned]]:
    """(source name, rows with the line they start on: the header is line 1)."""
    if isinstance(path_or_rows, (str, Path)):
        path = Path(path_or_rows)
        try:
            handle = path.open(encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise ImportFileError(f"{path.name}: cannot read: {exc.strerror}") from None
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [c for c in ("returned_on", "reason") if c not in header]
        if missing or not {"key", "account_ref"} & set(header):
            handle.close()
            need = missing or ["key or account_ref"]
            raise ImportFileError(f"{path.name}: line 1: missing column {need[0]}")

        def from_file() -> Iterator[_Returned]:
            with handle:
                start = reader.line_num + 1
                for record in reader:
                    yield _Returned(start, record)
                    start = reader.line_num + 1

        return path.name, from_file()
    rows = list(path_or_rows)
    return "rows", iter(_Returned(i + 2, r) for i, r in enumerate(rows))


def _cell(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return "" if value is None else str(value).strip()


def _event_ref(key: str) -> str:
    ref = f"mailhouse:returned:{key}"
    return (
        ref
        if len(ref) <= 64
        else f"mailhouse:returned:h:{hashlib.sha256(key.encode()).hexdigest()[:42]}"
    )


def import_returned_mail(
    engine: Engine,
    path_or_rows: str | Path | Iterable[Mapping[str, Any]],
    at: dt.datetime,
    *,
    rejects_path: Path | None = None,
) -> dict[str, Any]:
    """Record letters the mail house sent back: a CSV (``key`` or ``account_ref``,
    ``returned_on``, ``reason``) or rows with those fields (numbered as lines of such a CSV,
    the header being line 1).

    Each good row marks the letter's postal contact point invalid (later letters to it are
    blocked: ``core.no_destination``), records a ``contact_event`` (outcome ``returned_mail``,
    source ``mailhouse``, one per letter: a re-import changes nothing) and the ledger row's
    outcome. Bad rows are rejected with line, field and reason, as the portfolio import does;
    from a file they also go to a rejects file (JSON lines, as ``outreach import`` writes).
    Returns counts and the rejects' line, field and reason (no values: XCom-safe)."""
    at = at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at
    source, rows = _rows(path_or_rows)
    counts = {"rows": 0, "returned": 0, "duplicate": 0, "rejected": 0}
    rejects: list[tuple[_Returned, str | None, str]] = []
    with engine.begin() as conn:
        for row in rows:
            counts["rows"] += 1
            try:
                applied = _apply_returned(conn, row.record, at)
            except _Reject as rej:
                rejects.append((row, rej.field, rej.reason))
                counts["rejected"] += 1
                continue
            counts["returned" if applied else "duplicate"] += 1
    written = None
    if rejects and (rejects_path is not None or source != "rows"):
        stem = Path(source).stem
        target = rejects_path or (
            settings.data_dir() / "rejects" / f"{stem}-{at:%Y%m%dT%H%M%S}.rejects.jsonl"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8") as handle:
            for row, field_name, reason in rejects:
                head = json.dumps({"line": row.line, "field": field_name, "reason": reason})
                record = json.dumps(
                    {k: v for k, v in row.record.items() if v not in (None, "")},
                    ensure_ascii=False, default=str,
                )  # fmt: skip
                handle.write(f'{head[:-1]}, "record": {record}}}\n')
        written = str(target)
    log.info("returned mail from %s: %s", source, counts)
    return {
        **counts,
        "rejects": [{"line": r.line, "field": f, "reason": why} for r, f, why in rejects],
        "rejects_path": written,
    }


def _apply_returned(conn: Connection, record: Mapping[str, Any], at: dt.datetime) -> bool:
    """Apply one returned letter; False when it was recorded before. Raises _Reject."""
    # As our manifest had them: a neutralised account_ref matches with its quote or without.
    key, account_ref = restore(_cell(record, "key")), restore(_cell(record, "account_ref"))
    raw_day, reason = _cell(record, "returned_on"), _cell(record, "reason")
    if not key and not account_ref:
        raise _Reject("key", "required: the letter's key or the account_ref")
    if not raw_day:
        raise _Reject("returned_on", "required")
    try:
        returned_on = dt.date.fromisoformat(raw_day)
    except ValueError:
        raise _Reject("returned_on", "not an ISO date (YYYY-MM-DD)") from None
    if returned_on > at.date():
        raise _Reject("returned_on", "in the future")
    if not reason:
        raise _Reject("reason", "required")
    if len(reason) > MAX_REASON:
        raise _Reject("reason", f"longer than {MAX_REASON} characters")

    if key:
        letter = conn.execute(
            text(
                "SELECT c.key, c.account_id, c.contact_point_id, c.channel, c.state, c.plan_date, "
                "a.account_ref FROM contact c JOIN account a ON a.id = c.account_id "
                "WHERE c.key = :k"
            ),
            {"k": key},
        ).first()
        if letter is None:
            raise _Reject("key", "unknown key: no such contact in the ledger")
        if letter[3] != "letter":
            raise _Reject("key", "not a letter")
        if letter[4] != "sent":
            raise _Reject("key", f"the letter was not sent (state {letter[4]})")
        if account_ref and account_ref != letter[6]:
            raise _Reject("account_ref", "does not match the letter's account")
    else:
        account = conn.execute(
            text("SELECT id FROM account WHERE account_ref = :r"), {"r": account_ref}
        ).first()
        if account is None:
            raise _Reject("account_ref", "unknown account_ref")
        # The letter that came back: the latest sent to the account by that day.
        letter = conn.execute(
            text(
                "SELECT key, account_id, contact_point_id, channel, state, plan_date FROM contact "
                "WHERE account_id = :a AND channel = 'letter' AND state = 'sent' "
                "AND plan_date <= :d ORDER BY plan_date DESC, key DESC LIMIT 1"
            ),
            {"a": account[0], "d": returned_on},
        ).first()
        if letter is None:
            raise _Reject("account_ref", "no letter was sent to this account by returned_on")
    if returned_on < as_date(letter[5]):  # type: ignore[operator]
        raise _Reject("returned_on", "before the letter was sent")
    letter_key, account_id, contact_point_id = letter[0], letter[1], letter[2]
    inserted = conn.execute(
        text(
            "INSERT INTO contact_event (event_ref, account_id, occurred_at, channel, "
            "contact_point_id, direction, outcome, source, ledger_key) VALUES (:ref, :a, :at, "
            "'letter', :cp, 'status', 'returned_mail', 'mailhouse', :k) "
            "ON CONFLICT (event_ref) DO NOTHING"
        ),
        {
            "ref": _event_ref(letter_key),
            "a": account_id,
            "at": dt.datetime(returned_on.year, returned_on.month, returned_on.day),
            "cp": contact_point_id,
            "k": letter_key,
        },
    ).rowcount
    if not inserted:
        return False  # recorded before: an address made valid again since stays valid
    if contact_point_id is not None:
        conn.execute(
            text("UPDATE contact_point SET valid = :f, updated_at = :now WHERE id = :id"),
            {"f": False, "now": at, "id": contact_point_id},
        )
    conn.execute(
        text(
            "UPDATE contact SET outcome = 'returned_mail', error_code = 'mailhouse:returned', "
            "error_detail = :d, updated_at = :now WHERE key = :k AND state = 'sent'"
        ),
        {"d": f"returned mail: {reason}"[:300], "now": at, "k": letter_key},
    )
    return True
