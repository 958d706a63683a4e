"""config/score.yaml: the score's label horizon, its features and their bins, how it is trained,
and the score bands. Validated like every file operations write (outreach.kernel.config_yaml):
each error names its YAML path and line. docs/model-card.md explains each setting."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from outreach import settings
from outreach.kernel.config_yaml import (
    ConfigError,
    ConfigFileError,
    located,
    read_config_file,
    validate_yaml,
)
from outreach.measurement.features import CATALOG


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Strict):
    horizon_days: int = Field(default=30, ge=1, le=365)


class Training(_Strict):
    window_days: int = Field(default=90, ge=0, le=3650)
    step_days: int = Field(default=7, ge=1, le=365)
    holdout_share: float = Field(default=0.3, gt=0, lt=1)
    regularisation: float = Field(default=1.0, gt=0)
    min_category_rows: int = Field(default=30, ge=1)
    min_rows: int = Field(default=200, ge=10)


class FeatureConfig(_Strict):
    name: str
    bins: int | None = Field(default=None, ge=2, le=20)  # quantile bins (numeric)
    edges: tuple[float, ...] | None = None  # fixed cut points (numeric)
    categories: tuple[str, ...] | None = None  # fixed categories (category)
    monotone: Literal["increasing", "decreasing"] | None = None


class Band(_Strict):
    name: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    min_score: float = Field(ge=0, le=1)


def _default_features() -> tuple[FeatureConfig, ...]:
    return tuple(
        FeatureConfig(name=name, bins=5 if spec.type == "numeric" else None)
        for name, spec in CATALOG.items()
    )


def _default_bands() -> tuple[Band, ...]:
    return (Band(name="high", min_score=0.5), Band(name="medium", min_score=0.2),
            Band(name="low", min_score=0.0))  # fmt: skip


class ScoreConfig(_Strict):
    label: Label = Label()
    training: Training = Training()
    features: tuple[FeatureConfig, ...] = Field(default_factory=_default_features, min_length=1)
    bands: tuple[Band, ...] = Field(default_factory=_default_bands, min_length=1)

    @property
    def label_name(self) -> str:
        return f"pays_within_{self.label.horizon_days}d"

    def band_for(self, score: float) -> str:
        """The first band, highest first, whose ``min_score`` the score reaches."""
        for band in self.bands:
            if score >= band.min_score:
                return band.name
        return self.bands[-1].name


class ScoreConfigError(ConfigFileError):
    pass


def _semantic_errors(model: ScoreConfig) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, feature in enumerate(model.features):
        where = f"features[{i}]"
        spec = CATALOG.get(feature.name)
        if spec is None:
            errors.append((f"{where}.name", "unknown feature; known features: "
                           + ", ".join(CATALOG)))  # fmt: skip
            continue
        if feature.name in seen:
            errors.append((f"{where}.name", f"'{feature.name}' appears twice"))
        seen.add(feature.name)
        if spec.type == "numeric":
            if feature.categories is not None:
                errors.append((f"{where}.categories", "a numeric feature has bins or edges"))
            if feature.bins is not None and feature.edges is not None:
                errors.append((f"{where}.edges", "give bins or edges, not both"))
            if feature.edges is not None and (
                not feature.edges or list(feature.edges) != sorted(set(feature.edges))
            ):
                errors.append((f"{where}.edges", "edges must be increasing"))
        else:
            if feature.bins is not None or feature.edges is not None:
                errors.append((f"{where}.bins" if feature.bins is not None else f"{where}.edges",
                               "a category feature has categories, not bins"))  # fmt: skip
            if feature.monotone is not None:
                errors.append((f"{where}.monotone", "only a numeric feature can be monotone"))
    names: set[str] = set()
    previous: float | None = None
    for i, band in enumerate(model.bands):
        if band.name in names:
            errors.append((f"bands[{i}].name", f"'{band.name}' appears twice"))
        names.add(band.name)
        if previous is not None and band.min_score >= previous:
            errors.append((f"bands[{i}].min_score", "bands go highest first: min_score must "
                           "be below the band before"))  # fmt: skip
        previous = band.min_score
    if model.bands and model.bands[-1].min_score != 0:
        errors.append((f"bands[{len(model.bands) - 1}].min_score",
                       "the last band must start at 0 so every score has a band"))  # fmt: skip
    return errors


def check_score_text(text: str) -> tuple[ScoreConfig | None, list[ConfigError]]:
    model, errors, lines = validate_yaml(text or "{}", ScoreConfig)
    if model is None:
        return None, errors
    errors = located(_semantic_errors(model), lines)
    return (model if not errors else None), errors


def parse_score_config(text: str, source: str) -> ScoreConfig:
    model, errors = check_score_text(text)
    if model is None:
        raise ScoreConfigError(source, errors)
    return model


def score_config_path() -> Path:
    return Path(settings.SCORE.get(settings.config_dir() / "score.yaml"))


def score_config(path: Path | None = None) -> ScoreConfig:
    """The score's configuration (read again when the file changes); the defaults when absent."""
    return read_config_file(path or score_config_path(), parse_score_config, ScoreConfig)
