"""The letter channel's medium: each letter a PDF in the mail house's drop location.

``PrintChannel`` (backend ``print``) lays out an ``OutboundMessage`` as a PDF (address block for
a window envelope, date, the rendered template text, and the structured blocks the letter hooks
put in ``fields``: the validation notice's itemization and dispute deadline, an instalment
offer's plans, the amounts due), writes it to ``<drop>/<YYYY-MM-DD>/letters/<key>.pdf`` through
Airflow's object storage, and records a ``document`` row. The bytes depend only on the message:
reportlab's invariant mode, fixed metadata, no clock. Each PDF carries its line of the day's
mail-house manifest in its metadata, so the manifest (``outreach.media.letters.batch.close_print_batch``) is
built from the letters exactly as printed.

This module imports nothing from ``outreach`` or ``policies``: the app database is reached with
text SQL on the URL the registry gives. Nothing here logs ``message.fields`` or the text.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import Engine, text

from contact_channels.base import OutboundMessage, PermanentError, SendResult
from contact_channels.media import app_engine, drop_location, record_document, write_file

log = logging.getLogger(__name__)

KIND = "letter"
BACKEND = "print"
STATUS = "queued_for_print"
DEFAULT_MAIL_HOUSE = "mailhouse"
DOCUMENT_KIND = "letter"

# Fonts. A CJK TrueType font is embedded (subset) in every letter with Chinese text: a letter
# that needs one when none can be embedded is refused (PermanentError, code
# ``letter.cjk_font_missing``) rather than printed with a font the viewer may lack (empty boxes).
# reportlab's built-in CID font STSong-Light is never used: it is not embedded. Latin text uses
# DejaVu Sans when installed (it has Ł, ő and the like) or reportlab's bundled Vera (Latin-1).
CJK_FONT_ENV = "OUTREACH_LETTER_CJK_FONT"
LATIN_FONT_ENV = "OUTREACH_LETTER_FONT"
BUILTIN_CJK = "STSong-Light"
CJK_FONT_MISSING = "letter.cjk_font_missing"
CJK_FONT_PATHS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # Debian fonts-wqy-zenhei
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    # fonts-noto-cjk ships CFF outlines, which reportlab cannot embed: tried, then skipped.
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",  # fonts-arphic-uming
)
LATIN_FONT_PATHS: tuple[tuple[str, str], ...] = (
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian fonts-dejavu-core
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
)

# The manifest line a letter carries in its PDF metadata (Keywords): base64 of sorted JSON, so
# it needs no PDF string escaping and reads back with a regular expression.
MANIFEST_PREFIX = "outreach-manifest:v1:"
_MANIFEST_IN_PDF = re.compile(rb"/Keywords \((" + MANIFEST_PREFIX.encode() + rb"[A-Za-z0-9+/=]+)\)")

_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")

MM = 72 / 25.4  # points per millimetre


# --- fonts ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LetterFonts:
    """Registered reportlab font names; ``cjk`` is None when no CJK font can be embedded, and
    ``cjk_source`` then says why (a letter with Chinese text is refused with that reason)."""

    latin: str
    latin_bold: str
    cjk: str | None
    cjk_source: str  # the embedded file's path, or why there is none

    @property
    def cjk_embedded(self) -> bool:
        return self.cjk is not None


def letter_fonts() -> LetterFonts:
    """The fonts letters use on this machine (``OUTREACH_LETTER_CJK_FONT``: a TrueType file to
    embed; ``OUTREACH_LETTER_FONT``: a Latin one)."""
    return _fonts(os.environ.get(CJK_FONT_ENV) or None, os.environ.get(LATIN_FONT_ENV) or None)


@lru_cache(maxsize=8)
def _fonts(cjk_setting: str | None, latin_setting: str | None) -> LetterFonts:
    from reportlab import rl_config
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    def ttf(name: str, path: str) -> str:
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, path, subfontIndex=0))
        return name

    if latin_setting:
        if not Path(latin_setting).is_file():
            raise ValueError(f"{LATIN_FONT_ENV}: no such font file: {latin_setting}")
        latin = latin_bold = ttf(f"LetterLatin-{Path(latin_setting).stem}", latin_setting)
    else:
        found = next(((r, b) for r, b in LATIN_FONT_PATHS if Path(r).is_file()), None)
        if found is None:  # reportlab's own copy of Bitstream Vera: present wherever it is
            vera = Path(rl_config.__file__).parent / "fonts"
            found = (str(vera / "Vera.ttf"), str(vera / "VeraBd.ttf"))
        latin = ttf(f"LetterLatin-{Path(found[0]).stem}", found[0])
        bold_path = found[1] if Path(found[1]).is_file() else found[0]
        latin_bold = ttf(f"LetterLatin-{Path(bold_path).stem}", bold_path)

    # English letters go out without a CJK font, so none found is not an error here: the
    # letters that need one are refused, each with this reason.
    if cjk_setting == BUILTIN_CJK:
        why = (f"{CJK_FONT_ENV}={BUILTIN_CJK}: the built-in CID font is not embedded; set it to "
               "a TrueType CJK font file (fonts-wqy-zenhei)")  # fmt: skip
        log.warning("letters: %s", why)
        return LetterFonts(latin, latin_bold, None, why)
    if cjk_setting:
        if not Path(cjk_setting).is_file():
            why = f"{CJK_FONT_ENV}: no such font file: {cjk_setting}"
            log.warning("letters: %s; letters with Chinese text will be refused", why)
            return LetterFonts(latin, latin_bold, None, why)
        candidates: Sequence[str] = (cjk_setting,)
    else:
        candidates = [p for p in CJK_FONT_PATHS if Path(p).is_file()]
    for path in candidates:
        try:
            cjk = ttf(f"LetterCJK-{Path(path).stem}", path)
        except TTFError as exc:  # e.g. CFF outlines; a configured file must load
            if cjk_setting:
                raise ValueError(f"{CJK_FONT_ENV}: cannot embed {path}: {exc}") from exc
            continue
        return LetterFonts(latin, latin_bold, cjk, path)
    why = ("no embeddable CJK TrueType font installed (apt-get install fonts-wqy-zenhei, or set "
           f"{CJK_FONT_ENV} to a .ttf/.ttc file)")  # fmt: skip
    log.warning("letters: %s; letters with Chinese text will be refused", why)
    return LetterFonts(latin, latin_bold, None, why)


def needs_cjk(message: OutboundMessage) -> bool:
    """Whether a letter has Chinese text anywhere (its language, its text, its fields)."""
    language = str(message.fields.get("language") or message.tags.get("language") or "en")
    if _lang(language) == "zh" or _CJK.search(message.body_text):
        return True
    return bool(_CJK.search(json.dumps(dict(message.fields), ensure_ascii=False, default=str)))


# --- wording of the structured blocks -------------------------------------------------------------

# The template text (operations') carries the letter's message; these labels frame the figures
# the hooks computed. Reg F model notice wording (12 CFR 1006 appendix B) where it applies.
LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "page": "Page {n}",
        "account_ending": "Account ending {last4}",
        "date": "{month} {day}, {year}",
        "details": "About the debt",
        "collector": "Debt collector",
        "creditor_then": "Creditor as of {date}",
        "creditor_now": "Current creditor",
        "account": "Account number",
        "itemization": "As of {date}, you owed:",
        "between": "Between {date} and today:",
        "interest": "You were charged this amount in interest:",
        "fees": "You were charged this amount in fees:",
        "payments": "You paid or were credited this amount toward the debt:",
        "total_now": "Total amount of the debt now:",
        "deadline": "Call or write to us by {date} to dispute all or part of the debt.",
        "deadline_body": "If you write to us by {date}, we must stop collection on any amount "
        "you dispute until we send you information that shows you owe the debt. You may use "
        "the form below or write to us without the form. You may also include supporting "
        "documents.",
        "original_creditor": "Write to ask for the name and address of the original creditor, "
        "if different from the current creditor. If you write by {date}, we must stop "
        "collection until we send you that information.",
        "assume": "If you do not dispute the debt by {date}, we will assume that our "
        "information is correct.",
        "cfpb": "Go to www.cfpb.gov/debt-collection to learn more about your rights under "
        "federal law.",
        "form_title": "How do you want to respond?",
        "form_cut": "- - - - - - - - - - Detach and return this part - - - - - - - - - -",
        "form_intro": "Check all that apply. I want to dispute the debt because I think:",
        "form_not_mine": "[  ] This is not my debt.",
        "form_amount": "[  ] The amount is wrong.",
        "form_other": "[  ] Other (please describe on the back or attach additional information).",
        "form_creditor": "[  ] I want you to send me the name and address of the original "
        "creditor.",
        "form_enclosed": "[  ] I enclosed this amount: ______________",
        "form_from": "From:",
        "form_mail": "Mail this form to:",
        "amounts": "Amounts as of {date}",
        "past_due": "Amount past due",
        "balance": "Current balance",
        "due_date": "Oldest unpaid due date",
        "days_past_due": "Days past due",
        "plans": "Repayment plans we can offer",
        "plan_basis_past_due": "Each plan spreads the amount past due, {amount}, over monthly "
        "payments.",
        "plan_basis_balance": "Each plan spreads the balance, {amount}, over monthly payments.",
        "plan": "Plan",
        "plan_months": "{months} monthly payments",
        "plan_monthly": "Monthly payment",
        "plan_last": "Final payment",
        "plan_total": "Total",
        "plan_first_due": "First payment due",
        "plan_last_due": "Last payment due",
        "plan_accept": "To accept a plan, call {phone} or write to us by {date}.",
        "cn_rights": "Your rights",
        "cn_check": "You can check your account's transactions and the amount owed by calling "
        "{phone} or in {creditor}'s online and mobile banking.",
        "cn_object": "If you believe the account details or the amount are wrong, call {phone} "
        "or write to us: we will check and reply to you.",
        "cn_conduct": "We collect only from you. We do not tell anyone unconnected with the debt "
        "about it, and we do not contact you between 22:00 and 08:00.",
        "cn_complain": "You may complain to us about how we collect, or to the National "
        "Financial Regulatory Administration and its local offices (consumer hotline 12378).",
        "cn_contact": "Contact in China: {phone}",
    },
    "zh": {
        "page": "第 {n} 页",
        "account_ending": "账户尾号 {last4}",
        "date": "{year}年{month_n}月{day}日",
        "details": "债务信息",
        "collector": "债务催收方",
        "creditor_then": "截至{date}的债权人",
        "creditor_now": "当前债权人",
        "account": "账号",
        "itemization": "截至{date}，您的欠款为：",
        "between": "自{date}至今：",
        "interest": "产生的利息：",
        "fees": "产生的费用：",
        "payments": "您已还款或获得的抵扣：",
        "total_now": "当前欠款总额：",
        "deadline": "如需对全部或部分债务提出异议，请于{date}前致电或致函我们。",
        "deadline_body": "如您在{date}前书面提出异议，我们将在向您提供证明您欠款的材料之前，"
        "停止对有异议金额的催收。您可以使用下方表格，也可以不使用表格直接致函我们，并可附上证明材料。",
        "original_creditor": "如原始债权人与当前债权人不同，您可以书面要求我们提供原始债权人的名称和地址。"
        "如您在{date}前提出，我们将在提供该信息之前停止催收。",
        "assume": "如您在{date}前未提出异议，我们将视为我们的信息无误。",
        "cfpb": "请访问 www.cfpb.gov/debt-collection 了解您依据美国联邦法律享有的权利。",
        "form_title": "您希望如何回复？",
        "form_cut": "- - - - - - - - - - 请沿此线撕下并寄回 - - - - - - - - - -",
        "form_intro": "请勾选所有适用项。我对该债务提出异议，因为我认为：",
        "form_not_mine": "[  ] 这不是我的债务。",
        "form_amount": "[  ] 金额有误。",
        "form_other": "[  ] 其他（请在背面说明或另附材料）。",
        "form_creditor": "[  ] 请向我提供原始债权人的名称和地址。",
        "form_enclosed": "[  ] 随函附上还款金额：______________",
        "form_from": "寄件人：",
        "form_mail": "请将本表寄至：",
        "amounts": "截至{date}的金额",
        "past_due": "逾期金额",
        "balance": "当前余额",
        "due_date": "最早未还款到期日",
        "days_past_due": "逾期天数",
        "plans": "可供选择的分期还款方案",
        "plan_basis_past_due": "以下方案将逾期金额 {amount} 按月分期偿还。",
        "plan_basis_balance": "以下方案将账户余额 {amount} 按月分期偿还。",
        "plan": "方案",
        "plan_months": "分{months}期按月还款",
        "plan_monthly": "每期还款",
        "plan_last": "末期还款",
        "plan_total": "合计",
        "plan_first_due": "首期还款日",
        "plan_last_due": "末期还款日",
        "plan_accept": "如接受任一方案，请于{date}前致电{phone}或致函我们。",
        "cn_rights": "您的权利",
        "cn_check": "您可以致电{phone}或通过{creditor}网上银行、手机银行查询账户交易明细和欠款金额。",
        "cn_object": "如您认为账户信息或欠款金额有误，请致电{phone}或书面向我们提出异议，我们将核实后答复您。",
        "cn_conduct": "我们仅向您本人催收，不会向与债务无关的第三人透露您的债务信息，"
        "不会在22:00至次日08:00之间联系您。",
        "cn_complain": "如对我们的催收行为有意见，您可以向我们投诉，也可以向国家金融监督管理总局及其派出机构反映"
        "（金融消费者投诉热线12378）。",
        "cn_contact": "境内联系电话：{phone}",
    },
}

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def _lang(language: str) -> str:
    return "zh" if language.lower().startswith("zh") else "en"


def format_date(value: str | dt.date, language: str) -> str:
    """A date as the letter prints it (``November 23, 2026``, ``2026年11月23日``), without the
    process locale."""
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return LABELS[_lang(language)]["date"].format(
        year=day.year, month=_MONTHS[day.month - 1], month_n=day.month, day=day.day
    )


# --- layout ---------------------------------------------------------------------------------------


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


def recipient_of(message: OutboundMessage) -> Recipient:
    """The postal recipient in ``message.fields``; PermanentError when there is none."""
    raw = message.fields.get("recipient") if message.fields else None
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


def render_letter(message: OutboundMessage, fonts: LetterFonts | None = None) -> RenderedLetter:
    """The PDF of one letter. Same message, same bytes (on a machine with the same fonts)."""
    from reportlab.lib.pagesizes import A4, LETTER
    from reportlab.platypus import (
        BaseDocTemplate,
        Frame,
        NextPageTemplate,
        PageBreak,
        PageTemplate,
    )

    fonts = fonts or letter_fonts()
    recipient = recipient_of(message)
    if fonts.cjk is None and needs_cjk(message):
        # Not sent: the ledger row fails with this reason (no personal data in it), and the
        # letter can be redriven once a font is installed.
        raise PermanentError(f"a letter with Chinese text needs an embedded CJK font: "
                             f"{fonts.cjk_source}", code=CJK_FONT_MISSING)  # fmt: skip
    fields = message.fields
    language = str(fields.get("language") or message.tags.get("language") or "en")
    lang = _lang(language)
    labels = LABELS[lang]
    # A translated validation notice comes with the English one (12 CFR 1006.34(e)): the
    # English text and blocks first, so the page furniture (date, footer) is English too.
    english = str(fields.get("english") or "") if lang != "en" else ""
    page_language = "en" if english else language
    page_labels = LABELS[_lang(page_language)]
    sender = fields.get("sender") or {}
    letter_date = str(fields.get("letter_date") or "")
    if not letter_date:
        # The date printed must come from the run, never from this machine's clock.
        raise ValueError("letter fields carry no letter_date (the hooks set it)")
    last4 = str(fields.get("account_last4") or "")
    page_size = LETTER if (recipient.country or "US") == "US" else A4
    width, height = page_size
    styles = _Styles(fonts, lang)

    manifest = {
        "key": message.key,
        "account_ref": str(fields.get("account_ref") or ""),
        "template": str(message.tags.get("template") or fields.get("template") or ""),
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
    fields: Mapping[str, Any], styles: _Styles, labels: Mapping[str, str], language: str
) -> list[Any]:
    """The amounts box at the top of a letter that has no block of its own (reminders, final
    notices): what is owed, as of the letter's date."""
    from reportlab.platypus import Spacer

    a = fields.get("amounts")
    if not isinstance(a, Mapping) or "validation" in fields or "instalments" in fields:
        return []
    cur = str(a.get("currency") or "")
    rows = [
        (labels["past_due"], _money(str(a.get("past_due", "")), cur)),
        (labels["balance"], _money(str(a.get("balance", "")), cur)),
        (labels["due_date"], format_date(a["due_date"], language) if a.get("due_date") else ""),
        (labels["days_past_due"], str(a.get("days_past_due", ""))),
    ]
    title = labels["amounts"].format(date=format_date(str(fields["letter_date"]), language))
    table = _table(
        [[styles.para(title, "cell", bold=True), ""]]
        + [[styles.para(k, "cell"), styles.para(v, "cell")] for k, v in rows if v],
        [95 * MM, 55 * MM],
        title=True,
    )
    return [table, Spacer(1, 10)]


