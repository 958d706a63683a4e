"""The escalation ladder operations edit: schema, semantic checks with YAML paths, version hash.

Stages may enter on the resolution loop's state (a promise, an arrangement, a hardship pause),
and ``resolution_actions`` are planned whatever the stage, each on a day its anchor gives (a
promise's or an instalment's due date, a missed instalment, the statement day, an open
verification): docs/ladder.md, docs/resolution.md "The ladder and the loop"."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import phonenumbers
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contact_channels.base import CHANNEL_KINDS
from outreach import settings
from outreach.kernel.config_yaml import ConfigError, ConfigFileError, located, validate_yaml
from outreach.kernel.facts import LOOP_STAGE, RESOLUTION_LOOKBACK, AccountRecord
from outreach.kernel.zones import CN_PROVINCES, US_STATE_ZONES
from outreach.measurement.score_config import score_config
from outreach.planning.templates_lint import lint_inputs, lint_template, max_sms_segments
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


PROMISE_STATES = ("open", "broken", "none")
ARRANGEMENT_STATES = (
    "offered", "pending_approval", "active", "missed", "broken", "completed", "cancelled", "none",
)  # fmt: skip
# Broken promises and ended arrangements are known this far back (outreach.kernel.facts).
LOOKBACK_DAYS = RESOLUTION_LOOKBACK.days


@dataclass(frozen=True, slots=True)
class LoopFacts:
    """What a stage's entry reads of the resolution loop on a day (``loop_facts``)."""

    promise: str  # open | broken | none (open wins over broken)
    broken_days_ago: int | None  # days since the latest broken promise
    arrangement: str  # ARRANGEMENT_STATES; missed: active with an instalment missed
    hardship: bool  # an active hardship hold


def loop_facts(account: AccountRecord, day: dt.date) -> LoopFacts:
    """The account's promise, arrangement and hardship state as the ladder's entry reads them."""
    broken_on = account.last_broken_promise_on
    ago = (day - broken_on).days if broken_on is not None else None
    promise = "open" if account.open_promise is not None else ("broken" if ago is not None else "none")
    a = account.arrangement
    if a is None:
        arrangement = "none"
    elif a.state == "active" and not a.kept:
        arrangement = "missed"
    else:
        arrangement = a.state
    return LoopFacts(promise, ago, arrangement, "hardship" in account.holds)


