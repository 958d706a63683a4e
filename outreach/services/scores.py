"""The propensity-to-pay score's use cases, for the CLI (``outreach score``), the weekly DAG and
the daily scoring: train a version on the system's own history, list and show versions, make one
the active model. Each is one transaction; the configuration is validated first
(``outreach.measurement.score_training``, docs/model-card.md)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import Engine

from outreach.kernel.clock import today
from outreach.measurement import score_training as _training
from outreach.measurement.score_config import ScoreConfig, score_config
from outreach.measurement.score_training import TrainingRefused

__all__ = [
    "TrainingRefused",
    "activate",
    "active_model",
    "list_models",
    "show",
    "train",
    "train_weekly",
]

log = logging.getLogger(__name__)


def _engine(engine: Engine | None) -> Engine:
    from outreach.services.config import load_config
    from outreach.services.database import engine as app_engine

    db = engine or app_engine()
    load_config(engine=db)
    return db


def train(
    as_of: dt.date | None = None,
    *,
    window_days: int | None = None,
    by: str = "system",
    engine: Engine | None = None,
    config: ScoreConfig | None = None,
) -> dict[str, Any]:
    """Train a version on the history up to ``as_of`` (today by default) and store it, state
    ``trained``: the version, its window and its held-out metrics. ``TrainingRefused`` when the
    history is too short."""
    db = _engine(engine)
    cfg = config or score_config()
    day = as_of or today()
    days = _training.as_of_days(cfg, day, window_days)
    with db.begin() as conn:
        data = _training.training_set(conn, cfg, days)
        if not data.days:
            raise TrainingRefused(
                f"no account snapshots between {min(days)} and {max(days)}: the daily plan "
                "writes them; run it for the days of the window first"
            )
        model, metrics = _training.train_on(cfg, data)
        version = _training.store(conn, model, metrics, window_from=data.days[0],
                                  window_to=data.days[-1], by=by)  # fmt: skip
    log.info("score model %s trained by %s: held-out AUC %s on %d rows", version, by,
             metrics["auc"], metrics["rows"])  # fmt: skip
    return {"version": version, "label": model["label"], "window_from": data.days[0].isoformat(),
            "window_to": data.days[-1].isoformat(), "metrics": metrics}  # fmt: skip


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    metrics = row["metrics"] or {}
    return {
        "version": row["version"], "state": row["state"], "label": row["label"],
        "trained_at": row["trained_at"].isoformat(timespec="seconds"),
        "trained_by": row["trained_by"], "window_from": row["window_from"].isoformat(),
        "window_to": row["window_to"].isoformat(), "auc": metrics.get("auc"),
        "brier": metrics.get("brier"), "rows": metrics.get("train_rows"),
    }  # fmt: skip


def list_models(*, engine: Engine | None = None) -> list[dict[str, Any]]:
    """Every stored version, newest first."""
    with (engine or _engine(None)).connect() as conn:
        return [_summary(r) for r in _training.model_rows(conn)]


def show(version: str, *, engine: Engine | None = None) -> dict[str, Any]:
    """One version: its summary, features with their bins and points, metrics and calibration."""
    from outreach.measurement.scorecard import bin_label

    with (engine or _engine(None)).connect() as conn:
        row = _training.model_row(conn, version)
    if row is None:
        raise LookupError(f"no score model {version}")
    model = row["model"]
    features = [
        {"name": f["name"], "label_en": f["label_en"], "label_zh": f["label_zh"],
         "monotone": f.get("monotone"),
         "bins": [{"bin": bin_label(f, i), "points": p} for i, p in enumerate(f["points"])]}
        for f in model["features"]
    ]  # fmt: skip
    return {**_summary(row), "intercept": model["intercept"], "features": features,
            "metrics": row["metrics"]}  # fmt: skip


def activate(version: str, *, by: str, engine: Engine | None = None) -> dict[str, Any]:
    """Make ``version`` the one active model (the one before is retired)."""
    db = _engine(engine)
    with db.begin() as conn:
        retired = _training.activate(conn, version)
    log.info("score model %s activated by %s (retired: %s)", version, by, retired or "none")
    return {"version": version, "state": "active", "activated_by": by, "retired": retired}


def active_model(engine: Engine | None = None) -> dict[str, Any] | None:
    """The active model's JSON (what ``scorecard.apply`` takes) with its ``version``; None when
    no model is active (then nothing is scored and every account has no band)."""
    from outreach.services.database import engine as app_engine

    with (engine or app_engine()).connect() as conn:
        row = _training.active_row(conn)
    if row is None:
        return None
    return {**row["model"], "version": row["version"]}


def train_weekly(as_of: dt.date, *, engine: Engine | None = None) -> dict[str, Any]:
    """The weekly DAG's training: a new version on the history up to the run's logical date, or
    why not (too little history is not a failure: the run goes on). Counts and the version only,
    for XCom; activating it stays a person's decision (``outreach score activate``)."""
    try:
        result = train(as_of, by="weekly", engine=engine)
    except TrainingRefused as exc:
        log.warning("score model not trained for %s: %s", as_of, exc)
        return {"version": None, "refused": str(exc)}
    m = result["metrics"]
    return {"version": result["version"], "auc": m["auc"], "brier": m["brier"],
            "train_rows": m["train_rows"], "held_out_rows": m["rows"]}  # fmt: skip
