"""config/measurement.yaml: how KPIs are measured. The attribution window, the unit cost of a
contact per channel (in the reporting currency), the exchange rates into that currency, the
default agency commission, and the targets the charts draw against the actuals. Validated like
every file operations write (outreach.kernel.config_yaml): each error names its YAML path and
line. docs/kpis.md explains each setting."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from outreach import settings
from outreach.kernel.config_yaml import (
    ConfigError,
    ConfigFileError,
    StrictLoader,
    read_config_file,
    validate_yaml,
)
from outreach.measurement.report_model import DIMENSIONS

CHANNELS = ("sms", "email", "call", "letter", "agency", "legal")
# Days-past-due buckets (issue 16): "current" for 0, then these, inclusive; 180+ above 180.
BUCKETS = ("current", "1-30", "31-60", "61-90", "91-120", "121-180", "180+")
# The metrics a target may be set for, and whether each is a rate (0..1).
TARGET_METRICS = {
    "recovery_rate": True,
    "right_party_contact_rate": True,
    "promise_rate": True,
    "promise_kept_rate": True,
    "arrangement_uptake": True,
    "arrangement_completion_rate": True,
    "arrangement_break_rate": True,
    "cure_rate": True,
    "cost_per_unit_collected": False,
}


def bucket_of(dpd: int | None) -> str:
    """The days-past-due bucket of ``dpd`` (None or 0 and below: current)."""
    if dpd is None or dpd <= 0:
        return "current"
    for name, top in (("1-30", 30), ("31-60", 60), ("61-90", 90), ("91-120", 120),
                      ("121-180", 180)):  # fmt: skip
        if dpd <= top:
            return name
    return "180+"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Attribution(_Strict):
    # A payment goes to the last contact sent (or call answered by the right party) on its
    # account within this many days before the payment was received; else "unattributed".
    window_days: int = Field(default=14, ge=0, le=365)


class Agencies(_Strict):
    # Used for an agency whose config/agencies.yaml entry has no commission_rate.
    commission_rate: Decimal = Field(default=Decimal("0.25"), ge=0, le=1)


class MeasurementConfig(_Strict):
    reporting_currency: str = "USD"
    # Units of the reporting currency per unit of each currency (the reporting currency is 1).
    fx_rates: dict[str, Decimal] = Field(default_factory=lambda: {"USD": Decimal(1)})
    # Cost of one contact sent, per channel, in the reporting currency.
    unit_costs: dict[str, Decimal] = Field(default_factory=dict)
    attribution: Attribution = Attribution()
    agencies: Agencies = Agencies()
    # metric -> {"overall": target} and/or {dimension: {value: target}}.
    targets: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def fx(self, currency: str) -> Decimal | None:
        """Units of the reporting currency per unit of ``currency`` (None: no rate configured)."""
        if currency == self.reporting_currency:
            return Decimal(1)
        return self.fx_rates.get(currency)

    def fingerprint(self) -> str:
        text = self.model_dump_json()
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class MeasurementConfigError(ConfigFileError):
    pass


def _currency_problem(code: str) -> str | None:
    if len(code) != 3 or not code.isalpha() or not code.isupper():
        return "not an ISO 4217 currency code"
    return None


def _semantic_errors(model: MeasurementConfig) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    if problem := _currency_problem(model.reporting_currency):
        errors.append(("reporting_currency", problem))
    for code, rate in model.fx_rates.items():
        if problem := _currency_problem(code):
            errors.append((f"fx_rates.{code}", problem))
        elif rate <= 0:
            errors.append((f"fx_rates.{code}", "must be more than 0"))
    if model.reporting_currency in model.fx_rates and model.fx_rates[
        model.reporting_currency
    ] != Decimal(1):
        errors.append(
            (f"fx_rates.{model.reporting_currency}", "the reporting currency's rate is 1")
        )
    for channel, cost in model.unit_costs.items():
        if channel not in CHANNELS:
            errors.append((f"unit_costs.{channel}",
                           f"unknown channel; known channels: {', '.join(CHANNELS)}"))  # fmt: skip
        elif cost < 0:
            errors.append((f"unit_costs.{channel}", "must be 0 or more"))
    for metric, spec in model.targets.items():
        where = f"targets.{metric}"
        if metric not in TARGET_METRICS:
            errors.append((where, f"unknown metric; known metrics: {', '.join(TARGET_METRICS)}"))
            continue
        if not isinstance(spec, dict):
            errors.append((where, "must be a mapping"))
            continue
        is_rate = TARGET_METRICS[metric]
        for key, value in spec.items():
            if key == "overall":
                errors.extend(_target_problem(f"{where}.overall", value, is_rate))
            elif key in DIMENSIONS:
                if not isinstance(value, dict):
                    errors.append((f"{where}.{key}", "must be a mapping of value: target"))
                    continue
                for name, target in value.items():
                    if key == "bucket" and str(name) not in BUCKETS:
                        errors.append((f"{where}.{key}.{name}",
                                       f"unknown bucket; known buckets: {', '.join(BUCKETS)}"))  # fmt: skip
                    else:
                        errors.extend(_target_problem(f"{where}.{key}.{name}", target, is_rate))
            else:
                errors.append((f"{where}.{key}",
                               "unknown key; known keys: overall, " + ", ".join(DIMENSIONS)))  # fmt: skip
    return errors


def _target_problem(where: str, value: Any, is_rate: bool) -> list[tuple[str, str]]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [(where, "must be a number")]
    if is_rate and not 0 <= value <= 1:
        return [(where, "a rate's target is between 0 and 1")]
    if value < 0:
        return [(where, "must be 0 or more")]
    return []


def check_measurement_text(text: str) -> tuple[MeasurementConfig | None, list[ConfigError]]:
    model, errors, lines = validate_yaml(text or "{}", MeasurementConfig)
    if model is None:
        return None, errors

    def line(path: str) -> int | None:
        while path:
            if path in lines:
                return lines[path]
            path = path.rsplit(".", 1)[0] if "." in path else ""
        return None

    errors = [ConfigError(path, msg, line(path)) for path, msg in _semantic_errors(model)]
    return (model if not errors else None), errors


def parse_measurement(text: str, source: str) -> MeasurementConfig:
    model, errors = check_measurement_text(text)
    if model is None:
        raise MeasurementConfigError(source, errors)
    return model


def measurement_path() -> Path:
    return Path(settings.MEASUREMENT.get(settings.config_dir() / "measurement.yaml"))


def measurement_config() -> MeasurementConfig:
    """The configuration in force (read again when the file changes); defaults when absent."""
    return read_config_file(measurement_path(), parse_measurement, MeasurementConfig)


def agency_commission_rates() -> dict[str, Decimal]:
    """Agency id -> commission rate, from config/agencies.yaml where it names one. Read here
    (not through outreach.media.agency, a layer above) and only for this field: the file is
    validated as a whole by the agency's own loader."""
    path = Path(settings.AGENCIES.get(settings.config_dir() / "agencies.yaml"))
    if not path.is_file():
        return {}
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader)
    except yaml.YAMLError:
        return {}
    rates: dict[str, Decimal] = {}
    for entry in (raw or {}).get("agencies") or []:
        if isinstance(entry, dict) and "id" in entry and entry.get("commission_rate") is not None:
            rates[str(entry["id"])] = Decimal(str(entry["commission_rate"]))
    return rates
