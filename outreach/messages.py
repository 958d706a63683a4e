"""Rendering what a contact says, from templates operations write, in a sandboxed Jinja2."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from outreach import settings


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


def brand(language: str | None = None) -> dict[str, str]:
    """The creditor's name, payment page and phone; in Chinese (``language`` zh-*), the
    creditor's Chinese name (``OUTREACH_CREDITOR_NAME_ZH``) when set, else the demo's Chinese
    name when no name is configured at all, else the configured name as it is."""
    creditor = os.environ.get("OUTREACH_CREDITOR_NAME")
    if language and language.lower().startswith("zh"):
        creditor = os.environ.get("OUTREACH_CREDITOR_NAME_ZH") or creditor or "示例银行"
    return {
        "creditor": creditor or "Example Bank",
        "pay_url": os.environ.get("OUTREACH_PAY_URL", "https://pay.example.com"),
        "phone": os.environ.get("OUTREACH_SERVICE_PHONE", "+1 800 555 0100"),
    }


def cn_service_phone() -> str:
    """The domestic (China) contact number Chinese collection letters give
    (``OUTREACH_CN_SERVICE_PHONE``; the demo's placeholder otherwise)."""
    return os.environ.get("OUTREACH_CN_SERVICE_PHONE", "400-000-0000")


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
    country: str | None = None,
) -> dict[str, Any]:
    first_name = full_name if language.startswith("zh") else full_name.split(" ")[0]
    identity = brand(language)
    if country == "CN":  # a consumer in China is given a domestic number
        identity["phone"] = cn_service_phone()
    return {
        **identity,
        "full_name": full_name,
        "first_name": first_name,
        "account_last4": account_ref[-4:],
        "amount_past_due": money(amount_past_due),
        "balance": money(balance),
        "currency": currency,
        "days_past_due": days_past_due,
        "address": address or "",
    }


def render(
    template: str, language: str, channel: str, context: dict[str, Any], root: Path | None = None
) -> Rendered:
    """Render ``template`` for ``channel`` in ``language`` (falls back to English)."""
    env = sandbox(root)
    lang = language if (Path(env.loader.searchpath[0]) / language).is_dir() else "en"  # type: ignore[union-attr]
    text = env.get_template(f"{lang}/{template}.txt").render(context).strip()
    subject = None
    if channel == "email":
        subject, text = split_subject(text)
        html = env.get_template(f"{lang}/{template}.html").render(escape_context(context)).strip()
        return Rendered(subject, text, html)
    return Rendered(subject, text, None)


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
