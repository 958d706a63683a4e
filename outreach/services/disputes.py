"""Hardship, causes of delinquency and disputes, for the CLI, the console and the self-service
page (``outreach.resolution.hardship``, ``outreach.resolution.disputes``): one transaction each,
every change a resolution event with who and why."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Engine

from outreach.kernel.clock import utcnow
from outreach.kernel.facts import account_ids_by_ref
from outreach.resolution.disputes import open_dispute
from outreach.resolution.hardship import UnknownCause, record_cause, record_hardship
from outreach.resolution.policy import CAUSES

__all__ = ["CAUSES", "UnknownAccount", "UnknownCause", "cause", "dispute", "hardship"]


class UnknownAccount(LookupError):
    """No account has this ref (the ref is the caller's own input: safe to show)."""


def _account(conn: Connection, account_ref: str) -> int:
    found = account_ids_by_ref(conn, [account_ref]).get(account_ref)
    if found is None:
        raise UnknownAccount(f"no account {account_ref[:64]!r}")
    return found


def hardship(
    engine: Engine, account_ref: str, *, source: str, actor: str, as_of: dt.date | None = None
) -> dict[str, Any]:
    """Pause automated collection of the account for the hardship pause from ``as_of`` (today
    by default); returns the day the pause ends."""
    day = as_of or utcnow().date()
    with engine.begin() as conn:
        account_id = _account(conn, account_ref)
        ends = record_hardship(conn, account_id=account_id, source=source, actor=actor, day=day)
    return {"account_ref": account_ref, "hold": "hardship", "started_on": day.isoformat(),
            "pause_ends_on": ends.isoformat()}  # fmt: skip


def cause(engine: Engine, account_ref: str, cause: str, *, source: str, actor: str
          ) -> dict[str, Any]:  # fmt: skip
    """Record the cause of delinquency (one of CAUSES; UnknownCause otherwise)."""
    with engine.begin() as conn:
        account_id = _account(conn, account_ref)
        record_cause(conn, account_id=account_id, cause=cause, source=source, actor=actor)
    return {"account_ref": account_ref, "cause": cause}


def dispute(
    engine: Engine, account_ref: str, *, source: str, actor: str, as_of: dt.date | None = None
) -> dict[str, Any]:
    """Record a dispute: collection stops (the dispute hold) until the verification letter of
    the open verification task is sent; returns the task's id."""
    day = as_of or utcnow().date()
    with engine.begin() as conn:
        account_id = _account(conn, account_ref)
        task = open_dispute(conn, account_id=account_id, source=source, actor=actor, day=day)
    return {"account_ref": account_ref, "hold": "dispute", "verification_task": task,
            "started_on": day.isoformat()}  # fmt: skip
