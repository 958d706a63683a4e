"""The scores as stored (``account_score``): a day's rows replaced, one account's latest score
by the active model as explain and the timeline show it (docs/score-bands.md). Reads and writes
only: the model and its arithmetic are ``outreach.measurement.scorecard``'s and
``score_training``'s."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert, text

from outreach.storage.models import AccountScore

SCORE_PLACES = Decimal("0.00001")  # account_score.score is Numeric(6, 5)


def write_scores(
    conn: Connection, as_of: dt.date, lo: int, hi: int, rows: list[dict[str, Any]]
) -> None:
    """Replace the day's scores of accounts ``lo..hi`` with ``rows`` (one executemany)."""
    conn.execute(
        text("DELETE FROM account_score WHERE as_of = :d AND account_id BETWEEN :lo AND :hi"),
        {"d": as_of, "lo": lo, "hi": hi},
    )
    if rows:
        conn.execute(insert(AccountScore), rows)


def account_score(conn: Connection, account_id: int, as_of: dt.date) -> dict[str, Any] | None:
    """The account's latest score on or before ``as_of`` by the active model, with its band
    and top factors (labels, value, points) as explain and the timeline show it; None when no
    model is active or the account has no score by it."""
    row = conn.execute(
        text(
            "SELECT s.as_of, s.model_version, s.score, s.band, s.factors FROM account_score s "
            "JOIN score_model m ON m.version = s.model_version AND m.state = 'active' "
            "WHERE s.account_id = :a AND s.as_of <= :d ORDER BY s.as_of DESC LIMIT 1"
        ),
        {"a": account_id, "d": as_of},
    ).first()
    if row is None:
        return None
    factors = row[4] if isinstance(row[4], list) else json.loads(row[4] or "[]")
    return {
        "as_of": str(row[0]),
        "model_version": row[1],
        "score": str(Decimal(str(row[2])).quantize(SCORE_PLACES)),
        "band": row[3],
        "factors": factors,
    }
