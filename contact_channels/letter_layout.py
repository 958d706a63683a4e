"""A letter's layout: an ``OutboundMessage`` laid out as a PDF (address block for a window
envelope, date, the rendered template text, the structured blocks the letter hooks put in
``fields``, read as ``media_fields.LetterFields``) with its line of the mail-house manifest in
its metadata. The bytes depend only on
the message: reportlab's invariant mode, fixed metadata, no clock. Imports nothing from
``outreach`` or ``policies``; nothing here logs ``message.fields`` or the text."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from contact_channels.base import OutboundMessage, PermanentError
from contact_channels.letter_fonts import (
    _CJK,
    CJK_FONT_MISSING,
    LetterFonts,
    letter_fonts,
    needs_cjk,
)
from contact_channels.letter_wording import LABELS, _lang, format_date
from contact_channels.media_fields import LetterFields

# The manifest line a letter carries in its PDF metadata (Keywords): base64 of sorted JSON, so
# it needs no PDF string escaping and reads back with a regular expression.
MANIFEST_PREFIX = "outreach-manifest:v1:"
_MANIFEST_IN_PDF = re.compile(rb"/Keywords \((" + MANIFEST_PREFIX.encode() + rb"[A-Za-z0-9+/=]+)\)")


MM = 72 / 25.4  # points per millimetre


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    lines: tuple[str, ...]
    postal_code: str | None
    country: str | None


@dataclass(frozen=True, slots=True)
class RenderedLetter:
    pdf: bytes
    pages: int
    manifest: Mapping[str, Any]  # the letter's manifest line (personal data: never log it)


def recipient_of(fields: LetterFields) -> Recipient:
    """The postal recipient in a letter's fields; PermanentError when there is none."""
    raw = fields.recipient
    if not isinstance(raw, Mapping) or not raw.get("name"):
        raise PermanentError("a letter needs a postal address and the message has none",
                             code="no_postal_address")  # fmt: skip
    lines = tuple(str(x).strip() for x in raw.get("lines") or () if str(x).strip())
    if not lines:
        raise PermanentError("a letter needs a postal address and the message has none",
                             code="no_postal_address")  # fmt: skip
    return Recipient(
        str(raw["name"]).strip(), lines, raw.get("postal_code") or None, raw.get("country") or None
    )


