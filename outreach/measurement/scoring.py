"""The day's scoring: the active score model applied to the portfolio, set-based, into
``account_score`` (score, band, top factors), before the day is planned (docs/score-bands.md).

Batches of account ranges: one read of the features per range (``features.feature_rows``), the
model applied in memory (``scorecard.apply``), one ``executemany`` per range. A rerun of a day
replaces that day's rows. No active model: nothing is scored and nothing else changes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, text

from outreach.measurement.account_scores import SCORE_PLACES, write_scores
from outreach.measurement.features import feature_rows
from outreach.measurement.score_config import ScoreConfig
from outreach.measurement.score_training import active_row
from outreach.measurement.scorecard import apply

BATCH_SIZE = 5000


def score_ranges(conn: Connection, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive account-id ranges of ``batch_size`` accounts, covering every account id."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    ids = [
        int(r[0])
        for r in conn.execute(
            text(
                "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM account) t "
                "WHERE (n - 1) % :size = 0 ORDER BY id"
            ),
            {"size": batch_size},
        )
    ]
    top = int(conn.execute(text("SELECT MAX(id) FROM account")).scalar() or 0)
    return [(lo, ids[i + 1] - 1 if i + 1 < len(ids) else top) for i, lo in enumerate(ids)]


def _plain(value: Any) -> Any:
    """A factor's value as JSON keeps it (a Decimal or a date as text)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _factors(factors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "feature": f["feature"],
            "label_en": f.get("label_en"),
            "label_zh": f.get("label_zh"),
            "value": _plain(f.get("value")),
            "bin": f.get("bin"),
            "points": round(float(f["points"]), 4),
        }
        for f in list(factors)[:3]
    ]


def score_rows(
    conn: Connection,
    version: str,
    model: dict[str, Any],
    config: ScoreConfig,
    as_of: dt.date,
    lo: int,
    hi: int,
) -> list[dict[str, Any]]:
    """The ``account_score`` rows of accounts ``lo..hi`` for ``as_of`` by ``model`` (read only)."""
    # feature_rows takes ids lo <= id < hi.
    features = list(feature_rows(conn, as_of, lo, hi + 1))
    rows: list[dict[str, Any]] = []
    for feature_row, (probability, factors) in zip(features, apply(model, features), strict=True):
        score = Decimal(repr(float(probability))).quantize(SCORE_PLACES)
        rows.append(
            {
                "account_id": int(feature_row["account_id"]),
                "as_of": as_of,
                "model_version": version,
                "score": score,
                "band": config.band_for(float(score)),
                "factors": _factors(factors),
            }
        )
    return rows


def score_day(
    engine: Engine, as_of: dt.date, config: ScoreConfig, *, batch_size: int = BATCH_SIZE
) -> dict[str, Any]:
    """Score every account for ``as_of`` with the active model, range by range (each range
    read, then written in its own short transaction). Counts per band, never per account."""
    with engine.connect() as conn:
        active = active_row(conn)
        if active is None:
            return {"as_of": as_of.isoformat(), "scored": 0, "skipped": "no active score model"}
        ranges = score_ranges(conn, batch_size)
    version, model = str(active["version"]), active["model"]
    if isinstance(model, str):
        model = json.loads(model)
    by_band: dict[str, int] = {band.name: 0 for band in config.bands}
    scored = 0
    for lo, hi in ranges:
        with engine.connect() as conn:
            rows = score_rows(conn, version, model, config, as_of, lo, hi)
        with engine.begin() as conn:
            write_scores(conn, as_of, lo, hi, rows)
        scored += len(rows)
        for r in rows:
            by_band[r["band"]] = by_band.get(r["band"], 0) + 1
    return {"as_of": as_of.isoformat(), "model_version": version, "scored": scored,
            "by_band": by_band}  # fmt: skip
