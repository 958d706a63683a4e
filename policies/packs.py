"""Rule packs as data: each rule names its check, its parameters, its channels and its citation.

A pack applies to accounts of the countries it lists (``None``: every country). A rule may
supersede another pack's rule (Regulation F's hours replace the house default for US accounts).
The checks themselves are small pure functions in ``policies.gate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

CONSUMER_CHANNELS = frozenset({"sms", "email", "call", "letter"})
TIMED_CHANNELS = frozenset({"sms", "email", "call"})
CALL = frozenset({"call"})

# Candidate zones when neither the address nor the destination tells: every zone the country's
# consumers may be in, so only hours allowed in all of them are used.
COUNTRY_FALLBACK_ZONES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "US": ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"),
        "CN": ("Asia/Shanghai",),
        "GB": ("Europe/London",),
    }
)


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    check: str
    citation: str
    channels: frozenset[str] | None = None  # None: every channel
    params: Mapping[str, Any] = field(default_factory=dict)
    supersedes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    version: str
    countries: frozenset[str] | None
    rules: tuple[Rule, ...]


CORE = Pack(
    name="core",
    version="2026.11.0",
    countries=None,
    rules=(
        Rule(
            "core.not_delinquent",
            "not_delinquent",
            "House rule: no collection contact once nothing is past due.",
        ),
        Rule(
            "core.cease_communication",
            "hold",
            "US: 12 CFR 1006.6(c); 15 U.S.C. 1692c(c)",
            CONSUMER_CHANNELS,
            {"hold": "cease_communication"},
        ),
        Rule(
            "core.dispute_open",
            "hold",
            "US: 12 CFR 1006.38(d)(2); 15 U.S.C. 1692g(b)",
            None,
            {"hold": "dispute"},
        ),
        Rule(
            "core.bankruptcy",
            "hold",
            "US: 11 U.S.C. 362(a) (automatic stay)",
            None,
            {"hold": "bankruptcy"},
        ),
        Rule(
            "core.deceased",
            "hold",
            "US: 12 CFR 1006.2(e), 1006.6(a)(4)",
            CONSUMER_CHANNELS,
            {"hold": "deceased"},
        ),
        Rule(
            "core.attorney_represented",
            "hold",
            "US: 12 CFR 1006.6(b)(2)",
            CONSUMER_CHANNELS,
            {"hold": "attorney"},
        ),
        Rule(
            "core.opted_out",
            "opted_out",
            "US: 12 CFR 1006.6(e); 47 U.S.C. 227 (TCPA)",
            CONSUMER_CHANNELS,
        ),
        Rule(
            "core.no_destination",
            "destination",
            "House rule: a valid destination is needed.",
            CONSUMER_CHANNELS,
        ),
        Rule(
            "core.quiet_hours",
            "hours",
            "House default contact hours.",
            TIMED_CHANNELS,
            {"start_hour": 8, "end_hour": 21},
        ),
        Rule(
            "core.call_frequency_7in7",
            "call_cap",
            "House default call frequency.",
            CALL,
            {"max_attempts": 7, "days": 7, "not_counted": ("busy", "not_in_service")},
        ),
        Rule(
            "core.call_after_conversation",
            "after_conversation",
            "House default pause after a conversation.",
            CALL,
            {"days": 7},
        ),
    ),
)

US_REG_F = Pack(
    name="us_reg_f",
    version="2021.11.30",
    countries=frozenset({"US"}),
    rules=(
        Rule(
            "us_reg_f.inconvenient_time",
            "hours",
            "12 CFR 1006.6(b)(1)(i); 15 U.S.C. 1692c(a)(1)",
            TIMED_CHANNELS,
            {"start_hour": 8, "end_hour": 21},
            supersedes=("core.quiet_hours",),
        ),
        Rule(
            "us_reg_f.call_frequency_7in7",
            "call_cap",
            "12 CFR 1006.14(b)(2)(i)",
            CALL,
            {"max_attempts": 7, "days": 7, "not_counted": ("busy", "not_in_service")},
            supersedes=("core.call_frequency_7in7",),
        ),
        Rule(
            "us_reg_f.call_after_conversation",
            "after_conversation",
            "12 CFR 1006.14(b)(2)(ii)",
            CALL,
            {"days": 7},
            supersedes=("core.call_after_conversation",),
        ),
    ),
)

PACKS: tuple[Pack, ...] = (CORE, US_REG_F)


@lru_cache(maxsize=1024)
def packs_for(country: str) -> tuple[Pack, ...]:
    return tuple(p for p in PACKS if p.countries is None or country in p.countries)


@lru_cache(maxsize=1024)
def pack_versions(country: str) -> str:
    return ",".join(f"{p.name}@{p.version}" for p in packs_for(country))


@lru_cache(maxsize=4096)
def rules_for(country: str, channel: str) -> tuple[tuple[Rule, str], ...]:
    """The rules in force for one country and channel, each with its pack's version."""
    packs = packs_for(country)
    superseded = {s for p in packs for r in p.rules for s in r.supersedes}
    return tuple(
        (r, f"{p.name}@{p.version}")
        for p in packs
        for r in p.rules
        if r.rule_id not in superseded and (r.channels is None or channel in r.channels)
    )


def validate_packs(packs: tuple[Pack, ...] = PACKS) -> list[str]:
    """Problems with the pack data (unknown checks, duplicate ids, bad parameters)."""
    from policies.gate import CHECKS

    problems: list[str] = []
    seen: set[str] = set()
    for pack in packs:
        for rule in pack.rules:
            if rule.rule_id in seen:
                problems.append(f"{rule.rule_id}: duplicate rule id")
            seen.add(rule.rule_id)
            if not rule.rule_id.startswith(pack.name + "."):
                problems.append(f"{rule.rule_id}: id must start with '{pack.name}.'")
            if rule.check not in CHECKS:
                problems.append(f"{rule.rule_id}: unknown check '{rule.check}'")
            if rule.check == "hours":
                start, end = rule.params.get("start_hour"), rule.params.get("end_hour")
                if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= 24):
                    problems.append(f"{rule.rule_id}: hours need 0 <= start_hour < end_hour <= 24")
    return problems


class PackError(ValueError):
    pass


def assert_valid(packs: tuple[Pack, ...] = PACKS) -> None:
    """Refuse to plan or send with a broken pack: called before every run."""
    problems = validate_packs(packs)
    if problems:
        raise PackError("rule packs are invalid:\n" + "\n".join(problems))
