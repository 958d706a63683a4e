"""The escalation ladder operations edit: schema, semantic checks with YAML paths, version hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import phonenumbers
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contact_channels.base import CHANNEL_KINDS
from outreach import settings
from outreach.kernel.config_yaml import ConfigError, ConfigFileError, validate_yaml
from outreach.kernel.zones import CN_PROVINCES, US_STATE_ZONES
from outreach.planning.templates_lint import lint_template, max_sms_segments
from policies.model import PURPOSES, ROLES

Identifier = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
LANGUAGES = ("en", "zh-CN")
# Channels whose messages are rendered from templates in every language.
TEMPLATED_CHANNELS = {"sms": (".txt",), "email": (".txt", ".html"), "letter": (".txt",)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cadence(_Strict):
    # strict: YAML's `true` is not a number of days (pydantic would take it as 1).
    every_days: int = Field(ge=1, le=365, strict=True)
    max_times: int = Field(ge=1, le=1000, strict=True)


# Country codes a ladder may name: those the importer accepts (ISO 3166-1 alpha-2).
KNOWN_COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)
# Subdivisions the importer knows by code (ISO 3166-2): a ladder's region there must be one.
KNOWN_REGIONS: dict[str, frozenset[str]] = {
    "US": frozenset(US_STATE_ZONES), "CN": CN_PROVINCES,
}


@dataclass(frozen=True, slots=True)
class Party:
    """What ``applies_to`` reads of an account: its jurisdiction and product, and the role the
    system collects in (policy settings)."""

    country: str
    region: str | None
    product: str
    role: str


class AppliesTo(_Strict):
    """Whom a stage or an action is for; a field left out does not restrict. Regions are
    ISO 3166-2 codes (``US-CA``, ``CN-SH``)."""

    countries: tuple[str, ...] | None = Field(default=None, min_length=1)
    regions: tuple[str, ...] | None = Field(default=None, min_length=1)
    products: tuple[Literal["credit_card", "consumer_loan"], ...] | None = Field(
        default=None, min_length=1
    )
    role: Literal[ROLES] | None = None  # type: ignore[valid-type]

    def why_not(self, party: Party) -> str | None:
        """Why this does not apply to ``party``, or None when it does."""
        if self.countries is not None and party.country not in self.countries:
            return f"country {party.country} is not in {', '.join(self.countries)}"
        if self.regions is not None:
            region = f"{party.country}-{(party.region or '').upper()}"
            if region not in self.regions:
                return f"region {region if party.region else 'none'} is not in {', '.join(self.regions)}"
        if self.products is not None and party.product not in self.products:
            return f"product {party.product} is not in {', '.join(self.products)}"
        if self.role is not None and party.role != self.role:
            return f"role {party.role} is not {self.role}"
        return None


# What an action is for when the ladder does not say (policies.model.PURPOSES lists them all).
DEFAULT_PURPOSE = {"agency": "placement", "legal": "referral"}


class Action(_Strict):
    id: str = Identifier
    channel: Literal[CHANNEL_KINDS]  # type: ignore[valid-type]
    template: str | None = Field(default=None, pattern=r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
    cadence: Cadence
    # The gates read these: which notice this is (a cease request still lets the permitted
    # notices through), how a call is placed (the TCPA covers autodialed and prerecorded calls),
    # and whom it addresses. Whether the message speaks of a suit is the template's own
    # declaration (outreach.planning.messages.template_traits), never a ladder flag that can disagree.
    purpose: Literal[PURPOSES] | None = None  # type: ignore[valid-type]
    dialer: Literal["manual", "autodialed", "prerecorded"] = "manual"
    audience: Literal["debtor", "third_party"] = "debtor"
    # Only for these accounts (a US validation notice for US collector accounts); others skip it.
    applies_to: AppliesTo | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_threat_flag(cls, data: Any) -> Any:
        if isinstance(data, dict) and "threatens_suit" in data:
            raise ValueError(
                "threatens_suit is not a ladder setting: the template declares it "
                "('{# outreach: threatens_suit #}' in its text, checked against what it says); "
                "remove the key"
            )
        return data

    @property
    def gate_purpose(self) -> str:
        return self.purpose or DEFAULT_PURPOSE.get(self.channel, "reminder")


class Entry(_Strict):
    dpd_min: int = Field(ge=1, strict=True)
    dpd_max: int | None = Field(default=None, ge=1, strict=True)
    min_balance: Decimal = Field(default=Decimal(0), ge=0)
    segment: str | None = None
    products: tuple[Literal["credit_card", "consumer_loan"], ...] | None = None


class Prerequisite(_Strict):
    stage: str
    action: str
    min_times: int = Field(default=1, ge=1, strict=True)


class Stage(_Strict):
    id: str = Identifier
    entry: Entry
    requires: tuple[Prerequisite, ...] = ()
    actions: tuple[Action, ...] = Field(min_length=1)
    # Only for these accounts: an account it does not apply to goes on to the next stage.
    applies_to: AppliesTo | None = None


class LadderModel(_Strict):
    name: str
    description: str | None = None
    stages: tuple[Stage, ...] = Field(min_length=1)


class LadderError(ConfigFileError):
    pass


@dataclass(frozen=True)
class Ladder:
    """A validated ladder and its version (a hash of its meaning, not of its comments)."""

    model: LadderModel
    version: str
    source: str

    @property
    def stages(self) -> tuple[Stage, ...]:
        return self.model.stages

    def stage_for(
        self, days_past_due: int, balance: Decimal, segment: str | None, product: str,
        party: Party | None = None,
    ) -> Stage | None:
        """The first stage, in file order, whose entry conditions the account meets (and, given
        the ``party``, that applies to it)."""
        for stage in self.model.stages:
            if party is not None and not_applicable(stage, None, party) is not None:
                continue
            e = stage.entry
            if days_past_due < e.dpd_min or (e.dpd_max is not None and days_past_due > e.dpd_max):
                continue
            if balance < e.min_balance:
                continue
            if e.segment is not None and segment != e.segment:
                continue
            if e.products is not None and product not in e.products:
                continue
            return stage
        return None


def not_applicable(stage: Stage, action: Action | None, party: Party) -> str | None:
    """Why the stage (or the action of it) does not apply to ``party``, or None."""
    for where, what in (("stage", stage), ("action", action)):
        if what is not None and what.applies_to is not None:
            why = what.applies_to.why_not(party)
            if why is not None:
                return f"{where} {what.id} applies_to: {why}"
    return None


def _applies_to_errors(applies: AppliesTo | None, where: str) -> list[tuple[str, str]]:
    """Unknown country codes and regions that are not in the country (or its ``countries``)."""
    if applies is None:
        return []
    errors: list[tuple[str, str]] = []
    for i, country in enumerate(applies.countries or ()):
        if country not in KNOWN_COUNTRIES:
            errors.append((f"{where}.countries[{i}]",
                           f"'{country}' is not an ISO 3166-1 alpha-2 country code (upper case)"))  # fmt: skip
    for i, region in enumerate(applies.regions or ()):
        country, _, code = region.partition("-")
        path = f"{where}.regions[{i}]"
        if not code or country not in KNOWN_COUNTRIES:
            errors.append((path, f"'{region}' is not an ISO 3166-2 code such as US-CA or CN-SH"))
        elif applies.countries is not None and country not in applies.countries:
            errors.append((path, f"region '{region}' is not in the countries listed "
                                 f"({', '.join(applies.countries)})"))  # fmt: skip
        elif country in KNOWN_REGIONS and code not in KNOWN_REGIONS[country]:
            errors.append((path, f"'{code}' is not a region of {country}"))
    return errors


def _semantic_errors(
    model: LadderModel, templates: Path, max_segments: int
) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    # The template lint (outreach.planning.templates_lint), once per (channel, template).
    linted: dict[tuple[str, str, bool], list[str]] = {}
    seen_stages: dict[str, set[str]] = {}
    for si, stage in enumerate(model.stages):
        where = f"stages[{si}]"
        if stage.id in seen_stages:
            errors.append((f"{where}.id", f"duplicate stage id '{stage.id}'"))
        errors.extend(_applies_to_errors(stage.applies_to, f"{where}.applies_to"))
        entry = stage.entry
        if entry.dpd_max is not None and entry.dpd_max < entry.dpd_min:
            errors.append((f"{where}.entry.dpd_max", "dpd_max is below dpd_min"))
        for pi, req in enumerate(stage.requires):
            if req.stage not in seen_stages:
                errors.append(
                    (f"{where}.requires[{pi}].stage", f"'{req.stage}' is not an earlier stage")
                )
            elif req.action not in seen_stages[req.stage]:
                errors.append(
                    (
                        f"{where}.requires[{pi}].action",
                        f"stage '{req.stage}' has no action '{req.action}'",
                    )
                )
        action_ids: set[str] = set()
        for ai, action in enumerate(stage.actions):
            awhere = f"{where}.actions[{ai}]"
            if action.id in action_ids:
                errors.append((f"{awhere}.id", f"duplicate action id '{action.id}' in stage"))
            action_ids.add(action.id)
            errors.extend(_applies_to_errors(action.applies_to, f"{awhere}.applies_to"))
            if action.dialer != "manual" and action.channel != "call":
                errors.append((f"{awhere}.dialer", "only a call action has a dialer"))
            if action.audience == "third_party" and action.gate_purpose != "locate":
                errors.append((f"{awhere}.purpose", "a third-party action must have purpose locate"))
            suffixes = TEMPLATED_CHANNELS.get(action.channel)
            if suffixes and action.template is None:
                errors.append((f"{awhere}.template", f"a {action.channel} action needs a template"))
            elif suffixes and action.template is not None:
                for lang in LANGUAGES:
                    for suffix in suffixes:
                        rel = f"{lang}/{action.template}{suffix}"
                        if not (templates / rel).is_file():
                            errors.append((f"{awhere}.template", f"template file {rel} not found"))
                reaches_us = all(
                    scope is None or scope.countries is None or "US" in scope.countries
                    for scope in (stage.applies_to, action.applies_to)
                )
                key = (action.channel, action.template, reaches_us)
                if key not in linted:
                    linted[key] = lint_template(
                        action.channel, action.template, LANGUAGES, suffixes,
                        root=templates, max_segments=max_segments, reaches_us=reaches_us,
                    )
                errors.extend((f"{awhere}.template", problem) for problem in linted[key])
        seen_stages[stage.id] = action_ids
    return errors


def check_ladder_text(
    text: str, templates: Path | None = None
) -> tuple[LadderModel | None, list[ConfigError]]:
    templates = templates or settings.templates_dir()
    model, errors, lines = validate_yaml(text, LadderModel)
    if model is None:
        return None, errors
    try:
        max_segments = max_sms_segments()
    except (ValueError, yaml.YAMLError) as exc:
        return None, [ConfigError("(channels.yaml)", str(exc))]
    errors = [
        ConfigError(path, msg, lines.get(path) or lines.get(path.rsplit(".", 1)[0]))
        for path, msg in _semantic_errors(model, templates, max_segments)
    ]
    return (model if not errors else None), errors


def _without_unset_applies_to(value: object) -> object:
    """The dump with every ``applies_to: null`` left out, so that a ladder that does not use
    it keeps the version it had before the key existed."""
    if isinstance(value, dict):
        return {k: _without_unset_applies_to(v) for k, v in value.items()
                if not (k == "applies_to" and v is None)}  # fmt: skip
    if isinstance(value, list):
        return [_without_unset_applies_to(v) for v in value]
    return value


def ladder_version(model: LadderModel) -> str:
    meaning = _without_unset_applies_to(model.model_dump(mode="json"))
    canonical = json.dumps(meaning, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def read_ladder_text(path: Path) -> str:
    """A ladder file's text; LadderError naming the file when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LadderError(
            str(path), [ConfigError("(file)", f"cannot read: {exc.strerror}")]
        ) from exc


def load_ladder(path: Path, templates: Path | None = None) -> Ladder:
    """Load and validate a ladder file; raise LadderError listing every problem."""
    model, errors = check_ladder_text(read_ladder_text(path), templates)
    if model is None:
        raise LadderError(str(path), errors)
    return Ladder(model=model, version=ladder_version(model), source=str(path))


assert set(TEMPLATED_CHANNELS) <= set(CHANNEL_KINDS)