def manifest_keywords(manifest: Mapping[str, Any]) -> str:
    payload = json.dumps(manifest, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return MANIFEST_PREFIX + base64.b64encode(payload.encode("utf-8")).decode("ascii")


def read_manifest_line(pdf: bytes) -> dict[str, Any] | None:
    """The manifest line a letter PDF carries, or None for a PDF not written here."""
    found = _MANIFEST_IN_PDF.search(pdf)
    if found is None:
        return None
    payload = found.group(1)[len(MANIFEST_PREFIX) :]
    line: dict[str, Any] = json.loads(base64.b64decode(payload).decode("utf-8"))
    return line


def render_letter(
    message: OutboundMessage, fonts: LetterFonts | None = None, fields: LetterFields | None = None
) -> RenderedLetter:
    """The PDF of one letter. Same message, same bytes (on a machine with the same fonts).
    ``fields`` are the message's, when the caller has read them already."""
    from reportlab.lib.pagesizes import A4, LETTER
    from reportlab.platypus import (
        BaseDocTemplate,
        Frame,
        NextPageTemplate,
        PageBreak,
        PageTemplate,
    )

    fonts = fonts or letter_fonts()
    if fields is None:
        fields = LetterFields.from_fields(message.fields)
    recipient = recipient_of(fields)
    if fonts.cjk is None and needs_cjk(message, fields):
        # Not sent: the ledger row fails with this reason (no personal data in it), and the
        # letter can be redriven once a font is installed.
        raise PermanentError(f"a letter with Chinese text needs an embedded CJK font: "
                             f"{fonts.cjk_source}", code=CJK_FONT_MISSING)  # fmt: skip
    language = str(fields.language or message.tags.get("language") or "en")
    lang = _lang(language)
    labels = LABELS[lang]
    # A translated validation notice comes with the English one (12 CFR 1006.34(e)): the
    # English text and blocks first, so the page furniture (date, footer) is English too.
    english = str(fields.english or "") if lang != "en" else ""
    page_language = "en" if english else language
    page_labels = LABELS[_lang(page_language)]
    sender: Mapping[str, Any] = fields.sender or {}
    letter_date = str(fields.letter_date or "")
    if not letter_date:
        # The date printed must come from the run, never from this machine's clock.
        raise ValueError("letter fields carry no letter_date (the hooks set it)")
    last4 = str(fields.account_last4 or "")
    page_size = LETTER if (recipient.country or "US") == "US" else A4
    width, height = page_size
    styles = _Styles(fonts, lang)

    manifest = {
        "key": message.key,
        "account_ref": str(fields.account_ref or ""),
        "template": str(message.tags.get("template") or fields.template or ""),
        "language": language,
        "recipient_name": recipient.name,
        "address_lines": list(recipient.lines),
        "postal_code": recipient.postal_code or "",
        "country": recipient.country or "",
    }

    def first_page(canvas: Any, doc: Any) -> None:
        _stamp(canvas, doc)
        canvas.saveState()
        y = height - 18 * MM
        for i, line in enumerate([str(sender.get("name") or ""), *sender.get("lines", ())]):
            canvas.setFont(styles.font_for(line, bold=i == 0), 8)
            canvas.drawString(25 * MM, y, line)
            y -= 10
        # The recipient block sits where a DL/#10 window envelope shows it.
        y = height - 50 * MM
        for line in (recipient.name, *recipient.lines):
            canvas.setFont(styles.font_for(line), 10)
            canvas.drawString(25 * MM, y, line)
            y -= 13
        shown_date = format_date(letter_date, page_language)
        canvas.setFont(styles.font_for(shown_date), 10)
        canvas.drawRightString(width - 20 * MM, height - 50 * MM, shown_date)
        canvas.restoreState()

    def later_page(canvas: Any, doc: Any) -> None:
        _stamp(canvas, doc)

    def _stamp(canvas: Any, doc: Any) -> None:
        # Set on every page: the last page's call, with the final count, is what is saved.
        canvas.setKeywords(manifest_keywords({**manifest, "pages": doc.page}))
        footer = "  ·  ".join(
            x
            for x in (
                str(sender.get("name") or ""),
                page_labels["account_ending"].format(last4=last4) if last4 else "",
                page_labels["page"].format(n=doc.page),
            )
            if x
        )
        canvas.saveState()
        canvas.setFont(styles.font_for(footer), 7)
        canvas.drawCentredString(width / 2, 10 * MM, footer)
        canvas.restoreState()

    pad = {"leftPadding": 0, "rightPadding": 0, "topPadding": 0, "bottomPadding": 0}
    frame_first = Frame(25 * MM, 18 * MM, width - 45 * MM, height - 85 * MM - 18 * MM,
                        id="first", **pad)  # fmt: skip
    frame_later = Frame(25 * MM, 18 * MM, width - 45 * MM, height - 38 * MM, id="later", **pad)
    buf = io.BytesIO()
    doc = BaseDocTemplate(
        buf,
        pagesize=page_size,
        invariant=1,
        pageCompression=1,  # zlib at a fixed level: still the same bytes every time
        title=page_labels["account_ending"].format(last4=last4),
        author=str(sender.get("name") or ""),
        creator="outreach letters",
        producer="outreach letters (reportlab)",
        subject=str(manifest["template"]),
        pageTemplates=[
            PageTemplate("first", [frame_first], onPage=first_page),
            PageTemplate("later", [frame_later], onPage=later_page),
        ],
    )
    story: list[Any] = [NextPageTemplate("later")]
    if english:
        en_styles = _Styles(fonts, "en")
        story += en_styles.body(english)
        story += _blocks(fields, en_styles, LABELS["en"], "en")
        story.append(PageBreak())
    story += _summary(fields, styles, labels, language)
    story += styles.body(message.body_text)
    story += _blocks(fields, styles, labels, language)
    doc.build(story)
    pages = int(doc.page)
    return RenderedLetter(buf.getvalue(), pages, {**manifest, "pages": pages})


class _Styles:
    """Paragraph styles, with the font picked per text: CJK text (and every zh-CN letter)
    in the CJK font, the rest in the Latin one."""

    def __init__(self, fonts: LetterFonts, lang: str) -> None:
        from reportlab.lib.styles import ParagraphStyle

        self.fonts, self.lang = fonts, lang
        base: dict[str, float] = {"fontSize": 10, "leading": 14, "spaceAfter": 6}
        self._made: dict[tuple[str, str], Any] = {}
        self._kinds: dict[str, Mapping[str, float]] = {
            "body": base,
            "small": {"fontSize": 8.5, "leading": 11, "spaceAfter": 3},
            "head": {**base, "spaceBefore": 6},
            "cell": {"fontSize": 9, "leading": 11},
        }
        self._cls = ParagraphStyle

    def font_for(self, text: str, *, bold: bool = False) -> str:
        if self.fonts.cjk is not None and (self.lang == "zh" or _CJK.search(text)):
            return self.fonts.cjk  # one weight: the CJK fonts here have no bold face
        return self.fonts.latin_bold if bold else self.fonts.latin

    def style(self, kind: str, text: str, *, bold: bool = False) -> Any:
        font = self.font_for(text, bold=bold)
        made = self._made.get((kind, font))
        if made is None:
            made = self._cls(
                f"{kind}-{font}",
                fontName=font,
                wordWrap="CJK" if font == self.fonts.cjk else None,
                **self._kinds[kind],
            )
            self._made[(kind, font)] = made
        return made

    def para(self, value: str, kind: str = "body", *, bold: bool = False) -> Any:
        from reportlab.platypus import Paragraph

        markup = "<br/>".join(escape(line) for line in value.split("\n"))
        return Paragraph(markup, self.style(kind, value, bold=bold))

    def body(self, text_: str) -> list[Any]:
        """The template's text: a blank line starts a paragraph; a line break is kept."""
        paragraphs = re.split(r"\n\s*\n", text_.strip())
        return [self.para(p.strip("\n")) for p in paragraphs if p.strip()]


def _table(
    rows: list[list[Any]], widths: list[float], *, header: bool = False, title: bool = False
) -> Any:
    """A boxed table; ``header`` shades the first row, ``title`` also spans it across."""
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    table = Table(rows, colWidths=widths, hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BOX", (0, 0), (-1, -1), 0.5, colors.black),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
    ]
    if title:
        commands.append(("SPAN", (0, 0), (-1, 0)))
    if header or title:
        commands += [
            ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
            ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.92)),
        ]
    table.setStyle(TableStyle(commands))
    return table


