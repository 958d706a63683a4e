"""Rendering what a contact says, from templates operations write, in a sandboxed Jinja2.

A template declares what it says that the gates must know, in a Jinja comment on any line:
``{# outreach: threatens_suit #}`` (it speaks of legal action: never to a time-barred debt,
``core.time_barred``). The declaration is the one source: the planner and the dispatcher read
it through :func:`template_traits`, and the template lint checks it against the text.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from outreach import settings
from outreach.kernel.identity import Identity, collector_disclosure, identity
from policies.disclosures import time_barred_disclosure


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


@lru_cache(maxsize=4)
def _environment(root: str) -> SandboxedEnvironment:
    # Sandboxed: templates are data written by operations and must not reach Python internals
    # (``{{ ''.__class__ }}`` raises SecurityError) nor change what they are given.
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(root),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


def sandbox(root: Path | None = None) -> SandboxedEnvironment:
    """The sandboxed environment templates under ``root`` (default: the templates dir) render in."""
    return _environment(str(root or settings.templates_dir()))


# Traits a template may declare; ``threatens_suit``: it speaks of a lawsuit or legal action.
TRAITS = frozenset({"threatens_suit"})
DECLARATION = re.compile(r"\{#-?\s*outreach:\s*([^#]*?)\s*-?#\}")


def declared_traits(source: str) -> tuple[frozenset[str], list[str]]:
    """The traits a template's source declares, and the unknown words in its declarations."""
    words = {w for m in DECLARATION.finditer(source) for w in re.split(r"[\s,]+", m.group(1)) if w}
    return frozenset(words & TRAITS), sorted(words - TRAITS)


@lru_cache(maxsize=256)
def _traits(root: str, template: str, stamp: tuple[tuple[str, int], ...]) -> frozenset[str]:
    found: set[str] = set()
    for rel, _ in stamp:
        found |= declared_traits((Path(root) / rel).read_text(encoding="utf-8"))[0]
    return frozenset(found)


# How long a template's traits are taken as read before its files are looked at again. The
# planner asks for every step it judges (tens of thousands a batch); globbing and stating the
# files each time was a third of planning time. An edit is seen within this many seconds.
TRAITS_FRESH_SECONDS = 1.0
_fresh_traits: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}


def template_traits(template: str | None, root: Path | None = None) -> frozenset[str]:
    """What ``template`` declares, in any language or part (a trait one language declares
    holds for the template: the gate judges the step, not its translation)."""
    if not template:
        return frozenset()
    key = (str(root) if root else settings.TEMPLATES_DIR.get(""), template)
    now = time.monotonic()
    known = _fresh_traits.get(key)
    if known is not None and now - known[0] < TRAITS_FRESH_SECONDS:
        return known[1]
    traits = _read_traits(template, root)
    _fresh_traits[key] = (now, traits)
    return traits


def _read_traits(template: str, root: Path | None) -> frozenset[str]:
    base = root or settings.templates_dir()
    files = sorted(
        p for p in base.glob(f"*/{template}.*") if p.is_file() and p.suffix in (".txt", ".html")
    )
    stamp = tuple((str(p.relative_to(base)), p.stat().st_mtime_ns) for p in files)
    return _traits(str(base), template, stamp)


def brand(
    role: str | None = None, *, language: str | None = None, country: str | None = None
) -> dict[str, str]:
    """Who is writing, for templates: ``creditor``, ``sender`` (who signs: the collector's name
    for role collector), ``phone``, ``pay_url``, ``mailing_address``; in Chinese the Chinese
    names, to a consumer in China the domestic number (``Identity.localized``). Raises
    ``outreach.kernel.identity.IdentityMissing`` when the settings are not configured (no defaults)."""
    return _brand(_identity(role).localized(language, country))


def _identity(role: str | None) -> Identity:
    if role is None:
        from outreach.kernel.policy_settings import policy_settings

        role = policy_settings().role
    return identity(role)


def _brand(who: Identity) -> dict[str, str]:
    return {
        "creditor": who.creditor,
        "sender": who.sender,
        "pay_url": who.pay_url,
        "phone": who.phone,
        "mailing_address": ", ".join(who.address_lines),
    }


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


