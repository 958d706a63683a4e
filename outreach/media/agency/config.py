"""The agencies and law firms config: ``config/agencies.yaml`` (or ``OUTREACH_AGENCIES``) names the
agencies (licensed jurisdictions, capacity, approval, commission, drop location, recall period),
the allocation rule (balance bands, then round robin or by performance), the law firms and the
legal referral settings; it is validated at load and every error names its YAML path. Details:
docs/agency-and-legal.md."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from contact_channels.drops import drop_location
from outreach import settings
from outreach.kernel.config_yaml import (
    ConfigError,
    ConfigFileError,
    located,
    read_config_file,
    validate_yaml,
)
from outreach.planning.kinds import channel_settings

Identifier = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
# ISO 3166-1 country ("US", "CN": the whole country) or ISO 3166-2 subdivision ("US-NY").
JURISDICTION_PATTERN = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Agency(_Strict):
    id: str = Identifier
    name: str = Field(min_length=1, max_length=200)
    jurisdictions: tuple[str, ...] = Field(min_length=1)
    # strict: YAML's `true` is not a capacity, nor "yes" (a string) an approval.
    capacity: int = Field(ge=0, strict=True)  # open placements at most
    approved: bool = Field(strict=True)
    commission_rate: Decimal = Field(ge=0, le=1)
    # Where its placement and recall files go (file://, s3://, sftp://...); credentials never
    # here: ``conn_id`` names the Airflow connection the object storage uses.
    drop: str | None = None
    conn_id: str | None = None
    recall_after_days: int = Field(ge=1, le=3650, strict=True)


class Band(_Strict):
    """Accounts whose balance is in [min_balance, max_balance) may go to these agencies."""

    min_balance: Decimal = Field(default=Decimal(0), ge=0)
    max_balance: Decimal | None = Field(default=None, gt=0)
    agencies: tuple[str, ...] = Field(min_length=1)

    def holds(self, balance: Decimal) -> bool:
        return self.min_balance <= balance and (
            self.max_balance is None or balance < self.max_balance
        )


class Allocation(_Strict):
    strategy: Literal["round_robin", "performance"] = "round_robin"
    # Performance = recovered / placed over the placements of the last this many days.
    performance_days: int = Field(default=365, ge=1, le=3650, strict=True)
    bands: tuple[Band, ...] = Field(min_length=1)


class LawFirm(_Strict):
    id: str = Identifier
    name: str = Field(min_length=1, max_length=200)
    jurisdictions: tuple[str, ...] = Field(min_length=1)
    drop: str | None = None
    conn_id: str | None = None


class AgencyConfig(_Strict):
    agencies: tuple[Agency, ...] = ()
    allocation: Allocation | None = None
    law_firms: tuple[LawFirm, ...] = ()

    def agency(self, agency_id: str) -> Agency | None:
        return next((a for a in self.agencies if a.id == agency_id), None)

    def firm(self, firm_id: str) -> LawFirm | None:
        return next((f for f in self.law_firms if f.id == firm_id), None)


class AgencyConfigError(ConfigFileError):
    pass


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not (parts.netloc or parts.path):
        return "must be a URL such as file:///srv/drop/agency or s3://bucket/agency"
    if parts.password is not None or parts.username is not None:
        return "must not carry credentials: name an Airflow connection in conn_id instead"
    return None


def _semantic_errors(model: AgencyConfig) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    pattern = re.compile(JURISDICTION_PATTERN)
    sections: tuple[tuple[str, Sequence[Agency | LawFirm]], ...] = (
        ("agencies", model.agencies),
        ("law_firms", model.law_firms),
    )
    for section, items in sections:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen:
                errors.append((f"{section}[{i}].id", f"duplicate id '{item.id}'"))
            seen.add(item.id)
            for j, code in enumerate(item.jurisdictions):
                if not pattern.fullmatch(code):
                    errors.append(
                        (f"{section}[{i}].jurisdictions[{j}]",
                         f"{code!r} is not a jurisdiction such as US, US-NY or CN")
                    )  # fmt: skip
            if item.drop is not None and (problem := _url_problem(item.drop)):
                errors.append((f"{section}[{i}].drop", problem))
    if model.agencies and model.allocation is None:
        errors.append(("allocation", "required when agencies are configured"))
    if model.allocation is not None:
        ids = {a.id for a in model.agencies}
        bands = model.allocation.bands
        for i, band in enumerate(bands):
            if band.max_balance is not None and band.max_balance <= band.min_balance:
                errors.append((f"allocation.bands[{i}].max_balance", "must be above min_balance"))
            for j, agency_id in enumerate(band.agencies):
                if agency_id not in ids:
                    errors.append(
                        (f"allocation.bands[{i}].agencies[{j}]", f"unknown agency '{agency_id}'")
                    )
            for k, other in enumerate(bands[:i]):
                top = band.max_balance
                other_top = other.max_balance
                if (top is None or other.min_balance < top) and (
                    other_top is None or band.min_balance < other_top
                ):
                    errors.append(
                        (f"allocation.bands[{i}].min_balance",
                         f"the band overlaps allocation.bands[{k}]: an account would be in both")
                    )  # fmt: skip
    return errors


def check_agency_config_text(text: str) -> tuple[AgencyConfig | None, list[ConfigError]]:
    """Parse and validate the config; errors name their YAML path (and line)."""
    model, errors, lines = validate_yaml(text, AgencyConfig)
    if model is None:
        return None, errors
    errors = located(_semantic_errors(model), lines)
    return (model if not errors else None), errors


def agency_config_path() -> Path:
    return Path(settings.AGENCIES.get(settings.config_dir() / "agencies.yaml"))


def parse_agency_config(text: str, source: str) -> AgencyConfig:
    model, errors = check_agency_config_text(text)
    if model is None:
        raise AgencyConfigError(source, errors)
    return model


def agency_config() -> AgencyConfig:
    """The config in force; an empty one (no agency, no firm, default legal settings) when the
    file is absent, so that a placement then fails with ``no_agency`` rather than the run."""
    return read_config_file(agency_config_path(), parse_agency_config, AgencyConfig)


def jurisdiction_codes(country: str, region: str | None) -> frozenset[str]:
    """The codes that cover an account: its country and, with a region, its subdivision."""
    codes = {country}
    if region:
        codes.add(region if region.startswith(f"{country}-") else f"{country}-{region}")
    return frozenset(codes)


def licensed(jurisdictions: Iterable[str], country: str, region: str | None) -> bool:
    return not jurisdiction_codes(country, region).isdisjoint(jurisdictions)


def drop_root(kind: str, recipient: str, drop: str | None, conn_id: str | None) -> Any:
    """The recipient's drop location as an ObjectStoragePath: its own ``drop``, else the
    channel's ``drop`` in channels.yaml plus the recipient's id, else under the data dir."""
    return drop_location(
        drop, conn_id, channel_settings(kind).get("drop"), settings.data_dir() / "drop" / kind,
        recipient,
    )  # fmt: skip
