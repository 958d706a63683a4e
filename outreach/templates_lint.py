"""Template lint: each template parses and renders in the sandbox, says how to opt out, fits.

``outreach config check`` (through ``outreach.ladder``) runs :func:`lint_template` for every
templated action of the ladder, in every language, and reports each problem under the YAML path
of the action's ``template``. The rules:

- the file parses in the sandboxed environment the dispatcher renders with (a syntax error
  names the file and line) and renders without error with long, realistic sample contexts
  (a 40-character name, five-digit amounts, a name that is not GSM-7);
- ``sms``: the rendered text tells how to opt out (``STOP``; zh-CN ``STOP`` or ``退订``), and
  its worst rendering needs at most ``sms.max_segments`` segments (``config/channels.yaml``,
  default 3), counted by :func:`contact_channels.sms_segments.sms_segments`;
- ``email``: the text starts with a ``Subject:`` line, and both the text and the HTML carry an
  unsubscribe instruction or link (the word unsubscribe or 退订, or one of SendGrid's ASM
  unsubscribe tags such as ``<%asm_group_unsubscribe_raw_url%>``);
- ``letter``: parses and renders; letters are exempt from the opt-out rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError

from contact_channels.sms_segments import sms_segments
from outreach import settings
from outreach.channel_config import DEFAULT_MAX_SMS_SEGMENTS, channels_config
from outreach.messages import escape_context, message_context, sandbox, split_subject

# The opt-out instruction each language's SMS must carry, and the email unsubscribe markers.
SMS_OPT_OUT = {"en": re.compile(r"\bSTOP\b"), "zh-CN": re.compile(r"\bSTOP\b|退订")}
EMAIL_UNSUBSCRIBE = re.compile(
    r"unsubscribe|退订|<%asm_(?:group_unsubscribe|global_unsubscribe|preferences)_raw_url%>",
    re.IGNORECASE,
)


def max_sms_segments(config_dir: Path | None = None) -> int:
    """``sms.max_segments`` from ``config/channels.yaml``, else the default (3)."""
    value = channels_config(config_dir).sms.max_segments
    return DEFAULT_MAX_SMS_SEGMENTS if value is None else value


@dataclass(frozen=True, slots=True)
class Sample:
    """A named context to render with; the names show up in length errors."""

    label: str
    context: dict[str, Any]


def sample_contexts(language: str) -> list[Sample]:
    """Long, realistic contexts: what the dispatcher passes, at the lengths that cost segments.

    A 40-character name whose first word is long (English greetings use it), the same length
    with letters outside GSM-7 (one such letter makes the whole SMS UCS-2), five- and six-digit
    amounts, three-digit days past due, and a long postal address. The brand comes from the
    environment, as when sending.
    """
    currency = "CNY" if language.startswith("zh") else "USD"
    names = [
        ("40-character name", "Bartholomew-Maximilian Featherstonehaugh"),
        ("40-character non-GSM name", "Zoë-Łucja Przybyszewska-Featherstonehaugh"[:40]),
    ]
    if language.startswith("zh"):
        names.append(("Chinese name", "欧阳诸葛慕容司马上官夏侯"))
    return [
        Sample(
            label,
            message_context(
                full_name=name,
                language=language,
                account_ref="4000123412344821",
                amount_past_due=Decimal("12345.67"),
                balance=Decimal("123456.78"),
                currency=currency,
                days_past_due=999,
                address="Apartment 1204, 1600 Pennsylvania Avenue NW\nWashington, DC 20500-0003",
            ),
        )
        for label, name in names
    ]


def _template_line(tb: TracebackType | None, filename: str | None) -> int | None:
    """The template line a render error was raised at (Jinja rewrites the traceback)."""
    line = None
    while tb is not None and filename:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def lint_template(
    channel: str,
    template: str,
    languages: Iterable[str],
    suffixes: Iterable[str],
    *,
    root: Path | None = None,
    max_segments: int | None = None,
) -> list[str]:
    """Every problem of ``template`` for ``channel``, one message each, naming the file.

    Files that do not exist are skipped (the ladder check reports them).
    """
    root = root or settings.templates_dir()
    env = sandbox(root)
    limit = max_segments if max_segments is not None else DEFAULT_MAX_SMS_SEGMENTS
    problems: list[str] = []
    for lang in languages:
        samples = sample_contexts(lang)
        for suffix in suffixes:
            rel = f"{lang}/{template}{suffix}"
            if not (root / rel).is_file():
                continue
            try:
                compiled = env.get_template(rel)
            except TemplateSyntaxError as exc:
                problems.append(f"{rel} line {exc.lineno}: syntax error: {exc.message}")
                continue
            except TemplateError as exc:
                problems.append(f"{rel}: cannot load: {exc}")
                continue
            worst: tuple[int, str, str] | None = None
            for sample in samples:
                context = escape_context(sample.context) if suffix == ".html" else sample.context
                try:
                    text = compiled.render(context).strip()
                except Exception as exc:  # noqa: BLE001 - any render failure is a template fault
                    line = _template_line(exc.__traceback__, compiled.filename)
                    at = f" line {line}" if line else ""
                    problems.append(
                        f"{rel}{at}: does not render ({type(exc).__name__}: {exc})"
                    )
                    break
                subject = None
                if channel == "email" and suffix == ".txt":
                    subject, text = split_subject(text)
                    if not subject:
                        problems.append(f"{rel}: an email needs a first line 'Subject: ...'")
                        break
                if channel == "sms":
                    opt_out = SMS_OPT_OUT.get(lang, SMS_OPT_OUT["en"])
                    if not opt_out.search(text):
                        words = "STOP or 退订" if lang.startswith("zh") else "STOP"
                        problems.append(
                            f"{rel}: an SMS must tell how to opt out ({words}), "
                            f"e.g. 'Reply STOP to opt out'"
                        )
                        break
                    encoding, segments = sms_segments(text)
                    if worst is None or segments > worst[0]:
                        worst = (segments, encoding, sample.label)
                if channel == "email" and not EMAIL_UNSUBSCRIBE.search(text):
                    kind = "HTML" if suffix == ".html" else "text"
                    problems.append(
                        f"{rel}: the email {kind} must carry an unsubscribe instruction or link "
                        "('unsubscribe', '退订' or <%asm_group_unsubscribe_raw_url%>)"
                    )
                    break
            if worst is not None and worst[0] > limit:
                segments, encoding, label = worst
                problems.append(
                    f"{rel}: {lang} SMS needs {segments} {encoding} segments with a {label}, "
                    f"more than sms.max_segments ({limit})"
                )
    return problems