def _money(amount: str, currency: str) -> str:
    return f"{amount} {currency}".strip()


def _summary(
    fields: LetterFields, styles: _Styles, labels: Mapping[str, str], language: str
) -> list[Any]:
    """The amounts box at the top of a letter that has no block of its own (reminders, final
    notices): what is owed, as of the letter's date."""
    from reportlab.platypus import Spacer

    a: Any = fields.amounts
    if not isinstance(a, Mapping) or any(
        block is not None for block in (fields.validation, fields.instalments, fields.verification)
    ):
        return []
    cur = str(a.get("currency") or "")
    rows = [
        (labels["past_due"], _money(str(a.get("past_due", "")), cur)),
        (labels["balance"], _money(str(a.get("balance", "")), cur)),
        (labels["due_date"], format_date(a["due_date"], language) if a.get("due_date") else ""),
        (labels["days_past_due"], str(a.get("days_past_due", ""))),
    ]
    title = labels["amounts"].format(date=format_date(str(fields.letter_date), language))
    table = _table(
        [[styles.para(title, "cell", bold=True), ""]]
        + [[styles.para(k, "cell"), styles.para(v, "cell")] for k, v in rows if v],
        [95 * MM, 55 * MM],
        title=True,
    )
    return [table, Spacer(1, 10)]


def _blocks(
    fields: LetterFields, styles: _Styles, labels: Mapping[str, str], language: str
) -> list[Any]:
    """The structured blocks the hooks asked for, after the template's text."""
    out: list[Any] = []
    if isinstance(fields.validation, Mapping):
        out += _validation_block(fields, fields.validation, styles, labels, language)
    if isinstance(fields.instalments, Mapping):
        out += _instalment_block(fields, fields.instalments, styles, labels, language)
    if isinstance(fields.verification, Mapping):
        out += _verification_block(fields.verification, styles, labels, language)
    if isinstance(fields.cn_notice, Mapping):
        out += _cn_notice_block(fields.cn_notice, styles, labels)
    return out


