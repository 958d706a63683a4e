"""Legal referral as our own medium: the case package written to the law firm's drop location,
and a ``legal_case`` row (status referred) with a ``document`` row per file.

``<drop>/<day>/<account_ref>/``: ``summary.pdf`` (reportlab in invariant mode: no timestamps,
a fixed document id), ``history.csv``, ``payments.csv`` and ``manifest.json`` (sorted keys;
the account, amounts, dates, the firm, and each other file with its sha256). The same message
gives the same bytes. Files are written before the rows: a crash in between leaves no
``legal_case``, so ``lookup`` (authoritative) says not sent and the resend rewrites identical
files. The content comes in ``message.fields`` (``LegalFields``) from
``outreach.media.legal.referral.LegalHooks``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Numeric, bindparam, text
from sqlalchemy.exc import IntegrityError

from contact_channels.base import OutboundMessage, PermanentError, SendResult
from contact_channels.media import app_engine, csv_bytes, drop_location, record_document, write_file
from contact_channels.media_fields import LegalFields, Refusal

log = logging.getLogger(__name__)

MONEY = Numeric(14, 2)
PACKAGE_FILES = ("history.csv", "manifest.json", "payments.csv", "summary.pdf")
LATIN_FONT, LATIN_BOLD, CJK_FONT = "Helvetica", "Helvetica-Bold", "STSong-Light"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _needs_cjk(value: str) -> bool:
    return any(ord(ch) > 0x24F for ch in value)


def _wrap(value: str, font: str, size: float, width: float) -> list[str]:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines: list[str] = []
    current = ""
    # Characters, not words: Chinese has no spaces, and a long Latin word is rare here.
    for ch in value:
        if current and stringWidth(current + ch, font, size) > width:
            lines.append(current)
            current = ch.lstrip()
        else:
            current += ch
    return lines + [current] if current or not lines else lines


def summary_pdf(title: str, lines: Sequence[Sequence[str]]) -> bytes:
    """A one-page (or more) A4 summary: the title and label/value lines. Invariant mode fixes
    the creation date and document id, so the same lines give the same bytes."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        # One of reportlab's built-in CID fonts: Chinese names and addresses without embedding.
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    pdf.setTitle(title)  # the account ref only: no personal data in the metadata
    pdf.setAuthor("outreach")
    width, height = A4
    left, top, bottom, label_width = 56.0, height - 64.0, 64.0, 170.0
    y = top

    def heading() -> float:
        pdf.setFont(LATIN_BOLD, 14)
        pdf.drawString(left, top, title)
        return top - 30

    y = heading()
    for label, value in lines:
        font = CJK_FONT if _needs_cjk(value) else LATIN_FONT
        wrapped = _wrap(value, font, 10, width - left * 2 - label_width)
        if y - 14 * len(wrapped) < bottom:
            pdf.showPage()
            y = heading()
        pdf.setFont(LATIN_BOLD, 10)
        pdf.drawString(left, y, label)
        for part in wrapped:
            pdf.setFont(font, 10)
            pdf.drawString(left + label_width, y, part)
            y -= 14
        y -= 2
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def render_package(fields: LegalFields) -> dict[str, bytes]:
    """The package's files, by name, from the hooks' content."""
    files = {
        "summary.pdf": summary_pdf(str(fields.title), fields.summary),
        "history.csv": csv_bytes(fields.history["columns"], fields.history["rows"]),
        "payments.csv": csv_bytes(fields.payments["columns"], fields.payments["rows"]),
    }
    manifest = dict(fields.manifest)
    manifest["files"] = [
        {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in sorted(files.items())
    ]
    files["manifest.json"] = (
        json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    ).encode("utf-8")
    return files


class CounselChannel:
    """``kind`` legal, ``backend`` counsel. ``settings`` is the legal section of channels.yaml:
    its ``drop`` is the root for firms without their own drop location."""

    kind = "legal"
    backend = "counsel"

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        database_url: str | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.settings = dict(settings or {})
        self.data_dir = data_dir
        self.engine = app_engine(database_url, self.kind)

    @staticmethod
    def _result(key: str) -> SendResult:
        return SendResult(provider_id=f"case-{key[:16]}", provider_status="referred")

    def lookup(self, key: str) -> SendResult | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM legal_case WHERE key = :k"), {"k": key}
            ).first()
        return None if found is None else self._result(key)

    def _root(self, fields: LegalFields, firm: str) -> Any:
        fallback = Path(self.data_dir) / "drop" / "legal" if self.data_dir is not None else None
        try:
            return drop_location(
                fields.drop, fields.conn_id, self.settings.get("drop"), fallback, firm
            )
        except ValueError:
            raise PermanentError("no drop location for the law firm", code="legal.no_drop") from None

    def send(self, message: OutboundMessage) -> SendResult:
        if self.lookup(message.key) is not None:
            return self._result(message.key)  # referred before: nothing new
        f = LegalFields.from_fields(message.fields)
        if isinstance(f, Refusal):
            raise PermanentError(f"referral refused: {f.refusal}", code=f.refusal)
        try:
            account_id = int(f.account_id)
            account_ref = str(f.account_ref)
            firm = str(f.firm)
            day = dt.date.fromisoformat(str(f.referred_on))
            balance = Decimal(str(f.balance))
            files = render_package(f)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise PermanentError(
                f"case package content incomplete ({type(exc).__name__})", code="legal.incomplete"
            ) from None
        with self.engine.connect() as conn:
            other = conn.execute(
                text("SELECT key FROM legal_case WHERE account_id = :a"), {"a": account_id}
            ).scalar()
        if other is not None:
            raise PermanentError("the account is already referred", code="legal.already_referred")
        folder = self._root(f, firm) / day.isoformat() / quote(account_ref, safe="")
        written: list[tuple[str, bytes]] = []
        for name in PACKAGE_FILES:
            path = folder / name
            data = files[name]
            write_file(path, data)
            written.append((str(path), data))
        now = _utcnow()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO legal_case (key, account_id, firm, referred_on, status, "
                        "balance_at_referral, updated_at) VALUES (:k, :a, :firm, :day, 'referred', "
                        ":balance, :now)"
                    ).bindparams(bindparam("balance", type_=MONEY)),
                    {"k": message.key, "a": account_id, "firm": firm, "day": day,
                     "balance": balance, "now": now},
                )  # fmt: skip
                for path, data in written:
                    record_document(
                        conn, kind="case_package", day=day, recipient=firm, path=path, data=data,
                        now=now, ledger_key=message.key, account_id=account_id,
                    )  # fmt: skip
        except IntegrityError:
            if self.lookup(message.key) is not None:
                return self._result(message.key)
            raise PermanentError(
                "the account is already referred", code="legal.already_referred"
            ) from None
        log.info("referred %s to %s (%d files)", message.key[:16], firm, len(written))
        return self._result(message.key)

    def close(self) -> None:
        self.engine.dispose()
