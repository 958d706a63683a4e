"""The compliance settings operations choose (config/policy.yaml): the user's role, which decides
the packs that apply, and the approved agencies. Validated at load; errors name the YAML path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from outreach import settings
from policies.model import ROLES


class PolicySettingsError(ValueError):
    pass


@dataclass(frozen=True)
class PolicySettings:
    role: str
    approved_agencies: frozenset[str]
    source: str


def policy_path() -> Path:
    return Path(os.environ.get("OUTREACH_POLICY", settings.config_dir() / "policy.yaml"))


def parse_policy(text: str, source: str) -> PolicySettings:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicySettingsError(f"{source}: not valid YAML: {exc}") from exc
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise PolicySettingsError(f"{source}: (top level): must be a mapping")
    unknown = sorted(set(data) - {"role", "approved_agencies"})
    if unknown:
        raise PolicySettingsError(f"{source}: {unknown[0]}: unknown setting")
    role = data.get("role", "collector")
    if role not in ROLES:
        raise PolicySettingsError(f"{source}: role: must be one of {', '.join(ROLES)}, not {role!r}")
    agencies = data.get("approved_agencies") or []
    if not isinstance(agencies, list) or not all(isinstance(a, str) and a for a in agencies):
        raise PolicySettingsError(f"{source}: approved_agencies: must be a list of agency names")
    return PolicySettings(role=role, approved_agencies=frozenset(agencies), source=source)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> PolicySettings:
    return parse_policy(Path(path).read_text(encoding="utf-8"), path)


def policy_settings() -> PolicySettings:
    """The settings in force (config/policy.yaml, or OUTREACH_POLICY); defaults when absent."""
    path = policy_path()
    if not path.is_file():
        return PolicySettings(role="collector", approved_agencies=frozenset(), source="(defaults)")
    return _load(str(path), path.stat().st_mtime_ns)
