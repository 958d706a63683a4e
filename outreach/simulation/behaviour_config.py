"""config/simulation.yaml: the parameters of the simulator's behavioural model (how hidden
ability and willingness to pay are drawn from a profile, how a consumer answers each contact,
keeps promises, pays instalments and cures by themselves). Validated like every file operations
write (outreach.kernel.config_yaml): each error names its YAML path and line.
docs/simulation-model.md explains every parameter and equation."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from outreach import settings
from outreach.kernel.config_yaml import (
    ConfigError,
    ConfigFileError,
    read_config_file,
    validate_yaml,
)
from outreach.resolution.policy import CAUSES, PRODUCTS

CHANNELS = ("sms", "email", "call", "letter", "agency", "legal")
SEGMENTS = ("prime", "near_prime", "subprime")
# Causes of hardship: lower ability, more hardship answers, offers accepted more readily.
HARDSHIP_CAUSES = ("job_loss", "illness", "over_indebtedness")

Probability = Field(ge=0, le=1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trait(_Strict):
    """One hidden trait on the logit scale: intercept plus the terms of the profile."""

    intercept: float
    dpd_per_30: float  # per 30 days past due at the start
    cause: dict[str, float] = {}  # by cause of delinquency; an unknown cause adds 0
    segment: dict[str, float] = {}
    product: dict[str, float] = {}
    country: dict[str, float] = {}  # by country code, or "CC-REGION" for one state/province


class Ability(Trait):
    # Per unit of ln(past due / monthly income): a debt large against the income is harder to pay.
    burden: float
    # The monthly income assumed when none was stated, per currency.
    reference_income: dict[str, Decimal]


class Hidden(_Strict):
    ability: Ability
    willingness: Trait
    # Standard deviation (logit scale) of the per-consumer term no observable explains, drawn
    # independently for ability and for willingness.
    hidden_noise_sd: float = Field(ge=0, le=3)
    # Shift of the logit of each channel's reach per unit of (willingness - 0.5).
    reach_willingness: float
    stop_base: float = Probability
    stop_unwillingness: float = Probability  # added times (1 - willingness)
    dispute_base: float = Probability
    dispute_cause: dict[str, float] = {}  # added per cause (fraud, disputes_debt)


class HourBand(_Strict):
    """Local hours [from_hour, to_hour): the channel's reach is multiplied by ``factor``."""

    from_hour: int = Field(ge=0, le=23)
    to_hour: int = Field(ge=1, le=24)
    factor: float = Field(ge=0, le=5)


class Channel(_Strict):
    reach: float = Probability  # reads (sms, email, letter) or answers (call, agency, legal)
    right_party: float = Probability  # of those who answer, the debtor (calls): 1 elsewhere
    effect: float = Field(ge=0, le=20)  # multiplies pay, promise and accept-offer
    stop: float = Field(ge=0, le=20)  # multiplies the stop propensity
    read_delay_days: tuple[int, int] = (0, 0)  # uniform, inclusive: letters are read later
    hours: tuple[HourBand, ...] = ()  # outside every band: factor 1


class Responses(_Strict):
    """Given a right-party read or answer: the probability of each outcome (before the effects)."""

    pay: float = Probability  # times effect * stage * ability * willingness
    promise: float = Probability  # times effect * stage * willingness
    accept_offer: float = Probability  # times effect * stage * willingness, only with an offer
    accept_hardship_bonus: float = Field(ge=0, le=10)  # accept * (1 + bonus) for hardship causes
    hardship_base: float = Probability
    hardship_cause: dict[str, float] = {}  # added per cause
    fatigue_per_contact: float = Field(ge=0, le=5)  # stop * (1 + this * recent contacts)
    max_total: float = Field(gt=0, le=1)  # outcome probabilities scaled down to this sum


class PartShare(_Strict):
    share: float = Field(gt=0, lt=1)
    weight: float = Probability


class Payment(_Strict):
    """What a payment pays, as a share of the amount owed or promised."""

    full_base: float = Probability
    full_ability: float = Probability  # P(full) = full_base + full_ability * ability (<= 1)
    part_shares: tuple[PartShare, ...] = Field(min_length=1)  # weights sum to 1


class Keeping(_Strict):
    """P(paid) = base + willingness * w + ability * a, at most 1."""

    base: float = Probability
    willingness: float = Probability
    ability: float = Probability
    pay_offset_days: tuple[int, int]  # the day paid, from the day due: uniform, inclusive


class Instalments(Keeping):
    # For p_true only (an offer accepted under the default treatment): the first instalment falls
    # due this many days after acceptance. In a simulation the arrangement policy decides.
    first_due_days: int = Field(ge=0, le=60)


class Promises(Keeping):
    delay_days: tuple[int, int]  # a promise falls due this many days after it is made
    amount_full_base: float = Probability  # promises the whole amount past due...
    amount_full_ability: float = Probability  # ... with this added per unit of ability


class SelfCure(_Strict):
    """Daily hazard of paying with no contact: (base + ability*willingness * aw) * cause factor."""

    base: float = Probability
    ability_willingness: float = Probability
    cause_factor: dict[str, float] = {}


class TreatmentContact(_Strict):
    channel: str
    per_week: float = Field(gt=0, le=7)
    local_hour: int | None = Field(default=None, ge=0, le=23)
    offer: bool = False
    stage: str | None = None


