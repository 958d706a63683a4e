"""What a rule pack is, as data: its rules, whom it applies to, its dates; and the channel sets
and fallback zones the packs name.

A pack is one jurisdiction's (or the house's) rules, as data: each rule names its check (a pure
function in ``policies.checks``), its parameters, its channels, its citation and the dates it is
in force. The packs themselves live in ``policies.rulepacks``; which of them apply to an account
on a day is ``policies.packs``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

CONSUMER_CHANNELS = frozenset({"sms", "email", "call", "letter"})
TIMED_CHANNELS = frozenset({"sms", "email", "call"})
ELECTRONIC = frozenset({"sms", "email"})
CALL = frozenset({"call"})
ALL_CHANNELS = frozenset({"sms", "email", "call", "letter", "agency", "legal"})
LEGAL = frozenset({"legal"})

# Candidate zones when neither the address nor the destination tells: every zone the country's
# consumers may be in, so only hours allowed in all of them are used.
COUNTRY_FALLBACK_ZONES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "US": (
            "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
            "America/Anchorage", "Pacific/Honolulu",
        ),  # fmt: skip
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
    effective_from: dt.date | None = None  # None: as the pack
    effective_to: dt.date | None = None  # exclusive; None: open

    def in_force(self, day: dt.date) -> bool:
        return (self.effective_from is None or self.effective_from <= day) and (
            self.effective_to is None or day < self.effective_to
        )


@dataclass(frozen=True, slots=True)
class Applies:
    """Whom a pack covers; None in a field means no restriction on it."""

    countries: frozenset[str] | None = None
    regions: frozenset[str] | None = None  # ISO 3166-2 codes: "US-MA"
    cities: frozenset[str] | None = None  # case-folded city names, with regions
    products: frozenset[str] | None = None
    roles: frozenset[str] | None = None

    def covers(self, j: Jurisdiction) -> bool:
        return (
            (self.countries is None or j.country in self.countries)
            and (self.regions is None or self._covers_region(j))
            and (self.cities is None or (j.city or "") in self.cities)
            and (self.products is None or j.product in self.products)
            and (self.roles is None or j.role in self.roles)
        )


    def _covers_region(self, j: Jurisdiction) -> bool:
        """The account's region is one of the pack's; an account of the country whose region is
        not known is covered by every regional pack of its country (the strictest reading: its
        state could be any of them)."""
        assert self.regions is not None
        if j.region is None:
            return any(r.startswith(f"{j.country}-") for r in self.regions)
        return f"{j.country}-{j.region}" in self.regions


@dataclass(frozen=True, slots=True)
class LetterRequirement:
    """What a pack asks a letter of some purposes to say (not a gate: the letter medium adds
    the block, docs/compliance.md lists it)."""

    requirement_id: str
    what: str
    citation: str
    purposes: tuple[str, ...]  # the actions' purposes (policies.model.PURPOSES) it applies to


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    version: str
    title: str
    applies: Applies
    effective_from: dt.date
    rules: tuple[Rule, ...]
    effective_to: dt.date | None = None  # exclusive
    notes: tuple[str, ...] = ()  # obligations that are not contact gates (record keeping...)
    letter_requirements: tuple[LetterRequirement, ...] = ()

    def in_force(self, day: dt.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    """What decides which packs apply to an account."""

    country: str
    region: str | None
    city: str | None  # case-folded
    product: str
    role: str
