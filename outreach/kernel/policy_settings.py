"""The compliance settings operations choose (config/policy.yaml): the user's role, which decides
the packs that apply, and the approved agencies. Validated at load; errors name the YAML path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from outreach import settings
from outreach.kernel.config_yaml import (
    ConfigError,
    ConfigFileError,
    read_config_file,
    validate_yaml,
)
from policies.model import ROLES


class PolicySettingsError(ConfigFileError):
    pass


class PolicyModel(BaseModel):
    """The file as written: every key known, nothing else accepted."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Literal[ROLES] = "collector"  # type: ignore[valid-type]
    # Names as in the agency configuration; China requires an approved list.
    approved_agencies: tuple[Annotated[str, Field(min_length=1, strict=True)], ...] | None = None
    # One contact per person per channel per day across their accounts
    # (core.household_one_per_day); false: each account is contacted on its own.
    householding: Annotated[bool, Field(strict=True)] = True


@dataclass(frozen=True)
class PolicySettings:
    role: str
    approved_agencies: frozenset[str]
    source: str
    householding: bool = True


def policy_path() -> Path:
    return Path(settings.POLICY.get(settings.config_dir() / "policy.yaml"))


def check_policy_text(text: str) -> tuple[PolicyModel | None, list[ConfigError]]:
    model, errors, _ = validate_yaml(text, PolicyModel)
    return model, errors


def parse_policy(text: str, source: str) -> PolicySettings:
    model, errors = check_policy_text(text)
    if model is None:
        raise PolicySettingsError(source, errors)
    return PolicySettings(
        role=model.role,
        approved_agencies=frozenset(model.approved_agencies or ()),
        source=source,
        householding=model.householding,
    )


def policy_settings() -> PolicySettings:
    """The settings in force (config/policy.yaml, or OUTREACH_POLICY); defaults when absent."""
    return read_config_file(policy_path(), parse_policy, lambda: PolicySettings(
        role="collector", approved_agencies=frozenset(), source="(defaults)"))