def _cn_notice_block(
    notice: Mapping[str, Any], styles: _Styles, labels: Mapping[str, str]
) -> list[Any]:
    """What the China pack's letter requirement (cn.collection_notice_contents) asks a
    collection letter to say: the cardholder's rights, how to check and object, where to
    complain, a domestic contact."""
    from reportlab.platypus import CondPageBreak, Spacer

    values = {"phone": str(notice.get("phone") or ""), "creditor": str(notice.get("creditor") or "")}
    p = styles.para
    return [
        Spacer(1, 4),
        CondPageBreak(40 * MM),
        p(labels["cn_rights"], "head", bold=True),
        *(p(labels[k].format(**values)) for k in ("cn_check", "cn_object", "cn_conduct",
                                                  "cn_complain", "cn_contact")),
    ]  # fmt: skip


def _validation_block(
    fields: LetterFields,
    v: Mapping[str, Any],
    styles: _Styles,
    labels: Mapping[str, str],
    language: str,
) -> list[Any]:
    from reportlab.platypus import CondPageBreak, Spacer

    def d(name: str) -> str:
        return format_date(str(v[name]), language)

    cur = str(v.get("currency") or "")
    p = styles.para
    out: list[Any] = [Spacer(1, 4), CondPageBreak(70 * MM), p(labels["details"], "head", bold=True)]
    about = [
        (labels["collector"], str(v.get("collector") or "")),
        (
            labels["creditor_then"].format(date=d("itemization_date")),
            str(v.get("creditor_then", "")),
        ),
        (labels["creditor_now"], str(v.get("creditor_now") or "")),
        (labels["account"], str(v.get("account_number") or "")),
    ]
    out.append(
        _table([[p(k, "cell"), p(val, "cell")] for k, val in about if val], [75 * MM, 75 * MM])
    )
    out.append(Spacer(1, 6))
    money_rows = [
        (labels["itemization"].format(date=d("itemization_date")), v["amount_on_itemization_date"]),
        (labels["between"].format(date=d("itemization_date")), ""),
        (labels["interest"], "+ " + _money(str(v["interest"]), cur)),
        (labels["fees"], "+ " + _money(str(v["fees"]), cur)),
        (labels["payments"], "- " + _money(str(v["payments_credits"]), cur)),
        (labels["total_now"], _money(str(v["current_amount"]), cur)),
    ]
    money_rows[0] = (money_rows[0][0], _money(str(money_rows[0][1]), cur))
    out.append(
        _table(
            [
                [p(k, "cell", bold=i in (0, 5)), p(val, "cell", bold=i in (0, 5))]
                for i, (k, val) in enumerate(money_rows)
            ],
            [110 * MM, 40 * MM],
        )
    )
    end = d("validation_period_ends")
    out += [
        Spacer(1, 6),
        CondPageBreak(45 * MM),
        p(labels["deadline"].format(date=end), "head", bold=True),
        p(labels["deadline_body"].format(date=end)),
        p(labels["original_creditor"].format(date=end)),
        p(labels["assume"].format(date=end)),
        p(labels["cfpb"]),
    ]
    collector_lines = [str(v.get("collector") or ""), *v.get("collector_lines", ())]
    recipient: Mapping[str, Any] = fields.recipient or {}
    from_lines = [str(recipient.get("name") or ""), *recipient.get("lines", ()),
                  str(v.get("account_number") or "")]  # fmt: skip
    out += [
        Spacer(1, 8),
        CondPageBreak(60 * MM),
        p(labels["form_cut"], "small"),
        p(labels["form_title"], "head", bold=True),
        p(labels["form_intro"], "small"),
        p(labels["form_not_mine"], "small"),
        p(labels["form_amount"], "small"),
        p(labels["form_other"], "small"),
        p(labels["form_creditor"], "small"),
        p(labels["form_enclosed"], "small"),
        p(labels["form_from"] + "\n" + "\n".join(from_lines), "small"),
        p(labels["form_mail"] + "\n" + "\n".join(x for x in collector_lines if x), "small"),
    ]
    return out


