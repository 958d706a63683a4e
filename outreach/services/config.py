"""The whole configuration, validated once before a run acts: config/channels.yaml,
config/policy.yaml, config/agencies.yaml, config/arrangements.yaml, config/measurement.yaml, the
ladder in force and the ``OUTREACH_*`` environment.

``load_config()`` returns them as typed objects, or raises ``ConfigInvalid`` listing every
problem of every file at once, one ``file: yaml.path (line N): message`` a line. The entry
points (the DAG tasks through ``outreach.services.daily``, the CLI) call it before anything else, so a
broken section of any file stops the whole run, never after some channels have dispatched.
Each file is cached by its modification time; the ladder in force is read from the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from outreach import settings
from outreach.kernel import self_service_token
from outreach.kernel.channel_config import ChannelsConfig, channels_config, channels_path
from outreach.kernel.config_yaml import ConfigFileError, located, validate_yaml
from outreach.kernel.identity import identity_problems
from outreach.kernel.policy_settings import PolicySettings, policy_path, policy_settings
from outreach.kernel.self_service_token import SelfServiceSecretMissing
from outreach.measurement.experiments import experiments_path
from outreach.measurement.measurement_config import (
    MeasurementConfig,
    measurement_config,
    measurement_path,
)
from outreach.measurement.score_config import score_config, score_config_path
from outreach.media.agency.config import AgencyConfig, agency_config, agency_config_path
from outreach.planning.ladder import Ladder, load_ladder
from outreach.planning.ladder_versions import ladder_in_force
from outreach.resolution.policy import ResolutionPolicy, resolution_policy, score_band_paths
from outreach.resolution.policy import policy_path as resolution_policy_path
from outreach.services.experiments import check as experiment_problems
from policies.pack_model import Pack
from policies.packs import all_packs, validate_packs

ENVIRONMENT = "environment"


class ConfigInvalid(ValueError):
    """The configuration does not validate; ``errors`` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(
            f"the configuration is invalid ({len(errors)} error(s)); nothing was done:\n"
            + "\n".join(errors)
        )


@dataclass(frozen=True)
class Config:
    """Every setting a run reads, typed and validated together."""

    channels: ChannelsConfig
    policy: PolicySettings
    agencies: AgencyConfig
    ladder: Ladder
    resolution: ResolutionPolicy
    measurement: MeasurementConfig


# --- the environment ------------------------------------------------------------------------

# Every OUTREACH_* variable the project reads, with its check and what it must be: the knobs
# declared in ``outreach.settings.KNOBS``, in their order. A name not here is refused.
ENV_KNOBS: Mapping[str, tuple[Callable[[str], bool], str]] = MappingProxyType(
    {knob.name: (knob.check, knob.must_be) for knob in settings.KNOBS}
)
# The test harness's own switches (tests/), never read by the project.
ENV_IGNORED_PREFIXES = ("OUTREACH_TEST_", "OUTREACH_FAULT_")


def check_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """One ``environment: NAME: problem`` line per bad ``OUTREACH_*`` variable. Values are never
    quoted: a database URL holds a password, a name or address is personal data."""
    environ = os.environ if environ is None else environ
    errors: list[str] = []
    for name in sorted(n for n in environ if n.startswith("OUTREACH_")):
        if name.startswith(ENV_IGNORED_PREFIXES):
            continue
        knob = ENV_KNOBS.get(name)
        if knob is None:
            errors.append(
                f"{ENVIRONMENT}: {name}: unknown setting; known settings: {', '.join(ENV_KNOBS)}"
            )
        elif not knob[0](environ[name]):
            errors.append(f"{ENVIRONMENT}: {name}: must be {knob[1]}")
    return errors


# --- the files --------------------------------------------------------------------------------

T = TypeVar("T")


def _collect(read: Callable[[], T], errors: list[str]) -> T | None:
    """``read()``, or None with its problems added to ``errors``."""
    try:
        return read()
    except ConfigFileError as exc:
        errors.extend(exc.lines())
    except OSError as exc:
        errors.append(f"{getattr(exc, 'filename', None) or '(file)'}: cannot read: {exc.strerror}")
    except SQLAlchemyError as exc:
        # Only the class: the driver's text may carry the URL or bound parameters.
        errors.append(
            f"ladder in force: cannot read the approved versions from the database "
            f"({type(exc).__name__}); is it migrated (outreach db upgrade)?"
        )
    return None


