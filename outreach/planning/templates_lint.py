"""Template lint: each template parses and renders in the sandbox, says how to opt out, fits.

``outreach config check`` (through ``outreach.planning.ladder``) runs :func:`lint_template` for every
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
- ``letter``: parses and renders; letters are exempt from the opt-out rule;
- threats: a template whose text speaks of legal action (a lawsuit, suing, court, a referral
  for legal action; zh-CN 诉讼, 法律, 起诉) declares ``{# outreach: threatens_suit #}``, and a
  template that declares it says so (the gate reads the declaration: ``core.time_barred``);
  an unknown word in an ``outreach:`` declaration is refused;
- who is writing, per role (``config/policy.yaml``): for a third-party ``collector``, every
  message to a US consumer after the first says it is from a debt collector (12 CFR
  1006.18(e)(2)), the first SMS and email also that it is attempting to collect a debt and that
  any information obtained will be used for that purpose ((e)(1)); an SMS or email names the
  sender, and a letter is not signed with the creditor's name when the collector writes;
- a time-barred account's state disclosure (``policies.disclosures``) is in every letter and
  email as sent (``outreach.planning.messages.with_disclosure``).
"""

from __future__ import annotations

import os
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
from outreach.kernel.channel_config import DEFAULT_MAX_SMS_SEGMENTS, channels_config
from outreach.kernel.identity import (
    COLLECTOR_NAME,
    CREDITOR_NAME,
    DISCLOSURE_PATTERNS,
    MAILING_ADDRESS,
    PAY_URL,
    SERVICE_PHONE,
    Identity,
    missing_settings,
)
from outreach.kernel.identity import identity as configured_identity
from outreach.kernel.self_service_token import LINK_PATH
from outreach.kernel.self_service_token import mint as mint_link_token
from outreach.planning.messages import (
    declared_traits,
    escape_context,
    message_context,
    sandbox,
    split_subject,
    with_disclosure,
)
from outreach.planning.statements import sample_loop_context
from policies.model import COLLECTOR

# The opt-out instruction each language's SMS must carry, and the email unsubscribe markers.
SMS_OPT_OUT = {"en": re.compile(r"\bSTOP\b"), "zh-CN": re.compile(r"\bSTOP\b|退订")}
EMAIL_UNSUBSCRIBE = re.compile(
    r"unsubscribe|退订|<%asm_(?:group_unsubscribe|global_unsubscribe|preferences)_raw_url%>",
    re.IGNORECASE,
)


# Words that speak of a lawsuit or legal action, per language (a template saying them must
# declare threatens_suit). Matched on the template's source without its Jinja comments.
THREAT_WORDS = {
    "en": re.compile(
        r"\blegal (?:action|proceedings?|steps?)\b|\blaw ?suits?\b|\bsu(?:e|ed|ing)\b|\bcourts?\b"
        r"|\blitigation\b|\bjudgments?\b|\brefer(?:red|ral)? (?:\w+ )?(?:to|for) (?:an? )?"
        r"(?:attorney|lawyer|counsel|legal)",
        re.IGNORECASE,
    ),
    "zh-CN": re.compile("诉讼|法律|起诉|法院"),
}
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)

# The identity the lint renders with when none is configured (a check on a fresh machine must
# still lint): names of realistic length, never sent.
SAMPLE_IDENTITY = {
    CREDITOR_NAME: "Sample Creditor Bank NA",
    COLLECTOR_NAME: "Sample Recovery Services LLC",
    MAILING_ADDRESS: "PO Box 0000|Sampletown, ST 00000-0000",
    SERVICE_PHONE: "+1 800 000 0000",
    PAY_URL: "https://pay.sample.invalid/now",
}


def max_sms_segments(config_dir: Path | None = None) -> int:
    """``sms.max_segments`` from ``config/channels.yaml``, else the default (3)."""
    value = channels_config(config_dir).sms.max_segments
    return DEFAULT_MAX_SMS_SEGMENTS if value is None else value


# The self-service link as the lint measures it when OUTREACH_SELF_SERVICE_BASE_URL is not set.
SAMPLE_SELF_SERVICE_BASE = "https://selfservice.sample.invalid"