def message_context(
    *,
    full_name: str,
    language: str,
    account_ref: str,
    amount_past_due: Decimal,
    balance: Decimal,
    currency: str,
    days_past_due: int,
    address: str | None,
    role: str | None = None,
    country: str = "US",
    region: str | None = None,
    initial_communication: bool = False,
    time_barred: bool = False,
    may_place_with_agency: bool = False,
    may_refer_for_legal_action: bool = False,
    who: Identity | None = None,
    loop: dict[str, Any] | None = None,
    self_service_url: str = "",
) -> dict[str, Any]:
    """What a template may say. Besides the account's figures and who is writing (``brand``):

    - ``debt_collector_disclosure``: 12 CFR 1006.18(e)(1) in the ``initial_communication``,
      (e)(2) after it, for a collector writing to a US consumer; empty otherwise;
    - ``time_barred_disclosure``: the state's disclosure (``policies.disclosures``) for a
      ``time_barred`` debt, empty otherwise;
    - ``may_place_with_agency``, ``may_refer_for_legal_action``: the consequences the ladder
      can actually take for this account (``outreach.planning.consequences``): a letter states no
      other (15 U.S.C. 1692e(5));
    - ``loop``: for the resolution loop's messages, the promise, the instalments and the
      statement (``outreach.planning.statements.loop_context``).
    - ``self_service_url``: the consumer's own link to the self-service page (a signed,
      expiring token for this account, minted at send time), "" when
      ``OUTREACH_SELF_SERVICE_BASE_URL`` is not set: templates write
      ``{{ self_service_url or pay_url }}`` or ``{% if self_service_url %}`` (docs/self-service.md).
    """
    who = who or _identity(role)
    first_name = full_name if language.startswith("zh") else full_name.split(" ")[0]
    who = who.localized(language, country)
    disclosure = time_barred_disclosure(country, region, who.role) if time_barred else None
    return {
        **_brand(who),
        "debt_collector_disclosure": collector_disclosure(
            who.role, country, language, initial=initial_communication
        ),
        "time_barred_disclosure": disclosure.text.format(sender=who.sender) if disclosure else "",
        "may_place_with_agency": may_place_with_agency,
        "may_refer_for_legal_action": may_refer_for_legal_action,
        "full_name": full_name,
        "first_name": first_name,
        "account_last4": account_ref[-4:],
        "amount_past_due": money(amount_past_due),
        "balance": money(balance),
        "currency": currency,
        "days_past_due": days_past_due,
        "address": address or "",
        **(loop or {}),
        "self_service_url": self_service_url,
    }


def render(
    template: str, language: str, channel: str, context: dict[str, Any], root: Path | None = None
) -> Rendered:
    """Render ``template`` for ``channel`` in ``language`` (falls back to English)."""
    env = sandbox(root)
    lang = language if (Path(env.loader.searchpath[0]) / language).is_dir() else "en"  # type: ignore[union-attr]
    text = with_disclosure(env.get_template(f"{lang}/{template}.txt").render(context).strip(), context)
    subject = None
    if channel == "email":
        subject, text = split_subject(text)
        html = env.get_template(f"{lang}/{template}.html").render(escape_context(context)).strip()
        return Rendered(subject, text, with_disclosure(html, context, html=True))
    return Rendered(subject, text, None)


def with_disclosure(text: str, context: dict[str, Any], *, html: bool = False) -> str:
    """``text`` with the context's time-barred disclosure: a state's disclosure is never left
    out, so a template that does not place ``{{ time_barred_disclosure }}`` gets it after its
    body (the template lint checks every message as this renders it)."""
    disclosure = str(context.get("time_barred_disclosure") or "")
    if not disclosure:
        return text
    if html:
        escaped = str(_escape(disclosure))
        return text if escaped in text else f"{text}\n<p>{escaped}</p>"
    return text if disclosure in text else f"{text}\n\n{disclosure}"


def split_subject(text: str) -> tuple[str | None, str]:
    """An email text's ``Subject:`` first line, if any, and the body after it."""
    first, _, rest = text.partition("\n")
    if first.startswith("Subject:"):
        return first.removeprefix("Subject:").strip(), rest.strip()
    return None, text


def escape_context(context: dict[str, Any]) -> dict[str, Any]:
    """The context for an HTML template: every string value HTML-escaped."""
    return {k: _escape(v) for k, v in context.items()}


def _escape(value: Any) -> Any:
    from markupsafe import escape

    return escape(value) if isinstance(value, str) else value
