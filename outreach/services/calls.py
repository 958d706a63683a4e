"""The agent call queue's use cases (``outreach.media.calls.queue``), for the agents' API and
``outreach calls refresh``: claim the next call, record what came of it, the queue's upkeep."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from outreach.media.calls.dispositions import DispositionError
from outreach.media.calls.dispositions import record_disposition as _record_disposition
from outreach.media.calls.queue import (
    MAX_AGENT_LENGTH,
    ClaimedTask,
    TooManyOpenTasks,
)
from outreach.media.calls.queue import claim_next as _claim_next
from outreach.media.calls.upkeep import refresh_call_queue as _refresh_call_queue

__all__ = [
    "MAX_AGENT_LENGTH", "ClaimedTask", "DispositionError", "TooManyOpenTasks", "claim_next",
    "record_disposition", "refresh_call_queue",
]  # fmt: skip


def claim_next(engine: Engine, agent: str, now: dt.datetime) -> ClaimedTask | None:
    """The next call due now for ``agent``, checked against the gate; None when none is due.
    Raises TooManyOpenTasks when the agent holds as many open calls as allowed."""
    return _claim_next(engine, agent, now)


def record_disposition(
    engine: Engine,
    key: str,
    agent: str,
    disposition: str,
    now: dt.datetime,
    *,
    promise_amount: Decimal | None = None,
    promise_date: dt.date | None = None,
    cause: str | None = None,
) -> dict[str, Any]:
    """Record what came of the claimed call ``key`` (and the cause of delinquency the agent
    classified, if any); DispositionError (with its HTTP status and code) when refused."""
    return _record_disposition(engine, key, agent, disposition, now,
                               promise_amount=promise_amount, promise_date=promise_date,
                               cause=cause)


def refresh_call_queue(engine: Engine, day: dt.date, now: dt.datetime) -> dict[str, Any]:
    """Expire closed windows, queue stale claims again, withdraw what the gate now stops."""
    return _refresh_call_queue(engine, day, now)