def _blocks(
    fields: Mapping[str, Any], styles: _Styles, labels: Mapping[str, str], language: str
) -> list[Any]:
    """The structured blocks the hooks asked for, after the template's text."""
    out: list[Any] = []
    if isinstance(fields.get("validation"), Mapping):
        out += _validation_block(fields, fields["validation"], styles, labels, language)
    if isinstance(fields.get("instalments"), Mapping):
        out += _instalment_block(fields, fields["instalments"], styles, labels, language)
    if isinstance(fields.get("cn_notice"), Mapping):
        out += _cn_notice_block(fields["cn_notice"], styles, labels)
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
    fields: Mapping[str, Any],
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
    recipient = fields.get("recipient") or {}
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
    fields: Mapping[str, Any],
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
    phone = str((fields.get("sender") or {}).get("phone") or "")
    out += [
        Spacer(1, 6),
        p(
            labels["plan_accept"].format(
                phone=phone, date=format_date(str(plan["respond_by"]), language)
            )
        ),
    ]
    return out


# --- the drop location --------------------------------------------------------------------------


def drop_root(settings: Mapping[str, Any], data_dir: Path | None) -> Any:
    """The mail house's drop location: ``settings['drop']`` (a URL: ``file://``, ``s3://``,
    ``sftp://``; ``conn_id`` for its Airflow connection), else ``file://<data_dir>/drop/mailhouse``."""
    fallback = Path(data_dir) / "drop" / "mailhouse" if data_dir is not None else None
    try:
        return drop_location(settings.get("drop"), settings.get("conn_id"), None, fallback)
    except ValueError:
        raise ValueError("channels.letter.drop is not set and there is no data dir") from None


