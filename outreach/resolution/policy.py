"""config/arrangements.yaml: the resolution loop's policy. Promise limits and grace, the
arrangement offer bands (minimum instalment, maximum term per product and jurisdiction,
settlement discounts by days past due and balance, which need a second person's approval),
missed-instalment handling and re-aging, the hardship pause, the self-service page's links.
Validated like every file operations write (outreach.kernel.config_yaml): each error names its
YAML path and line. docs/resolution.md explains each setting."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from outreach import settings
from outreach.kernel.config_yaml import (
    ConfigError,
    ConfigFileError,
    located,
    read_config_file,
    validate_yaml,
)

CAUSES = (
    "job_loss", "illness", "over_indebtedness", "forgot", "disputes_debt", "fraud", "unwilling",
    "other",
)  # fmt: skip
PRODUCTS = ("credit_card", "consumer_loan")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokenLimit(_Strict):
    # After ``broken`` promises broken within ``within_days``, a new promise is recorded but no
    # longer pauses collection, for ``no_pause_days`` from the last broken one.
    broken: int = Field(default=2, ge=1)
    within_days: int = Field(default=180, ge=1)
    no_pause_days: int = Field(default=60, ge=1)


class FollowUp(_Strict):
    # A broken promise: an agent call within ``within_days``, ahead of the queue by ``priority``.
    within_days: int = Field(default=1, ge=0)
    priority: int = Field(default=500, ge=0)


class Promises(_Strict):
    grace_days: int = Field(default=3, ge=0, le=30)
    max_open: int = Field(default=1, ge=1)
    max_days_ahead: int = Field(default=30, ge=1, le=365)  # how far out a promise may fall due
    broken_limit: BrokenLimit = BrokenLimit()
    follow_up: FollowUp = FollowUp()


class TermLimit(_Strict):
    """The longest instalment plan for a product in a jurisdiction; the most specific entry wins
    (country and product, then country, then product, then neither)."""

    months: int = Field(ge=1, le=120)
    product: str | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    # Only for accounts in this score band (config/score.yaml; docs/score-bands.md): the most
    # specific entry still wins, a band counting more than a country and a product.
    score_band: str | None = None

    @model_validator(mode="after")
    def _product(self) -> TermLimit:
        if self.product is not None and self.product not in PRODUCTS:
            raise ValueError(f"product must be one of {', '.join(PRODUCTS)}")
        return self


class Instalments(_Strict):
    # The smallest instalment, per currency; an offer never asks less.
    min_instalment: dict[str, Decimal] = Field(default_factory=lambda: {"USD": Decimal(25)})
    # Terms offered, in months (each capped by max_term).
    terms: tuple[int, ...] = (3, 6, 12, 24, 36, 60)
    max_term: tuple[TermLimit, ...] = (TermLimit(months=12),)
    # Share of stated disposable income (income minus expenses) an instalment may take.
    affordability_share: Decimal = Field(default=Decimal("0.5"), gt=0, le=1)
    # Plans longer than this need a second person's approval (None: none do).
    approval_over_months: int | None = Field(default=None, ge=1)


class SettlementBand(_Strict):
    """A settlement: pay ``1 - discount`` of the balance within ``pay_within_days``, for accounts
    with days past due and balance in the band (min inclusive, max exclusive)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    dpd_min: int = Field(ge=1)
    dpd_max: int | None = Field(default=None, ge=1)
    min_balance: Decimal = Field(default=Decimal(0), ge=0)
    max_balance: Decimal | None = Field(default=None, gt=0)
    discount: Decimal = Field(ge=0, lt=1)
    pay_within_days: int = Field(default=30, ge=1, le=365)
    needs_approval: bool = False
    countries: tuple[str, ...] | None = None
    # Only for accounts in one of these score bands (None: whatever the band, or none).
    score_bands: tuple[str, ...] | None = Field(default=None, min_length=1)


class Arrangements(_Strict):
    first_due_in_days: int = Field(default=7, ge=0, le=60)  # from acceptance
    grace_days: int = Field(default=5, ge=0, le=60)  # an instalment is missed after these
    missed_to_break: int = Field(default=2, ge=1)  # missed instalments that break the plan
    # Re-aging: after this many consecutive kept instalments the account's arrears are brought
    # current (off when absent; docs/resolution.md).
    reage_after_kept: int | None = Field(default=None, ge=1)
    offer_valid_days: int = Field(default=14, ge=1)
    instalments: Instalments = Instalments()
    settlements: tuple[SettlementBand, ...] = ()


class Hardship(_Strict):
    pause_days: int = Field(default=30, ge=1, le=365)  # automated collection pauses this long


