"""Who is writing: the creditor, the debt collector, the mailing address, phone and payment page
every letter, SMS and email names, and the debt-collector disclosures they carry.

Nothing has a default: a message that named a placeholder company, a 555 number and a PO box
that receives no mail would mislead the consumer and send their disputes nowhere. The settings
come from the environment (``OUTREACH_CREDITOR_NAME``, ``OUTREACH_COLLECTOR_NAME``,
``OUTREACH_COLLECTOR_ADDRESS``, ``OUTREACH_SERVICE_PHONE``, ``OUTREACH_PAY_URL``);
``outreach.services.config.load_config`` (so ``outreach config check --all``) names the missing ones and
the dispatcher refuses to start without them. ``make demo`` sets its own, marked as the demo's.

Disclosures (12 CFR 1006.18(e)): a third-party debt collector (role ``collector``) writing to a
US consumer says in its initial communication that it is a debt collector attempting to collect
a debt and that any information obtained will be used for that purpose ((e)(1)), and in every
later communication that the communication is from a debt collector ((e)(2)). A first-party
creditor (role ``creditor``) is not a debt collector under Regulation F and says neither.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from policies.model import COLLECTOR

CREDITOR_NAME = "OUTREACH_CREDITOR_NAME"
COLLECTOR_NAME = "OUTREACH_COLLECTOR_NAME"
MAILING_ADDRESS = "OUTREACH_COLLECTOR_ADDRESS"
SERVICE_PHONE = "OUTREACH_SERVICE_PHONE"
PAY_URL = "OUTREACH_PAY_URL"
# Optional: the names in Chinese, for letters and messages in Chinese, and the domestic number
# a consumer in China is given (each falls back to the setting above when unset).
CREDITOR_NAME_ZH = "OUTREACH_CREDITOR_NAME_ZH"
COLLECTOR_NAME_ZH = "OUTREACH_COLLECTOR_NAME_ZH"
CN_SERVICE_PHONE = "OUTREACH_CN_SERVICE_PHONE"

# What each setting is, for the error that says it is missing.
IDENTITY_KNOBS: Mapping[str, str] = {
    CREDITOR_NAME: "the creditor's name",
    COLLECTOR_NAME: "the debt collector's name",
    MAILING_ADDRESS: "the mailing address letters print and disputes are sent to, lines "
    "separated by '|'",
    SERVICE_PHONE: "the phone number consumers call",
    PAY_URL: "the payment page",
}

# 12 CFR 1006.18(e)(1) and (e)(2), per language. The Chinese wording is the project's
# translation (to confirm with counsel), for US consumers whose language is Chinese.
DISCLOSURE_INITIAL = {
    "en": "This is from a debt collector attempting to collect a debt. Any information "
    "obtained will be used for that purpose.",
    "zh-CN": "本信息来自债务催收方，旨在催收债务，所获取的任何信息都将用于该目的。",
}
DISCLOSURE_LATER = {
    "en": "This is a communication from a debt collector.",
    "zh-CN": "本信息来自债务催收方。",
}
# What the template lint looks for in a rendered text (a validation notice's own wording,
# "We are a debt collector ... any information you give us", passes too).
DISCLOSURE_PATTERNS = {
    "en": (re.compile(r"\bdebt collector\b", re.IGNORECASE),
           re.compile(r"\binformation\b.*\bused for that purpose\b|\binformation you give us\b",
                      re.IGNORECASE | re.DOTALL)),
    "zh-CN": (re.compile("债务催收方"), re.compile("任何信息都将用于")),
}  # fmt: skip


# The identity of ``make demo`` and of the benchmark stacks (scripts/demo.py,
# scripts/celery_stack.py, bench/dispatch.py), marked as the demo's in every field and reserved
# (``.invalid``, a 000 exchange): never a real firm, box or number. Nothing else reads it.
DEMO_IDENTITY: Mapping[str, str] = {
    CREDITOR_NAME: "Demo Creditor (demo only)",
    COLLECTOR_NAME: "Demo Collector (demo only)",
    MAILING_ADDRESS: "Demo address, not for mail|demo.invalid",
    SERVICE_PHONE: "+1 800 000 0000 (demo)",
    PAY_URL: "https://pay.demo.invalid",
    CREDITOR_NAME_ZH: "演示债权人（仅供演示）",
    COLLECTOR_NAME_ZH: "演示催收方（仅供演示）",
    CN_SERVICE_PHONE: "400-000-0000（演示）",
}


def demo_identity(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The demo's identity, each setting the environment already has kept."""
    environ = os.environ if environ is None else environ
    return {name: environ.get(name) or value for name, value in DEMO_IDENTITY.items()}


