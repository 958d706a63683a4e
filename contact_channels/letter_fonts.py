"""The fonts a letter is set in: an embeddable CJK TrueType font for letters with Chinese text
(refused without one), DejaVu Sans or reportlab's Vera for Latin text. Imports nothing from
``outreach`` or ``policies``."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from contact_channels.base import OutboundMessage
from contact_channels.letter_wording import _lang
from contact_channels.media_fields import LetterFields

log = logging.getLogger(__name__)


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


_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")


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


def needs_cjk(message: OutboundMessage, fields: LetterFields) -> bool:
    """Whether a letter has Chinese text anywhere (its language, its text, its ``fields``)."""
    language = str(fields.language or message.tags.get("language") or "en")
    if _lang(language) == "zh" or _CJK.search(message.body_text):
        return True
    return bool(_CJK.search(json.dumps(fields.as_fields(), ensure_ascii=False, default=str)))
