"""The daily print batch for the mail house: ``close_print_batch`` writes the day's manifest from
the letters as written (each PDF carries its manifest line), and records the rows of letters a
lost worker wrote but never recorded. Format: docs/letters.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, text

from contact_channels.csvsafe import safe_writer
from contact_channels.drops import write_file
from contact_channels.letter_layout import read_manifest_line
from contact_channels.letters import (
    BACKEND,
    DEFAULT_MAIL_HOUSE,
    DOCUMENT_KIND,
    drop_root,
    is_complete_pdf,
    letter_path,
)
from outreach import settings
from outreach.media.letters.channel import insert_document
from outreach.planning.kinds import channel_settings

log = logging.getLogger(__name__)


MANIFEST_KIND = "print_manifest"
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = (
    "key", "account_ref", "template", "language", "pages", "sha256", "size", "file_name",
    "recipient_name", "address_line_1", "address_line_2", "address_line_3", "address_line_4",
    "postal_code", "country",
)  # fmt: skip
ADDRESS_COLUMNS = 4


def _letter_settings(drop_url: str | None) -> dict[str, Any]:
    section = dict(channel_settings("letter"))
    if drop_url:
        section["drop"] = drop_url
    return section


def close_print_batch(engine: Engine, day: dt.date, drop_url: str | None = None) -> dict[str, int]:
    """Write ``<drop>/<day>/manifest.csv`` for the mail house: one line per letter the ledger
    has sent for ``day``, sorted by key, from the letters as written (each PDF carries its
    line; its bytes are checked against its document row). Letters a lost worker wrote but never
    recorded get their document row here first. A rerun writes the same bytes and no second
    document row; letters settled since (a recovered send) rewrite the manifest and its row.
    Counts only (XCom-safe)."""
    section = _letter_settings(drop_url)
    root = drop_root(section, None if section.get("drop") else settings.data_dir())
    mail_house = str(section.get("mail_house") or DEFAULT_MAIL_HOUSE)
    recorded_late = _record_unrecorded(engine, root, day, mail_house)
    with engine.connect() as conn:
        letters = conn.execute(
            text(
                "SELECT c.key, d.path, d.sha256, d.size FROM contact c "
                "JOIN document d ON d.ledger_key = c.key AND d.kind = :kind "
                "WHERE c.channel = 'letter' AND c.plan_date = :day AND c.state = 'sent' "
                "ORDER BY c.key, d.id"
            ),
            {"kind": DOCUMENT_KIND, "day": day},
        ).all()
        in_doubt = conn.execute(
            text(
                "SELECT COUNT(*) FROM contact WHERE channel = 'letter' AND plan_date = :day "
                "AND state IN ('sending', 'uncertain')"
            ),
            {"day": day},
        ).scalar_one()
    folder = root / day.isoformat()
    out = io.StringIO()
    # For the mail house: every cell neutralised (names and addresses are the lender's text).
    writer = safe_writer(out, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    pages = 0
    seen: set[str] = set()
    for key, path, sha256, size in letters:
        if key in seen:
            continue  # one file per key; a second row (another drop) is the same letter
        seen.add(key)
        data = _open(path, section).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(
                f"letter {key[:16]}: the file at its document row's path does not match the "
                "recorded sha256; the batch is not closed"
            )
        line = read_manifest_line(data)
        if line is None:
            raise ValueError(f"letter {key[:16]}: the file carries no manifest line")
        pages += int(line["pages"])
        address = list(line.get("address_lines") or [])
        if len(address) > ADDRESS_COLUMNS:
            address = address[: ADDRESS_COLUMNS - 1] + [", ".join(address[ADDRESS_COLUMNS - 1 :])]
        address += [""] * (ADDRESS_COLUMNS - len(address))
        writer.writerow(
            [
                key,
                line.get("account_ref", ""),
                line.get("template", ""),
                line.get("language", ""),
                line["pages"],
                sha256,
                size,
                _relative(str(path), str(folder)),
                line.get("recipient_name", ""),
                *address,
                line.get("postal_code", ""),
                line.get("country", ""),
            ]  # fmt: skip
        )
    data = out.getvalue().encode("utf-8")
    manifest = folder / MANIFEST_NAME
    written = write_file(manifest, data)
    _, new_row = insert_document(
        engine,
        kind=MANIFEST_KIND,
        batch_date=day,
        recipient=mail_house,
        path=str(manifest),
        data=data,
        ledger_key=None,
        account_id=None,
    )
    counts = {
        "letters": len(seen),
        "pages": pages,
        "in_doubt": int(in_doubt),
        "recorded_late": recorded_late,
        "manifest_written": int(written),
        "document_rows": int(new_row),
    }
    log.info("print batch %s: %s", day, counts)
    return counts


def _record_unrecorded(engine: Engine, root: Any, day: dt.date, mail_house: str) -> int:
    """Record the ``document`` rows of letters the ledger has sent without one: their worker
    was lost between writing the file and recording it, and the medium's lookup (which only
    reads) settled them as sent. A sent letter with no complete file stops the close."""
    with engine.connect() as conn:
        missing = conn.execute(
            text(
                "SELECT c.key, c.account_id FROM contact c LEFT JOIN document d "
                "ON d.ledger_key = c.key AND d.kind = :kind WHERE c.channel = 'letter' "
                "AND c.plan_date = :day AND c.state = 'sent' AND c.backend = :backend "
                "AND d.id IS NULL ORDER BY c.key"
            ),
            {"kind": DOCUMENT_KIND, "day": day, "backend": BACKEND},
        ).all()
    for key, account_id in missing:
        path = letter_path(root, day, key)
        data = path.read_bytes() if path.exists() else b""
        if not is_complete_pdf(data):
            raise ValueError(
                f"letter {key[:16]}: sent according to the ledger but there is no complete file "
                "at its path; the batch is not closed"
            )
        insert_document(
            engine,
            kind=DOCUMENT_KIND,
            batch_date=day,
            recipient=mail_house,
            path=str(path),
            data=data,
            ledger_key=key,
            account_id=account_id,
        )
    return len(missing)


def _open(path: str, section: Mapping[str, Any]) -> Any:
    from airflow.sdk import ObjectStoragePath

    conn_id = section.get("conn_id")
    return ObjectStoragePath(path, conn_id=str(conn_id)) if conn_id else ObjectStoragePath(path)


def _relative(path: str, folder: str) -> str:
    prefix = folder.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path