class SelfService(_Strict):
    link_valid_days: int = Field(default=14, ge=1, le=90)
    # Where "pay now" hands off (the creditor's own payment page; no card data here).
    payment_url: str | None = Field(default=None, pattern=r"^https://")
    requests_per_minute: int = Field(default=20, ge=1)


class ResolutionPolicy(_Strict):
    promises: Promises = Promises()
    arrangements: Arrangements = Arrangements()
    hardship: Hardship = Hardship()
    self_service: SelfService = SelfService()
    # Where the day's arrangement file goes for the system of record (file://, s3://...):
    # default data/drop/arrangements.
    export_drop: str | None = None

    @property
    def version(self) -> str:
        """A hash of the policy's meaning (not its comments): offers record it."""
        blob = json.dumps(_without_unset(self.model_dump(mode="json")), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def max_term(self, product: str, country: str, score_band: str | None = None) -> int:
        """The longest plan for ``product`` in ``country`` for an account in ``score_band``:
        the most specific entry."""
        best: tuple[int, int] | None = None
        for limit in self.arrangements.instalments.max_term:
            if limit.product not in (None, product) or limit.country not in (None, country):
                continue
            if limit.score_band is not None and limit.score_band != score_band:
                continue
            rank = ((limit.score_band is not None) * 4 + (limit.country is not None) * 2
                    + (limit.product is not None))  # fmt: skip
            if best is None or rank > best[0]:
                best = (rank, limit.months)
        return best[1] if best else 12


# Keys added after policies had versions: left out of the version while unset, so that a policy
# that does not use them keeps the version its offers recorded.
LATER_KEYS = frozenset({"score_band", "score_bands"})


def _without_unset(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_unset(v) for k, v in value.items()
                if not (k in LATER_KEYS and v is None)}  # fmt: skip
    if isinstance(value, list):
        return [_without_unset(v) for v in value]
    return value


def score_band_paths(model: ResolutionPolicy) -> list[tuple[str, str]]:
    """Every score band the policy names, with its YAML path (checked against config/score.yaml
    with the whole configuration: outreach.services.config)."""
    out: list[tuple[str, str]] = []
    for i, limit in enumerate(model.arrangements.instalments.max_term):
        if limit.score_band is not None:
            out.append((f"arrangements.instalments.max_term[{i}].score_band", limit.score_band))
    for i, band in enumerate(model.arrangements.settlements):
        for j, name in enumerate(band.score_bands or ()):
            out.append((f"arrangements.settlements[{i}].score_bands[{j}]", name))
    return out


class ResolutionPolicyError(ConfigFileError):
    pass


def _semantic_errors(model: ResolutionPolicy) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    inst = model.arrangements.instalments
    for i, term in enumerate(inst.terms):
        if term < 1:
            errors.append((f"arrangements.instalments.terms[{i}]", "a term is at least 1 month"))
    for currency, amount in inst.min_instalment.items():
        if len(currency) != 3 or not currency.isupper():
            errors.append((f"arrangements.instalments.min_instalment.{currency}",
                           "not an ISO 4217 currency code"))  # fmt: skip
        elif amount <= 0:
            errors.append((f"arrangements.instalments.min_instalment.{currency}",
                           "must be more than 0"))  # fmt: skip
    seen: set[str] = set()
    for i, band in enumerate(model.arrangements.settlements):
        where = f"arrangements.settlements[{i}]"
        if band.id in seen:
            errors.append((f"{where}.id", f"'{band.id}' appears twice"))
        seen.add(band.id)
        if band.dpd_max is not None and band.dpd_max < band.dpd_min:
            errors.append((f"{where}.dpd_max", "dpd_max is below dpd_min"))
        if band.max_balance is not None and band.max_balance <= band.min_balance:
            errors.append((f"{where}.max_balance", "max_balance is not above min_balance"))
    return errors


def check_policy_text(text: str) -> tuple[ResolutionPolicy | None, list[ConfigError]]:
    model, errors, lines = validate_yaml(text or "{}", ResolutionPolicy)
    if model is None:
        return None, errors
    errors = located(_semantic_errors(model), lines)
    return (model if not errors else None), errors


def parse_policy(text: str, source: str) -> ResolutionPolicy:
    model, errors = check_policy_text(text)
    if model is None:
        raise ResolutionPolicyError(source, errors)
    return model


def policy_path() -> Path:
    return Path(settings.ARRANGEMENTS.get(settings.config_dir() / "arrangements.yaml"))


def resolution_policy() -> ResolutionPolicy:
    """The policy in force (read again when the file changes); the defaults when absent."""
    return read_config_file(policy_path(), parse_policy, ResolutionPolicy)