class IdentityMissing(RuntimeError):
    """The identity settings a message needs are not configured, or cannot be right."""

    def __init__(self, missing: list[str], problems: Mapping[str, str] | None = None) -> None:
        self.missing = missing
        problems = problems or {}
        super().__init__(
            "who is writing is not configured: set "
            + ", ".join(f"{name} ({problems.get(name) or IDENTITY_KNOBS[name]})" for name in missing)
            + " (README.md, Configuration)"
        )


@dataclass(frozen=True, slots=True)
class Identity:
    """The configured writer: for role ``collector``, the collector writes about the creditor's
    debt; for role ``creditor``, the creditor writes about its own."""

    role: str
    creditor: str
    collector: str | None
    address_lines: tuple[str, ...]
    phone: str
    pay_url: str

    creditor_zh: str | None = None
    collector_zh: str | None = None
    cn_phone: str | None = None

    def localized(self, language: str | None, country: str | None) -> Identity:
        """As a message in ``language`` to a consumer in ``country`` names it: the Chinese names
        in Chinese (when configured), the domestic number for a consumer in China."""
        zh = bool(language and language.lower().startswith("zh"))
        return replace(
            self,
            creditor=(self.creditor_zh or self.creditor) if zh else self.creditor,
            collector=(self.collector_zh or self.collector) if zh else self.collector,
            phone=(self.cn_phone or self.phone) if country == "CN" else self.phone,
        )

    @property
    def sender(self) -> str:
        """The name that signs and heads every message: the collector's when one writes."""
        return self.collector if self.role == COLLECTOR and self.collector else self.creditor


def required(role: str) -> tuple[str, ...]:
    """The settings ``role`` needs."""
    names = [CREDITOR_NAME, MAILING_ADDRESS, SERVICE_PHONE, PAY_URL]
    if role == COLLECTOR:
        names.insert(1, COLLECTOR_NAME)
    return tuple(names)


def _value_problem(name: str, value: str) -> str | None:
    """Why a set value cannot be right (never quoting it), or None."""
    if name == MAILING_ADDRESS and len([x for x in value.split("|") if x.strip()]) < 2:
        return "a mailing address needs at least two lines (street or box, then city), " \
            "separated by '|'"
    if name == SERVICE_PHONE and sum(ch.isdigit() for ch in value) < 7:
        return "a phone number needs at least 7 digits"
    return None


def setting_problems(role: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings ``role`` needs that are unset, blank or cannot be right, each with why."""
    environ = os.environ if environ is None else environ
    problems: dict[str, str] = {}
    for name in required(role):
        value = (environ.get(name) or "").strip()
        if not value:
            problems[name] = f"not set: {IDENTITY_KNOBS[name]}, required for role {role}"
        elif (why := _value_problem(name, value)) is not None:
            problems[name] = why
    return problems


def missing_settings(role: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The names of the settings ``role`` needs that are unset, blank or cannot be right."""
    return list(setting_problems(role, environ))


def identity_problems(role: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """One ``identity: NAME: ...`` line per setting missing or wrong, for ``load_config``."""
    return [f"identity: {name}: {why}" for name, why in setting_problems(role, environ).items()]


def identity(role: str, environ: Mapping[str, str] | None = None) -> Identity:
    """The configured identity for ``role``; ``IdentityMissing`` naming what is not set."""
    environ = os.environ if environ is None else environ
    problems = setting_problems(role, environ)
    if problems:
        raise IdentityMissing(list(problems), problems)
    address = environ[MAILING_ADDRESS]
    collector = (environ.get(COLLECTOR_NAME) or "").strip() or None
    return Identity(
        role=role,
        creditor=environ[CREDITOR_NAME].strip(),
        collector=collector,
        address_lines=tuple(line.strip() for line in address.split("|") if line.strip()),
        phone=environ[SERVICE_PHONE].strip(),
        pay_url=environ[PAY_URL].strip(),
        creditor_zh=(environ.get(CREDITOR_NAME_ZH) or "").strip() or None,
        collector_zh=(environ.get(COLLECTOR_NAME_ZH) or "").strip() or None,
        cn_phone=(environ.get(CN_SERVICE_PHONE) or "").strip() or None,
    )


def collector_disclosure(role: str, country: str, language: str, *, initial: bool) -> str:
    """The 1006.18(e) disclosure a message carries: (e)(1) in the initial communication, (e)(2)
    after it; empty for a creditor, or for a consumer outside the US (Regulation F)."""
    if role != COLLECTOR or country != "US":
        return ""
    table = DISCLOSURE_INITIAL if initial else DISCLOSURE_LATER
    return table.get(language, table["en"])
