"""The escalation ladder operations edit: schema, semantic checks with YAML paths, version hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contact_channels.base import CHANNEL_KINDS
from outreach import settings
from outreach.config_yaml import ConfigError, ConfigFileError, validate_yaml
from outreach.templates_lint import lint_template, max_sms_segments
from policies.model import PURPOSES

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


# What an action is for when the ladder does not say (policies.model.PURPOSES lists them all).
DEFAULT_PURPOSE = {"agency": "placement", "legal": "referral"}


class Action(_Strict):
    id: str = Identifier
    channel: Literal["sms", "email", "call", "letter", "agency", "legal"]
    template: str | None = Field(default=None, pattern=r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
    cadence: Cadence
    # The gates read these: which notice this is (a cease request still lets the permitted
    # notices through), how a call is placed (the TCPA covers autodialed and prerecorded calls),
    # and whom it addresses. Whether the message speaks of a suit is the template's own
    # declaration (outreach.messages.template_traits), never a ladder flag that can disagree.
    purpose: Literal[PURPOSES] | None = None  # type: ignore[valid-type]
    dialer: Literal["manual", "autodialed", "prerecorded"] = "manual"
    audience: Literal["debtor", "third_party"] = "debtor"

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
        self, days_past_due: int, balance: Decimal, segment: str | None, product: str
    ) -> Stage | None:
        """The first stage, in file order, whose entry conditions the account meets."""
        for stage in self.model.stages:
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


def _semantic_errors(
    model: LadderModel, templates: Path, max_segments: int
) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    # The template lint (outreach.templates_lint), once per (channel, template).
    linted: dict[tuple[str, str], list[str]] = {}
    seen_stages: dict[str, set[str]] = {}
    for si, stage in enumerate(model.stages):
        where = f"stages[{si}]"
        if stage.id in seen_stages:
            errors.append((f"{where}.id", f"duplicate stage id '{stage.id}'"))
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
                key = (action.channel, action.template)
                if key not in linted:
                    linted[key] = lint_template(
                        action.channel, action.template, LANGUAGES, suffixes,
                        root=templates, max_segments=max_segments,
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


def ladder_version(model: LadderModel) -> str:
    canonical = json.dumps(model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
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