def _one_or_many(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


class LoopCondition(_Strict):
    """Conditions on the resolution loop; a field left out does not restrict. ``promise`` and
    ``arrangement`` take one state or a list of them."""

    promise: tuple[Literal[PROMISE_STATES], ...] | None = Field(default=None, min_length=1)  # type: ignore[valid-type]
    # The latest broken promise was broken at most this many days before the day.
    broken_promise_within_days: int | None = Field(
        default=None, ge=0, le=LOOKBACK_DAYS, strict=True
    )
    arrangement: tuple[Literal[ARRANGEMENT_STATES], ...] | None = Field(default=None, min_length=1)  # type: ignore[valid-type]
    hardship: bool | None = Field(default=None, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _listed(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {k: _one_or_many(v) if k in ("promise", "arrangement") else v
                for k, v in data.items()}  # fmt: skip

    def loop_why_not(self, facts: LoopFacts) -> str | None:
        """Why the loop's state does not meet this, or None when it does."""
        if self.promise is not None and facts.promise not in self.promise:
            return f"promise {facts.promise} is not {' or '.join(self.promise)}"
        within = self.broken_promise_within_days
        if within is not None and (facts.broken_days_ago is None or facts.broken_days_ago > within):
            return f"no promise broken within {within} days"
        if self.arrangement is not None and facts.arrangement not in self.arrangement:
            return f"arrangement {facts.arrangement} is not {' or '.join(self.arrangement)}"
        if self.hardship is not None and facts.hardship != self.hardship:
            return "a hardship pause is active" if facts.hardship else "no hardship pause"
        return None

    @property
    def reads_loop(self) -> bool:
        return any(v is not None for v in (self.promise, self.broken_promise_within_days,
                                           self.arrangement, self.hardship))  # fmt: skip


class Entry(LoopCondition):
    dpd_min: int = Field(ge=1, strict=True)
    dpd_max: int | None = Field(default=None, ge=1, strict=True)
    min_balance: Decimal = Field(default=Decimal(0), ge=0)
    segment: str | None = None
    products: tuple[Literal["credit_card", "consumer_loan"], ...] | None = None
    # At least one of these (each a set of loop conditions) is met as well.
    any_of: tuple[LoopCondition, ...] | None = Field(default=None, min_length=1)
    # The account's score band is one of these (config/score.yaml ``bands``; docs/score-bands.md).
    # An account with no band (no active model, not scored) does not enter such a stage.
    score_band: tuple[str, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _bands_listed(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("score_band"), str):
            return {**data, "score_band": (data["score_band"],)}
        return data

    def loop_why_not(self, facts: LoopFacts) -> str | None:
        why = super().loop_why_not(facts)
        if why is None and self.any_of is not None:
            reasons = [c.loop_why_not(facts) for c in self.any_of]
            if all(reasons):
                why = "none of any_of: " + "; ".join(r for r in reasons if r)
        return why

    @property
    def reads_loop(self) -> bool:
        return super().reads_loop or self.any_of is not None


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


ANCHORS = ("promise_due", "instalment_due", "instalment_missed", "statement", "verification_open")
# Per anchor: days before the anchor's date the action is due, and days after that it may still
# be planned while not yet sent (a notice retried past a day it could not go; None: as long as
# the anchor lasts, a verification while its task is open).
ANCHOR_DEFAULTS: dict[str, tuple[int, int | None]] = {
    "promise_due": (1, 0), "instalment_due": (1, 0), "instalment_missed": (0, 14),
    "statement": (0, 0), "verification_open": (0, None),
}  # fmt: skip
# The purpose a loop action must have for its anchor (the gate lets these through the pauses).
ANCHOR_PURPOSES = {
    "promise_due": ("promise_reminder",),
    "instalment_due": ("instalment_reminder",),
    "instalment_missed": ("missed_instalment_notice",),
    "statement": ("statement",),
    "verification_open": ("verification",),
}


class Anchor(_Strict):
    """What a loop action is tied to: ``to`` (ANCHORS), planned ``days_before`` its date and
    for ``within_days`` after that while not yet sent."""

    to: Literal[ANCHORS]  # type: ignore[valid-type]
    days_before: int | None = Field(default=None, ge=0, le=60, strict=True)
    within_days: int | None = Field(default=None, ge=0, le=60, strict=True)

    @property
    def lead(self) -> int:
        return self.days_before if self.days_before is not None else ANCHOR_DEFAULTS[self.to][0]

    @property
    def window(self) -> int | None:
        return self.within_days if self.within_days is not None else ANCHOR_DEFAULTS[self.to][1]


# The cadence a loop action carries for the code that reads every action's: each anchor is
# planned once (its slot), so the cadence does not limit it.
LOOP_CADENCE = Cadence(every_days=1, max_times=1000)


class LoopAction(Action):
    """An action of the resolution loop (``resolution_actions``): planned for any account whose
    anchor falls due, whatever its stage, once per anchor (the ledger slot is the anchor's)."""

    anchor: Anchor
    cadence: Cadence = LOOP_CADENCE

    @model_validator(mode="before")
    @classmethod
    def _no_cadence(cls, data: Any) -> Any:
        if isinstance(data, dict) and "cadence" in data:
            raise ValueError(
                "a resolution action has no cadence: its anchor says when (once per anchor)"
            )
        return data


class LadderModel(_Strict):
    name: str
    description: str | None = None
    stages: tuple[Stage, ...] = Field(min_length=1)
    # Planned whatever the stage (docs/ladder.md "Resolution actions").
    resolution_actions: tuple[LoopAction, ...] = ()


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

    @cached_property
    def loop_stage(self) -> Stage | None:
        """The resolution actions as the ledger files them: under the stage ``LOOP_STAGE``."""
        actions = self.model.resolution_actions
        if not actions:
            return None
        return Stage(id=LOOP_STAGE, entry=Entry(dpd_min=1), actions=actions)

    @cached_property
    def all_stages(self) -> tuple[Stage, ...]:
        """The stages and, when the ladder has resolution actions, their stage last."""
        loop = self.loop_stage
        return self.model.stages + ((loop,) if loop is not None else ())

    def stage_for(
        self, days_past_due: int, balance: Decimal, segment: str | None, product: str,
        party: Party | None = None, loop: LoopFacts | None = None,
        score_band: str | None = None,
    ) -> Stage | None:
        """The first stage, in file order, whose entry conditions the account meets (and, given
        the ``party``, that applies to it). Without ``loop``, a stage whose entry reads the
        resolution loop is not entered (a previous system's contacts, whose loop state then
        is not known); without ``score_band``, a stage whose entry names bands is not."""
        for stage in self.model.stages:
            if party is not None and not_applicable(stage, None, party) is not None:
                continue
            e = stage.entry
            if e.reads_loop and (loop is None or e.loop_why_not(loop) is not None):
                continue
            if days_past_due < e.dpd_min or (e.dpd_max is not None and days_past_due > e.dpd_max):
                continue
            if balance < e.min_balance:
                continue
            if e.segment is not None and segment != e.segment:
                continue
            if e.products is not None and product not in e.products:
                continue
            if e.score_band is not None and score_band not in e.score_band:
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
            errors.extend(_template_errors(action, stage.applies_to, awhere, templates,
                                           max_segments, linted))  # fmt: skip
        seen_stages[stage.id] = action_ids
    errors.extend(_loop_errors(model, templates, max_segments, linted))
    return errors


def _template_errors(
    action: Action, stage_scope: AppliesTo | None, awhere: str, templates: Path,
    max_segments: int, linted: dict[tuple[str, str, bool], list[str]],
) -> list[tuple[str, str]]:
    """The action's template: present in every language and part, and clean by the lint."""
    errors: list[tuple[str, str]] = []
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
            for scope in (stage_scope, action.applies_to)
        )
        key = (action.channel, action.template, reaches_us)
        if key not in linted:
            linted[key] = lint_template(
                action.channel, action.template, LANGUAGES, suffixes,
                root=templates, max_segments=max_segments, reaches_us=reaches_us,
            )
        errors.extend((f"{awhere}.template", problem) for problem in linted[key])
    return errors


def _loop_errors(
    model: LadderModel, templates: Path, max_segments: int,
    linted: dict[tuple[str, str, bool], list[str]],
) -> list[tuple[str, str]]:
    """The resolution actions: unique ids, a purpose that fits the anchor (the one the gate lets
    through the pauses), no days before an anchor that has none, their templates."""
    errors: list[tuple[str, str]] = []
    for si, stage in enumerate(model.stages):
        if stage.id == LOOP_STAGE:
            errors.append((f"stages[{si}].id",
                           f"'{LOOP_STAGE}' is the stage of the resolution actions in the ledger"))  # fmt: skip
    seen: set[str] = set()
    for ai, action in enumerate(model.resolution_actions):
        awhere = f"resolution_actions[{ai}]"
        if action.id in seen:
            errors.append((f"{awhere}.id", f"duplicate action id '{action.id}' in resolution_actions"))
        seen.add(action.id)
        errors.extend(_applies_to_errors(action.applies_to, f"{awhere}.applies_to"))
        anchor = action.anchor.to
        allowed = ANCHOR_PURPOSES[anchor]
        if action.purpose not in allowed:
            errors.append((f"{awhere}.purpose",
                           f"an action anchored on {anchor} needs purpose {' or '.join(allowed)}"))  # fmt: skip
        if action.anchor.days_before and anchor in ("instalment_missed", "verification_open"):
            errors.append((f"{awhere}.anchor.days_before",
                           f"{anchor} is known only once it happens: no days before it"))  # fmt: skip
        if action.dialer != "manual" and action.channel != "call":
            errors.append((f"{awhere}.dialer", "only a call action has a dialer"))
        if action.audience != "debtor":
            errors.append((f"{awhere}.audience", "a resolution action addresses the debtor"))
        errors.extend(_template_errors(action, None, awhere, templates, max_segments, linted))
    return errors


def check_ladder_text(
    text: str, templates: Path | None = None
) -> tuple[LadderModel | None, list[ConfigError]]:
    """The ladder model of ``text``, or every problem (YAML path and line). Every gate that
    loads the ladder in force checks it (each call claimed, each plan, each self-service
    answer): the same text with the same templates and settings gets the answer it got before
    (the model is frozen), without parsing and linting it again."""
    templates = templates or settings.templates_dir()
    try:
        segments: int | str = max_sms_segments()
    except (ValueError, yaml.YAMLError) as exc:
        segments = str(exc)
    # The score bands a stage may enter on (config/score.yaml): a change there is a new answer.
    try:
        bands: tuple[str, ...] | str = tuple(band.name for band in score_config().bands)
    except (ConfigFileError, OSError) as exc:
        bands = str(exc)
    key = (hashlib.sha256(text.encode()).hexdigest(), segments, bands, lint_inputs(templates))
    if key not in _CHECKED:
        if len(_CHECKED) >= 64:
            _CHECKED.clear()
        _CHECKED[key] = _check_ladder_text(text, templates, bands)
    model, errors = _CHECKED[key]
    return model, list(errors)


_CHECKED: dict[tuple[Any, ...], tuple[LadderModel | None, list[ConfigError]]] = {}


def _check_ladder_text(
    text: str, templates: Path, bands: tuple[str, ...] | str
) -> tuple[LadderModel | None, list[ConfigError]]:
    model, errors, lines = validate_yaml(text, LadderModel)
    if model is None:
        return None, errors
    try:
        max_segments = max_sms_segments()
    except (ValueError, yaml.YAMLError) as exc:
        return None, [ConfigError("(channels.yaml)", str(exc))]
    problems = _semantic_errors(model, templates, max_segments)
    if any(stage.entry.score_band is not None for stage in model.stages):
        if isinstance(bands, str):  # config/score.yaml does not validate: said once, there
            return None, [ConfigError("(score.yaml)", bands)]
        problems.extend(_band_errors(model, bands))
    errors = located(problems, lines)
    return (model if not errors else None), errors


def _band_errors(model: LadderModel, bands: tuple[str, ...]) -> list[tuple[str, str]]:
    """Score bands a stage's entry names that config/score.yaml does not define."""
    errors: list[tuple[str, str]] = []
    for si, stage in enumerate(model.stages):
        for bi, band in enumerate(stage.entry.score_band or ()):
            if band not in bands:
                errors.append((f"stages[{si}].entry.score_band[{bi}]",
                               f"'{band}' is not a score band of config/score.yaml "
                               f"({', '.join(bands)})"))  # fmt: skip
    return errors


# Keys added after ladders had versions: left out of the version while unset, so that a ladder
# that does not use them keeps the version it had before they existed.
LATER_KEYS = frozenset({"applies_to", "promise", "broken_promise_within_days", "arrangement",
                        "hardship", "any_of", "score_band"})  # fmt: skip


def _without_unset_applies_to(value: object) -> object:
    """The dump without the later keys left unset (LATER_KEYS, an empty resolution_actions)."""
    if isinstance(value, dict):
        return {k: _without_unset_applies_to(v) for k, v in value.items()
                if not (k in LATER_KEYS and v is None)
                and not (k == "resolution_actions" and not v)}  # fmt: skip
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
    # The model checked before is the same object (check_ladder_text keeps it): its version too.
    kept = _VERSIONS.get(id(model))
    if kept is None or kept[0] is not model:
        if len(_VERSIONS) >= 64:
            _VERSIONS.clear()
        kept = _VERSIONS[id(model)] = (model, ladder_version(model))
    return Ladder(model=model, version=kept[1], source=str(path))


_VERSIONS: dict[int, tuple[LadderModel, str]] = {}


assert set(TEMPLATED_CHANNELS) <= set(CHANNEL_KINDS)
