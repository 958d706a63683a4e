"""The legal referral's case package, rendered: the files written to the law firm's drop
location by ``outreach.media.legal.channel.CounselChannel``.

``<drop>/<day>/<account_ref>/``: ``summary.pdf`` (reportlab in invariant mode: no timestamps,
a fixed document id), ``history.csv``, ``payments.csv`` and ``manifest.json`` (sorted keys;
the account, amounts, dates, the firm, and each other file with its sha256). The same message
gives the same bytes. The content comes in ``message.fields`` (``LegalFields``) from
``outreach.media.legal.referral.LegalHooks``. Imports nothing from ``outreach`` or ``policies``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence

from contact_channels.drops import csv_bytes
from contact_channels.media_fields import LegalFields

PACKAGE_FILES = ("history.csv", "manifest.json", "payments.csv", "summary.pdf")
LATIN_FONT, LATIN_BOLD, CJK_FONT = "Helvetica", "Helvetica-Bold", "STSong-Light"


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