def letter_path(root: Any, batch_date: dt.date, key: str) -> Any:
    return root / batch_date.isoformat() / "letters" / f"{key}.pdf"


def is_complete_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


# --- the app database ---------------------------------------------------------------------------


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
            now=(now or _utcnow)(),
            ledger_key=ledger_key,
            account_id=account_id,
        )
        row = conn.execute(
            text("SELECT id FROM document WHERE kind = :kind AND path = :path"),
            {"kind": kind, "path": path},
        ).one()
    return int(row[0]), bool(inserted)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def provider_id(batch_date: dt.date, key: str) -> str:
    """The ledger's reference for a letter: its file, relative to the drop location (55
    characters for a ledger key; hashed if a longer key would not fit the 64-character column)."""
    name = f"{batch_date.isoformat()}/letters/{key}.pdf"
    if len(name) <= 64:
        return name
    return f"{batch_date.isoformat()}/letters/h:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


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
        recipient_of(message)  # no postal address: refused before anything is written
        ledger = self._ledger_row(message.key)
        if ledger is None and not message.fields.get("batch_date"):
            raise ValueError("a letter with no ledger row needs fields['batch_date']")
        # The ledger's plan date is the batch: lookup finds the file from the key alone.
        batch_date = ledger[1] if ledger else _as_date(message.fields["batch_date"])
        account_id = ledger[0] if ledger else message.fields.get("account_id")
        letter = render_letter(message, self.fonts)
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
