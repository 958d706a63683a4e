"""The letter channel's medium: each letter a PDF in the mail house's drop location.

``PrintChannel`` (backend ``print``) lays out an ``OutboundMessage`` as a PDF
(``letter_layout.render_letter``: address block for a window envelope, date, the rendered
template text, and the structured blocks the letter hooks put in ``fields``, read as
``media_fields.LetterFields``: the validation notice's itemization and dispute deadline, an
instalment offer's plans, the amounts due; fonts in ``letter_fonts``, wording in
``letter_wording``), writes it to ``<drop>/<YYYY-MM-DD>/letters/<key>.pdf`` through
Airflow's object storage (``contact_channels.letters``), and records a ``document`` row. The
bytes depend only on the message: reportlab's invariant mode, fixed metadata, no clock. Each
PDF carries its line of the day's mail-house manifest in its metadata, so the manifest
(``outreach.media.letters.batch.close_print_batch``) is built from the letters exactly as
printed.

The app database is reached with text SQL on the URL the registry gives. Nothing here logs
``message.fields`` or the text.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from contact_channels.base import OutboundMessage, SendResult
from contact_channels.drops import write_file
from contact_channels.letter_fonts import letter_fonts
from contact_channels.letter_layout import recipient_of, render_letter
from contact_channels.letters import (
    BACKEND,
    DEFAULT_MAIL_HOUSE,
    DOCUMENT_KIND,
    KIND,
    STATUS,
    drop_root,
    is_complete_pdf,
    letter_path,
    provider_id,
)
from contact_channels.media_fields import LetterFields
from outreach.kernel.clock import utcnow
from outreach.media.documents import app_engine, record_document

log = logging.getLogger(__name__)


def insert_document(
    engine: Engine,
    *,
    kind: str,
    batch_date: dt.date,
    recipient: str,
    path: str,
    data: bytes,
    ledger_key: str | None,
    account_id: int | None,
    now: Callable[[], dt.datetime] | None = None,
) -> tuple[int, bool]:
    """The ``document`` row of a file (one per kind and path); (id, inserted or changed).

    A row already there with other bytes (a manifest rewritten after late letters) gets the new
    hash and size."""
    with engine.begin() as conn:
        inserted = record_document(
            conn,
            kind=kind,
            day=batch_date,
            recipient=recipient,
            path=path,
            data=data,
            now=(now or utcnow)(),
            ledger_key=ledger_key,
            account_id=account_id,
        )
        row = conn.execute(
            text("SELECT id FROM document WHERE kind = :kind AND path = :path"),
            {"kind": kind, "path": path},
        ).one()
    return int(row[0]), bool(inserted)



def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


class PrintChannel:
    """Letters as PDFs in the mail house's drop location; the print backend of ``letter``.

    ``send`` is idempotent on the key: a letter already recorded returns its result, a file
    already written is not written again, and its ``document`` row is inserted once.
    ``lookup`` is authoritative and only reads: the ``document`` row, or a complete PDF at the
    key's path in its ledger row's batch (a worker killed between writing the file and
    recording it). It writes nothing because the dispatcher calls it inside its own write
    transaction (on SQLite, a second writer would wait for that transaction and fail); the
    missing row is added when the batch closes (``outreach.media.letters.batch.close_print_batch``)."""

    kind = KIND
    backend = BACKEND

    def __init__(
        self, settings: Mapping[str, Any], *, database_url: str | None, data_dir: Path | None
    ) -> None:
        if not database_url:
            raise ValueError("the print backend of channel 'letter' needs the app database URL")
        self.root = drop_root(settings, data_dir)
        self.mail_house = str(settings.get("mail_house") or DEFAULT_MAIL_HOUSE)
        self.fonts = letter_fonts()  # a configured font that cannot load fails the build here
        self._engine = app_engine(database_url, self.kind)

    def send(self, message: OutboundMessage) -> SendResult:
        done = self._recorded(message.key)
        if done is not None:
            return done
        fields = LetterFields.from_fields(message.fields)
        recipient_of(fields)  # no postal address: refused before anything is written
        ledger = self._ledger_row(message.key)
        if ledger is None and not fields.batch_date:
            raise ValueError("a letter with no ledger row needs fields['batch_date']")
        # The ledger's plan date is the batch: lookup finds the file from the key alone.
        batch_date = ledger[1] if ledger else _as_date(fields.batch_date)
        account_id = ledger[0] if ledger else fields.account_id
        letter = render_letter(message, self.fonts, fields)
        path = letter_path(self.root, batch_date, message.key)
        wrote = write_file(path, letter.pdf)
        insert_document(
            self._engine,
            kind=DOCUMENT_KIND,
            batch_date=batch_date,
            recipient=self.mail_house,
            path=str(path),
            data=letter.pdf,
            ledger_key=message.key,
            account_id=account_id,
        )
        log.info(
            "letter %s: %d page(s) %s for print batch %s",
            message.key[:16], letter.pages, "written" if wrote else "already there", batch_date,
        )  # fmt: skip
        return SendResult(provider_id(batch_date, message.key), STATUS)

    def lookup(self, key: str) -> SendResult | None:
        done = self._recorded(key)
        if done is not None:
            return done
        ledger = self._ledger_row(key)
        if ledger is None:
            return None
        path = letter_path(self.root, ledger[1], key)
        if not path.exists() or not is_complete_pdf(path.read_bytes()):
            return None  # never written, or never finished: the letter may be sent again
        log.info("letter %s: written before its worker was lost", key[:16])
        return SendResult(provider_id(ledger[1], key), STATUS)

    def close(self) -> None:
        self._engine.dispose()

    def _recorded(self, key: str) -> SendResult | None:
        with self._engine.connect() as conn:
            day = conn.execute(
                text(
                    "SELECT batch_date FROM document WHERE kind = :kind AND ledger_key = :key "
                    "ORDER BY id LIMIT 1"
                ),
                {"kind": DOCUMENT_KIND, "key": key},
            ).scalar()
        return None if day is None else SendResult(provider_id(_as_date(day), key), STATUS)

    def _ledger_row(self, key: str) -> tuple[int, dt.date] | None:
        """(account id, plan date) of the ledger row: the batch a letter belongs to."""
        with self._engine.connect() as conn:
            row = conn.execute(
                text("SELECT account_id, plan_date FROM contact WHERE key = :key"), {"key": key}
            ).first()
        return None if row is None else (int(row[0]), _as_date(row[1]))
