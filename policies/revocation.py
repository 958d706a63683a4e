"""Read an inbound text reply as a revocation of consent (TCPA), a re-opt-in, or a help request.

Pure: text in, a label out (``"stop"``, ``"start"``, ``"help"`` or ``None``); the caller records
an opt-out at once for ``"stop"`` (47 CFR 64.1200(a)(10) allows revocation by any reasonable
means and gives at most 10 business days to honour it; we honour it before the next send).

The heuristic, in order:

1. The reply is normalised: Unicode NFKC, case-folded, surrounding whitespace and punctuation
   removed, inner whitespace collapsed.
2. A reply that *is* a keyword (or only keywords, e.g. ``"STOP STOP"``, ``"Stop."``,
   ``"*unsubscribe*"``) is definitive: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE,
   OPT OUT, OPTOUT (and OPT-OUT) give ``"stop"``, the words the FCC names in 64.1200(a)(12);
   START and UNSTOP give ``"start"``; HELP and INFO give ``"help"``. Chinese ``TD`` (the usual
   "reply TD to unsubscribe") and ``退订`` count as stop keywords too. ``YES`` is *not* a re-opt-in:
   it is too often the answer to some other question.
3. Otherwise a keyword inside a longer message does *not* count by itself: ``"I can't stop by
   today"`` and ``"when does the offer end?"`` are ordinary replies. Only phrases that say the
   same in plain words count: a stop/quit/cease verb with a contact verb (``"please stop texting
   me"``, ``"quit calling"``), a negated contact verb (``"don't call me anymore"``, ``"do not
   contact me"``), ``"leave me alone"``, ``"remove me from your list"``, ``"take me off"``,
   ``"no more texts"``, ``"opt me out"``, and the words that have no other meaning in a reply
   (``unsubscribe``, ``opt out``, ``optout``, ``revoke my consent``). Chinese: ``退订``,
   ``停止发送``, ``不要再打``, ``不要再发`` (and ``别再打``, ``别再发``, ``不要再联系``).
4. A negated contact verb limited to a time or a place (``"don't call me before 5pm"``, ``"do
   not call me at work"``) is not a revocation: it is an inconvenient time or place, which a
   person records as such; the result is ``None`` so the reply is read by a person.

Anything else is ``None``. The heuristic prefers a missed revocation over a false one only
where the words are ambiguous; those replies go to a person, who records the opt-out if needed.
"""

from __future__ import annotations

import re
import unicodedata

STOP, START, HELP = "stop", "start", "help"

STOP_KEYWORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "opt out", "optout",
     "opt-out", "td", "退订"}
)  # fmt: skip
START_KEYWORDS = frozenset({"start", "unstop"})
HELP_KEYWORDS = frozenset({"help", "info"})

# Punctuation and symbols around a reply ("STOP.", "*stop*", "Stop!!!", "「退订」").
_EDGES = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)
_SPACES = re.compile(r"\s+")

_CONTACT_WORDS = (
    r"call(?:ing|s)?|text(?:ing|s)?|messag(?:e|es|ing)|contact(?:ing)?|e-?mail(?:ing|s)?|"
    r"sms(?:ing)?|phon(?:e|ing)|ring(?:ing)?|bother(?:ing)?|harass(?:ing)?"
)
_CONTACT_VERBS = f"(?:{_CONTACT_WORDS})"
_NEGATION = r"(?:don'?t|do not|never)"
# What may follow a negated contact verb for it to be a request to stop (not "I never text back").
_OBJECT = (
    r"(?:\s+(?:me|us|this number|my (?:number|phone|email))\b|\s+(?:again|anymore|any more)\b|$)"
)
# A negated contact verb followed by a time or a place: a limit, not a revocation.
_LIMITED = re.compile(
    r"\b" + _NEGATION + r"\s+(?:ever\s+)?" + _CONTACT_VERBS + r"(?:\s+(?:me|us|this number))?\s+"
    r"(?:before|after|until|till|between|at work|at my work|at my job|at the office|"
    r"during|in the morning|in the evening|at night|on weekends?|on (?:mon|tues|wednes|thurs|"
    r"fri|satur|sun)days?|this week|today|tonight|tomorrow)\b"
)
_PLAIN_STOP = [
    re.compile(
        r"\b(?:stop|quit|cease)\s+(?:all\s+)?(?:"
        + _CONTACT_WORDS
        + r"|send(?:ing)?|writ(?:e|ing))\b"
    ),
    re.compile(r"\b" + _NEGATION + r"\s+(?:ever\s+)?" + _CONTACT_VERBS + _OBJECT),
    re.compile(r"\bleave me alone\b"),
    re.compile(r"\bremove (?:me|my (?:number|name|email|phone))\b"),
    re.compile(r"\btake (?:me|my (?:number|name|email|phone))\s+off\b"),
    re.compile(r"\bno more (?:calls|texts|messages|emails|contact)\b"),
    re.compile(r"\bopt me out\b"),
    re.compile(r"\bopt[- ]?out\b"),
    re.compile(r"\bunsubscribe\b"),
    re.compile(r"\brevoke (?:my |all |your )?(?:consent|permission)\b"),
    re.compile(r"\bstop ?all\b"),
    re.compile(r"^(?:please|pls|plz)\s+stop(?:\s+(?:it|now|please))?$"),
    re.compile(r"^stop\s+(?:it|now|please|pls|plz)$"),
]
_CHINESE_STOP = ("退订", "停止发送", "不要再打", "不要再发", "别再打", "别再发", "不要再联系")


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    return _SPACES.sub(" ", _EDGES.sub("", folded.strip())).strip()


def _only_keywords(reply: str, keywords: frozenset[str]) -> bool:
    """True when the reply is one keyword, or keywords only ("stop stop", "opt out")."""
    if reply in keywords:
        return True
    words = [_EDGES.sub("", w) for w in reply.split(" ")]
    return bool(words) and all(w in keywords for w in words if w) and any(words)


def classify(text: str) -> str | None:
    """``"stop"``, ``"start"``, ``"help"`` or None for an inbound reply (see the module notes)."""
    reply = _normalise(text or "")
    if not reply:
        return None
    if _only_keywords(reply, STOP_KEYWORDS):
        return STOP
    if _only_keywords(reply, START_KEYWORDS):
        return START
    if _only_keywords(reply, HELP_KEYWORDS):
        return HELP
    if any(word in reply for word in _CHINESE_STOP):
        return STOP
    # A limited request ("don't call me at work") is taken out before looking for a real one.
    rest = _SPACES.sub(" ", _LIMITED.sub(" ", reply)).strip()
    if any(p.search(rest) for p in _PLAIN_STOP):
        return STOP
    return None