def _instalment_block(
    fields: LetterFields,
    plan: Mapping[str, Any],
    styles: _Styles,
    labels: Mapping[str, str],
    language: str,
) -> list[Any]:
    from reportlab.platypus import CondPageBreak, Spacer

    cur = str(plan.get("currency") or "")
    p = styles.para
    basis = "plan_basis_balance" if plan.get("basis") == "balance" else "plan_basis_past_due"
    out: list[Any] = [
        Spacer(1, 4),
        CondPageBreak(60 * MM),
        p(labels["plans"], "head", bold=True),
        p(labels[basis].format(amount=_money(str(plan["amount"]), cur))),
    ]
    head = [labels[x] for x in ("plan", "plan_monthly", "plan_last", "plan_total",
                                "plan_first_due", "plan_last_due")]  # fmt: skip
    rows = [[p(h, "cell", bold=True) for h in head]]
    for option in plan.get("options", ()):
        rows.append(
            [
                p(labels["plan_months"].format(months=option["months"]), "cell"),
                p(_money(str(option["monthly"]), cur), "cell"),
                p(_money(str(option["final"]), cur), "cell"),
                p(_money(str(option["total"]), cur), "cell"),
                p(format_date(str(option["first_due"]), language), "cell"),
                p(format_date(str(option["last_due"]), language), "cell"),
            ]
        )
    out.append(_table(rows, [30 * MM, 24 * MM, 24 * MM, 26 * MM, 33 * MM, 33 * MM], header=True))
    sender: Mapping[str, Any] = fields.sender or {}
    phone = str(sender.get("phone") or "")
    out += [
        Spacer(1, 6),
        p(
            labels["plan_accept"].format(
                phone=phone, date=format_date(str(plan["respond_by"]), language)
            )
        ),
    ]
    return out


def _verification_block(
    v: Mapping[str, Any], styles: _Styles, labels: Mapping[str, str], language: str
) -> list[Any]:
    """A dispute's verification (12 CFR 1006.38(d)(2)(i)): the itemization, the creditor and,
    when asked for, the original creditor."""
    from reportlab.platypus import CondPageBreak, Spacer

    cur = str(v.get("currency") or "")
    p = styles.para
    out: list[Any] = [Spacer(1, 4), CondPageBreak(70 * MM),
                      p(labels["verification"], "head", bold=True)]  # fmt: skip
    if v.get("disputed_on"):
        out.append(p(labels["verification_disputed"].format(
            date=format_date(str(v["disputed_on"]), language))))  # fmt: skip
    about = [(labels["creditor_now"], str(v.get("creditor") or "")),
             (labels["account"], str(v.get("account_number") or ""))]  # fmt: skip
    out.append(
        _table([[p(k, "cell"), p(val, "cell")] for k, val in about if val], [75 * MM, 75 * MM])
    )
    out.append(Spacer(1, 6))
    if v.get("itemization_date"):
        when = format_date(str(v["itemization_date"]), language)
        rows = [
            (labels["itemization"].format(date=when),
             _money(str(v["amount_on_itemization_date"]), cur)),
            (labels["between"].format(date=when), ""),
            (labels["interest"], "+ " + _money(str(v["interest"]), cur)),
            (labels["fees"], "+ " + _money(str(v["fees"]), cur)),
            (labels["payments"], "- " + _money(str(v["payments_credits"]), cur)),
            (labels["total_now"], _money(str(v["current_amount"]), cur)),
        ]  # fmt: skip
        bold: tuple[int, ...] = (0, 5)
    else:
        rows = [(labels["total_now"], _money(str(v["current_amount"]), cur))]
        bold = (0,)
    out.append(
        _table(
            [[p(k, "cell", bold=i in bold), p(val, "cell", bold=i in bold)]
             for i, (k, val) in enumerate(rows)],
            [110 * MM, 40 * MM],
        )
    )  # fmt: skip
    if v.get("original_creditor_requested"):
        lines = [str(x) for x in v.get("original_creditor_lines", ()) if x]
        name = str(v.get("original_creditor") or "")
        out += [Spacer(1, 6), p(labels["original_creditor_head"], "head", bold=True)]
        if lines:
            out.append(p(labels["original_creditor_is"].format(name=name) + "\n"
                         + "\n".join(lines)))  # fmt: skip
        else:
            out.append(p(labels["original_creditor_same"].format(name=name)))
    return out