def sample_self_service_url() -> str:
    """The longest self-service link a message can carry: the configured base URL (a sample
    one when none is set) and a token for a ten-digit account id."""
    import datetime as dt

    base = settings.self_service_base_url() or SAMPLE_SELF_SERVICE_BASE
    token = mint_link_token(9_999_999_999, dt.date(2099, 12, 31), key="sample-key")
    return f"{base}{LINK_PATH}{token}"


@dataclass(frozen=True, slots=True)
class Sample:
    """A named context to render with; the names show up in length errors."""

    label: str
    context: dict[str, Any]


def lint_identity(role: str) -> Identity:
    """The configured identity, or a sample one where nothing is configured."""
    if not missing_settings(role):
        return configured_identity(role)
    import os

    return configured_identity(role, {**SAMPLE_IDENTITY, **{
        k: v for k, v in os.environ.items() if k in SAMPLE_IDENTITY and v.strip()}})


def sample_contexts(
    language: str, role: str = COLLECTOR, *, initial: bool = True, time_barred: bool = False
) -> list[Sample]:
    """Long, realistic contexts: what the dispatcher passes, at the lengths that cost segments.

    A 40-character name whose first word is long (English greetings use it), the same length
    with letters outside GSM-7 (one such letter makes the whole SMS UCS-2), five- and six-digit
    amounts, three-digit days past due, a long postal address and the longest self-service link
    (with it a template must fit; without a base URL it renders ``pay_url`` or nothing). The
    identity comes from the
    environment, as when sending (a sample one when none is set), for ``role``; ``initial``: the
    first communication (the longer disclosure); ``time_barred``: a time-barred California
    account (its disclosure); every consequence possible (the longest final notice).
    """
    who = lint_identity(role)
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
                role=role,
                country="US",
                region="CA",
                initial_communication=initial,
                time_barred=time_barred,
                may_place_with_agency=True,
                may_refer_for_legal_action=True,
                who=who,
                loop=sample_loop_context(),
                self_service_url=sample_self_service_url(),
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
    role: str | None = None,
    reaches_us: bool = True,
) -> list[str]:
    """Every problem of ``template`` for ``channel``, one message each, naming the file.

    Files that do not exist are skipped (the ladder check reports them). ``role`` is the
    user's (``config/policy.yaml`` when not given). ``reaches_us``: whether the template can go
    to a US consumer (False for an action whose ``applies_to`` names only other countries):
    Regulation F's debt-collector disclosures are required only then.
    """
    root = root or settings.templates_dir()
    limit = max_segments if max_segments is not None else DEFAULT_MAX_SMS_SEGMENTS
    role = role or _policy_role()
    # Every gate that loads the ladder (each call claimed, each plan, each self-service answer)
    # lints its templates: the same answer while nothing it reads has changed, so it is kept,
    # keyed on everything it reads: the arguments, the template files (name, size, time
    # modified) and the environment's OUTREACH_* settings (who is writing, the link's base).
    key = (channel, template, tuple(languages), tuple(suffixes), limit, role, reaches_us,
           lint_inputs(root))  # fmt: skip
    if key not in _LINTED:
        if len(_LINTED) >= _LINTED_MAX:
            _LINTED.clear()
        _LINTED[key] = tuple(_lint(channel, template, languages, suffixes, root, limit, role,
                                   reaches_us))  # fmt: skip
    return list(_LINTED[key])


_LINTED: dict[tuple[Any, ...], tuple[str, ...]] = {}
_LINTED_MAX = 4096


