"""Training the score on the system's own history, and its versions in ``score_model``.

The training set: several as-of days in the window (every ``step_days``), each only when its
label is known (as-of day + horizon <= the training day) and the day has account snapshots (so
days past due, balance and past due are what they were that day, not what they are now). A share
of the accounts, chosen by a hash of the account id (never by row: one account's days all fall
on one side), is held out; the scorecard is fitted on the rest and evaluated on them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, update

from outreach.kernel.clock import utcnow
from outreach.measurement import scorecard
from outreach.measurement.features import feature_rows, label_rows
from outreach.measurement.score_config import ScoreConfig
from outreach.storage.models import AccountSnapshot, ScoreModel

score_model = cast(Table, ScoreModel.__table__)


class TrainingRefused(ValueError):
    """Training cannot run: no history with known labels, too few rows, one class only."""


def held_out(account_id: int, share: float) -> bool:
    """Whether an account is in the evaluation share: a hash of its id, the same on every run."""
    digest = hashlib.sha256(f"score-holdout:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def as_of_days(
    cfg: ScoreConfig, training_day: dt.date, window_days: int | None = None
) -> list[dt.date]:
    """The as-of days whose label is known on ``training_day``, latest first."""
    last = training_day - dt.timedelta(days=cfg.label.horizon_days)
    window = cfg.training.window_days if window_days is None else window_days
    days = []
    offset = 0
    while offset <= window:
        days.append(last - dt.timedelta(days=offset))
        offset += cfg.training.step_days
    return days


def snapshot_days(conn: Connection, first: dt.date, last: dt.date) -> set[dt.date]:
    s = AccountSnapshot.__table__.c
    return set(conn.execute(
        select(s.as_of).where(s.as_of >= first, s.as_of <= last).distinct()
    ).scalars())  # fmt: skip


@dataclass
class TrainingSet:
    days: list[dt.date]
    rows: list[dict[str, Any]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    held_rows: list[dict[str, Any]] = field(default_factory=list)
    held_labels: list[int] = field(default_factory=list)


def training_set(
    conn: Connection,
    cfg: ScoreConfig,
    days: list[dt.date],
    *,
    require_snapshots: bool = True,
) -> TrainingSet:
    """Feature rows and labels for each of ``days``, split into fitted and held-out accounts.
    With ``require_snapshots`` a day without account snapshots is skipped, and so is an account
    without a snapshot that day."""
    if require_snapshots:
        have = snapshot_days(conn, min(days), max(days))
        days = [d for d in days if d in have]
    out = TrainingSet(days=sorted(days))
    share = cfg.training.holdout_share
    for day in out.days:
        labels = {
            r["account_id"]: r["label"] for r in label_rows(conn, day, cfg.label.horizon_days)
        }
        for row in feature_rows(conn, day):
            if require_snapshots and not row["snapshot"]:
                continue
            label = labels.get(row["account_id"], 0)
            if held_out(row["account_id"], share):
                out.held_rows.append(row)
                out.held_labels.append(label)
            else:
                out.rows.append(row)
                out.labels.append(label)
    return out


def model_version(model: dict[str, Any], window_from: dt.date, window_to: dt.date) -> str:
    """A short hash of the model's JSON and its window: the same data trains the same version."""
    text = json.dumps(model, sort_keys=True) + f"|{window_from}|{window_to}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def train_on(cfg: ScoreConfig, data: TrainingSet) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fitted model and its metrics (held-out AUC, Brier, calibration; AUC on the fitted
    rows too, to see overfitting)."""
    if len(data.rows) < cfg.training.min_rows:
        raise TrainingRefused(
            f"{len(data.rows)} training rows in the window, fewer than training.min_rows "
            f"({cfg.training.min_rows}): more history is needed"
        )
    if len(set(data.labels)) < 2:
        raise TrainingRefused("every training row has the same label: nothing to learn from")
    model = scorecard.fit(cfg, data.rows, data.labels)
    metrics = scorecard.evaluate(scorecard.probabilities(model, data.held_rows), data.held_labels)
    fitted = scorecard.evaluate(scorecard.probabilities(model, data.rows), data.labels)
    metrics.update(
        train_rows=len(data.rows),
        train_auc=fitted["auc"],
        holdout_share=cfg.training.holdout_share,
        horizon_days=cfg.label.horizon_days,
        as_of_days=[d.isoformat() for d in data.days],
        merges=model["merges"],
    )
    return model, metrics


def store(
    conn: Connection,
    model: dict[str, Any],
    metrics: dict[str, Any],
    *,
    window_from: dt.date,
    window_to: dt.date,
    by: str,
) -> str:
    """Store a trained version (state ``trained``); the same version twice is stored once."""
    version = model_version(model, window_from, window_to)
    exists = conn.execute(
        select(func.count()).select_from(score_model).where(score_model.c.version == version)
    ).scalar_one()
    if not exists:
        conn.execute(insert(score_model).values(
            version=version, kind=model["kind"], label=model["label"], state="trained",
            trained_at=utcnow().replace(tzinfo=None), trained_by=by,
            window_from=window_from, window_to=window_to,
            features=[f["name"] for f in model["features"]], model=model, metrics=metrics,
        ))  # fmt: skip
    return version


def model_row(conn: Connection, version: str) -> dict[str, Any] | None:
    row = (
        conn.execute(select(score_model).where(score_model.c.version == version)).mappings().first()
    )
    return dict(row) if row is not None else None


def model_rows(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        select(score_model).order_by(score_model.c.trained_at.desc(), score_model.c.version)
    ).mappings()]  # fmt: skip


def active_row(conn: Connection) -> dict[str, Any] | None:
    row = (
        conn.execute(select(score_model).where(score_model.c.state == "active")).mappings().first()
    )
    return dict(row) if row is not None else None


def activate(conn: Connection, version: str) -> str | None:
    """Make ``version`` the one active model; the one active before is retired. Returns the
    version retired (None when there was none)."""
    row = model_row(conn, version)
    if row is None:
        raise LookupError(f"no score model {version}")
    previous = active_row(conn)
    if previous is not None and previous["version"] == version:
        return None
    if previous is not None:
        conn.execute(update(score_model).where(score_model.c.version == previous["version"])
                     .values(state="retired"))  # fmt: skip
    conn.execute(update(score_model).where(score_model.c.version == version).values(state="active"))
    return previous["version"] if previous is not None else None