def self_service_problems() -> list[str]:
    """With ``OUTREACH_SELF_SERVICE_BASE_URL`` set, messages carry a signed link: the key that
    signs it must be there before anything is sent (docs/self-service.md)."""
    if not settings.self_service_base_url():
        return []
    try:
        self_service_token.secret()
    except SelfServiceSecretMissing as exc:
        return [f"{ENVIRONMENT}: {settings.SELF_SERVICE_BASE_URL.name}: {exc}"]
    return []


def rule_pack_problems() -> list[str]:
    """What is wrong with the rule packs themselves (``policies.packs.validate_packs``)."""
    return validate_packs()


def rule_packs() -> list[Pack]:
    """Every rule pack, in force or not."""
    return list(all_packs())


def arrangement_band_problems(policy: ResolutionPolicy, bands: set[str]) -> list[str]:
    """Score bands config/arrangements.yaml names that config/score.yaml does not define, each
    with its YAML path and line."""
    unknown = [(where, name) for where, name in score_band_paths(policy) if name not in bands]
    if not unknown:
        return []
    path = resolution_policy_path()
    try:
        lines = validate_yaml(path.read_text(encoding="utf-8"), ResolutionPolicy)[2]
    except OSError:
        lines = {}
    listed = ", ".join(sorted(bands))
    problems = [(where, f"'{name}' is not a score band of config/score.yaml ({listed})")
                for where, name in unknown]  # fmt: skip
    return ConfigFileError(str(path), located(problems, lines)).lines()


def load_config(*, engine: Engine | None = None, ladder_file: Path | None = None) -> Config:
    """Validate the whole configuration and return it typed; ``ConfigInvalid`` with every
    problem of every file otherwise. The ladder is ``ladder_file`` when given, else the ladder in
    force (the approved version in ``engine``'s database, or the configured file)."""
    errors = check_environment()
    environment_ok = not errors
    channels = _collect(channels_config, errors)
    policy = _collect(policy_settings, errors)
    agencies = _collect(agency_config, errors)
    resolution = _collect(resolution_policy, errors)
    measurement = _collect(measurement_config, errors)
    score = _collect(score_config, errors)  # config/score.yaml: checked here, read where used
    if resolution is not None and score is not None:
        errors.extend(arrangement_band_problems(resolution, {b.name for b in score.bands}))
    ladder: Ladder | None = None
    if environment_ok:
        # With a bad environment the database or the ladder's path may be wrong too: those
        # errors come first, the ladder once they are fixed.
        ladder_errors: list[str] = []
        ladder = _collect(
            (lambda: load_ladder(ladder_file)) if ladder_file else
            (lambda: ladder_in_force(engine=engine)),
            ladder_errors,
        )  # fmt: skip
        # The ladder reads sms.max_segments from channels.yaml: its problems are said once.
        # So does config/score.yaml's bands, when a stage enters on one.
        errors.extend(e for e in ladder_errors
                      if "(channels.yaml)" not in e and "(score.yaml)" not in e)  # fmt: skip
    if policy is not None:
        # Who is writing (outreach.kernel.identity): nothing is sent in the name of nobody.
        errors.extend(identity_problems(policy.role))
    if environment_ok:
        errors.extend(self_service_problems())
        # config/experiments.yaml: its shape and shares, each arm's ladder validated like the
        # main ladder (outreach.services.experiments.check).
        errors.extend(experiment_problems(engine=engine))
    if (errors or channels is None or policy is None or agencies is None or ladder is None
            or resolution is None or measurement is None):
        raise ConfigInvalid(errors)
    return Config(channels=channels, policy=policy, agencies=agencies, ladder=ladder,
                  resolution=resolution, measurement=measurement)


def config_files(ladder_file: Path | None = None) -> list[Path]:
    """The files ``load_config`` reads, for ``outreach config check --all`` to name."""
    return [
        channels_path(),
        policy_path(),
        agency_config_path(),
        resolution_policy_path(),
        measurement_path(),
        score_config_path(),
        ladder_file or settings.ladder_path(),
        experiments_path(),
    ]