class SimParams(_Strict):
    horizon_days: int = Field(ge=1, le=365)
    hidden: Hidden
    channels: dict[str, Channel]
    stages: dict[str, float] = {}  # stage id -> multiplier on every channel's effect (else 1)
    responses: Responses
    payment: Payment
    promises: Promises
    instalments: Instalments
    self_cure: SelfCure
    # The contacts a consumer gets under the default treatment (p_true's definition).
    default_treatment: tuple[TreatmentContact, ...] = Field(min_length=1)

    @property
    def version(self) -> str:
        """A hash of the parameters' meaning (not the file's comments)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


class SimParamsError(ConfigFileError):
    pass


def _range_errors(where: str, pair: tuple[int, int], low: int | None = 0) -> list[tuple[str, str]]:
    if pair[1] < pair[0]:
        return [(where, "the second number is below the first")]
    if low is not None and pair[0] < low:
        return [(where, f"must not be below {low}")]
    return []


def _keys_errors(where: str, keys: object, allowed: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        (f"{where}.{key}", f"unknown; known: {', '.join(allowed)}")
        for key in keys  # type: ignore[attr-defined]
        if key not in allowed
    ]


def _semantic_errors(p: SimParams) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    for name, trait in (("ability", p.hidden.ability), ("willingness", p.hidden.willingness)):
        where = f"hidden.{name}"
        errors += _keys_errors(f"{where}.cause", trait.cause, CAUSES)
        errors += _keys_errors(f"{where}.segment", trait.segment, SEGMENTS)
        errors += _keys_errors(f"{where}.product", trait.product, PRODUCTS)
    for currency, amount in p.hidden.ability.reference_income.items():
        if amount <= 0:
            errors.append((f"hidden.ability.reference_income.{currency}", "must be more than 0"))
    errors += _keys_errors("hidden.dispute_cause", p.hidden.dispute_cause, CAUSES)
    errors += _keys_errors("responses.hardship_cause", p.responses.hardship_cause, CAUSES)
    errors += _keys_errors("self_cure.cause_factor", p.self_cure.cause_factor, CAUSES)
    for where, table in (("hidden.dispute_cause", p.hidden.dispute_cause),
                         ("responses.hardship_cause", p.responses.hardship_cause)):  # fmt: skip
        for key, value in table.items():
            if not 0 <= value <= 1:
                errors.append((f"{where}.{key}", "a probability is between 0 and 1"))
    for cause, factor in p.self_cure.cause_factor.items():
        if factor < 0:
            errors.append((f"self_cure.cause_factor.{cause}", "must not be negative"))
    errors += _keys_errors("channels", p.channels, CHANNELS)
    for channel in CHANNELS:
        if channel not in p.channels:
            errors.append(("channels", f"channel {channel} is missing"))
    for name, ch in p.channels.items():
        where = f"channels.{name}"
        errors += _range_errors(f"{where}.read_delay_days", ch.read_delay_days)
        covered: set[int] = set()
        for i, band in enumerate(ch.hours):
            hours = set(range(band.from_hour, band.to_hour))
            if band.to_hour <= band.from_hour:
                errors.append((f"{where}.hours[{i}].to_hour", "to_hour is not after from_hour"))
            elif hours & covered:
                errors.append((f"{where}.hours[{i}]", "overlaps an earlier band"))
            covered |= hours
    for stage, factor in p.stages.items():
        if factor < 0:
            errors.append((f"stages.{stage}", "must not be negative"))
    total = sum(part.weight for part in p.payment.part_shares)
    if abs(total - 1) > 1e-9:
        errors.append(("payment.part_shares", f"the weights sum to {total:g}, not 1"))
    errors += _range_errors("promises.delay_days", p.promises.delay_days, low=1)
    errors += _range_errors("promises.pay_offset_days", p.promises.pay_offset_days, low=None)
    errors += _range_errors("instalments.pay_offset_days", p.instalments.pay_offset_days, low=None)
    if p.promises.delay_days[0] + p.promises.pay_offset_days[0] < 1:
        errors.append(("promises.pay_offset_days", "a promise would be paid before it is made"))
    for i, contact in enumerate(p.default_treatment):
        if contact.channel not in CHANNELS:
            errors.append((f"default_treatment[{i}].channel",
                           f"unknown; known: {', '.join(CHANNELS)}"))  # fmt: skip
    return errors


def _line(lines: dict[str, int], path: str) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            return None
        path = path[:cut]
    return None


def check_params_text(text: str) -> tuple[SimParams | None, list[ConfigError]]:
    model, errors, lines = validate_yaml(text or "{}", SimParams)
    if model is None:  # a missing key has no line of its own: its mapping's line
        return None, [e if e.line else ConfigError(e.path, e.message, _line(lines, e.path))
                      for e in errors]  # fmt: skip
    errors = [ConfigError(path, msg, _line(lines, path)) for path, msg in _semantic_errors(model)]
    return (model if not errors else None), errors


def parse_params(text: str, source: str) -> SimParams:
    model, errors = check_params_text(text)
    if model is None:
        raise SimParamsError(source, errors)
    return model


PACKAGED = settings.PROJECT_ROOT / "config" / "simulation.yaml"


def params_path() -> Path:
    """The file the knob names, else the config directory's, else the project's own."""
    path = Path(settings.SIMULATION.get(settings.config_dir() / "simulation.yaml"))
    return path if path.is_file() else PACKAGED


def load_params(path: Path | str | None = None) -> SimParams:
    """The validated parameters (cached until the file changes); SimParamsError names the YAML
    path and line of each problem."""
    where = Path(path) if path is not None else params_path()

    def absent() -> SimParams:
        raise SimParamsError(str(where), [ConfigError("(file)", "no such file")])

    return read_config_file(where, parse_params, absent)