def lint_inputs(root: Path) -> tuple[Any, ...]:
    """What the lint reads besides its arguments, to key a kept answer on: the template tree
    (each file's name, size and time modified), the role in ``config/policy.yaml`` and the
    environment's ``OUTREACH_*`` settings (who is writing, the self-service link's base)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            stat = os.stat(os.path.join(folder, name))
            found.append((os.path.join(folder, name), stat.st_size, stat.st_mtime_ns))
    environment = sorted((k, v) for k, v in os.environ.items() if k.startswith("OUTREACH_"))
    return (str(root), tuple(found), _policy_role(), tuple(environment))


def _lint(channel: str, template: str, languages: Iterable[str], suffixes: Iterable[str],
          root: Path, limit: int, role: str, reaches_us: bool) -> list[str]:  # fmt: skip
    languages, suffixes = list(languages), list(suffixes)
    env = sandbox(root)
    problems: list[str] = []
    files = [(lang, suffix) for lang in languages for suffix in suffixes
             if (root / f"{lang}/{template}{suffix}").is_file()]  # fmt: skip
    problems += _threat_problems(root, template, files)
    for lang in languages:
        samples = sample_contexts(lang, role)
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
            else:
                problems += _writer_problems(compiled, rel, channel, lang, suffix, role,
                                             reaches_us=reaches_us)
            if worst is not None and worst[0] > limit:
                segments, encoding, label = worst
                problems.append(
                    f"{rel}: {lang} SMS needs {segments} {encoding} segments with a {label}, "
                    f"more than sms.max_segments ({limit})"
                )
    return problems


def _policy_role() -> str:
    from outreach.kernel.policy_settings import policy_settings

    try:
        return policy_settings().role
    except (ValueError, OSError):  # a broken policy file is reported by its own check
        return COLLECTOR


def _threat_problems(root: Path, template: str, files: list[tuple[str, str]]) -> list[str]:
    """The declaration and the text agree, file by file: the text speaks of legal action iff
    the template declares ``threatens_suit``."""
    problems: list[str] = []
    for lang, suffix in files:
        rel = f"{lang}/{template}{suffix}"
        source = (root / rel).read_text(encoding="utf-8")
        traits, unknown = declared_traits(source)
        if unknown:
            problems.append(
                f"{rel}: unknown declaration {', '.join(unknown)} in '{{# outreach: ... #}}' "
                "(known: threatens_suit)"
            )
        words = THREAT_WORDS.get(lang, THREAT_WORDS["en"])
        said = words.search(JINJA_COMMENT.sub("", source))
        if said and "threatens_suit" not in traits:
            problems.append(
                f"{rel}: the text speaks of legal action ('{said.group(0)}') but the template "
                "does not declare it: add '{# outreach: threatens_suit #}' (the gate then never "
                "sends it on a time-barred debt)"
            )
        elif not said and "threatens_suit" in traits:
            problems.append(
                f"{rel}: declares threatens_suit but its text speaks of no legal action: "
                "remove the declaration or say what may happen"
            )
    return problems


def _writer_problems(
    compiled: Any, rel: str, channel: str, lang: str, suffix: str, role: str,
    *, reaches_us: bool = True,
) -> list[str]:
    """Who is writing, per role and channel, on the message as sent (sample contexts)."""
    problems: list[str] = []
    patterns = DISCLOSURE_PATTERNS.get(lang, DISCLOSURE_PATTERNS["en"])
    html = suffix == ".html"
    for initial in (True, False):
        for sample in sample_contexts(lang, role, initial=initial, time_barred=True)[:1]:
            context = escape_context(sample.context) if html else sample.context
            try:
                text = with_disclosure(compiled.render(context).strip(), context, html=html)
            except Exception:  # noqa: BLE001 - the render problem is reported by the caller
                return problems
            if channel in ("letter", "email") and str(context["time_barred_disclosure"]) not in text:
                problems.append(f"{rel}: a time-barred account's state disclosure is missing")
            when = "the first message" if initial else "every later message"
            if role != COLLECTOR:
                continue
            if not reaches_us:
                pass  # Regulation F's disclosures are for US consumers only
            elif not patterns[0].search(text):
                problems.append(
                    f"{rel}: {when} of a debt collector must say it is from a debt collector "
                    "(12 CFR 1006.18(e)): place {{ debt_collector_disclosure }}"
                )
            elif initial and channel in ("sms", "email") and not patterns[1].search(text):
                problems.append(
                    f"{rel}: the first SMS or email of a debt collector must also say that any "
                    "information obtained will be used to collect the debt (12 CFR "
                    "1006.18(e)(1)): place {{ debt_collector_disclosure }}"
                )
            sender, creditor = str(context["sender"]), str(context["creditor"])
            if channel in ("sms", "email") and not html and sender not in text:
                problems.append(f"{rel}: the message does not name its sender ({{{{ sender }}}})")
            last = text.rstrip().rsplit("\n", 1)[-1].strip()
            if channel == "letter" and sender != creditor and last == creditor:
                problems.append(
                    f"{rel}: signed with the creditor's name while the collector writes: sign "
                    "with {{ sender }}"
                )
    return sorted(set(problems), key=problems.index)
