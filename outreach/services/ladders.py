"""The ladder's use cases, for the CLI's ``config`` commands and the console's ladder page: the
ladder a command runs with, checking a draft, proposing and approving versions (two people), the
ladder in force and its history, and what a draft would change (``outreach.operations.ladder_diff``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from outreach import settings
from outreach.kernel.clock import utcnow
from outreach.measurement.experiments import record_promoted
from outreach.operations.ladder_diff import diff_ladders, format_diff
from outreach.operations.settle_by_hand import ResolveError
from outreach.planning import ladder_versions
from outreach.planning.ladder import (
    Ladder,
    LadderError,
    check_ladder_text,
    ladder_version,
    load_ladder,
)
from outreach.planning.ladder_versions import (
    VersionError,
    VersionRecord,
    history,
    ladder_in_force,
    propose,
    propose_text,
)

__all__ = [
    "Ladder", "LadderError", "VersionError", "VersionRecord", "approve", "change_ladder",
    "check_draft_ladder", "check_ladder_text", "command_ladder", "diff_draft_ladder",
    "diff_files", "format_diff", "history", "ladder_in_force", "ladder_overview",
    "ladder_version", "load_ladder", "propose",
]  # fmt: skip


def approve(
    version: str, who: str, *, engine: Engine | None = None, now: dt.datetime | None = None
) -> VersionRecord:
    """Make a proposed version the active ladder (a second person: ``ladder_versions.approve``);
    an experiment whose winner it was is then recorded as promoted and stops assigning."""
    at = now or utcnow()
    record = ladder_versions.approve(version, who, engine=engine, now=at)
    db = engine
    if db is None:
        from outreach.storage.db import get_engine

        db = get_engine()
    with db.begin() as conn:
        record_promoted(conn, version, record.approved_by or who, at)
    return record


def command_ladder(path: Path | None, engine: Callable[[], Engine]) -> Ladder:
    """The ladder a command was given, else the one in force (the approved version, or the
    configured file before any approval); ``engine`` is called only for the latter."""
    return load_ladder(path) if path else ladder_in_force(engine=engine())


def diff_files(engine: Engine, old: Ladder, new: Ladder, day: dt.date, batch_size: int
               ) -> dict[str, Any]:  # fmt: skip
    """What switching from ``old`` to ``new`` would change on ``day`` (``LadderDiff.as_dict``);
    nothing is sent or written."""
    return diff_ladders(engine, old, new, day, batch_size).as_dict()


# --- the console's ladder page ---------------------------------------------------------------


def ladder_overview(engine: Engine | None = None) -> dict[str, Any]:
    """The ladder in force (the approved version, or the configured file before any approval):
    version, stages, their entry and actions, and the versions on record; or its errors."""
    path = settings.ladder_path()
    try:
        ladder = ladder_in_force(engine=engine)
    except LadderError as exc:
        return {"path": path.name, "version": None,
                "errors": [e.__dict__ for e in exc.errors], "stages": []}
    return {
        "path": ladder.source if ladder.source.startswith("ladder version") else path.name,
        "history": [
            {"version": r.version, "state": r.state, "proposed_by": r.proposed_by,
             "approved_by": r.approved_by,
             "approved_at": r.approved_at.isoformat() + "Z" if r.approved_at else None}
            for r in history(engine=engine)
        ],  # fmt: skip
        "version": ladder.version,
        "name": ladder.model.name,
        "errors": [],
        "stages": [
            {
                "id": s.id,
                "entry": s.entry.model_dump(mode="json"),
                "requires": [r.model_dump(mode="json") for r in s.requires],
                "actions": [a.model_dump(mode="json") for a in s.actions],
            }
            for s in ladder.stages
        ],
        "resolution_actions": [a.model_dump(mode="json") for a in ladder.model.resolution_actions],
    }


def check_draft_ladder(draft: str) -> dict[str, Any]:
    """Validate a draft ladder text with the same checks as loading; errors carry YAML paths."""
    return _checked_draft(draft)[1]


def _checked_draft(draft: str) -> tuple[Any, dict[str, Any]]:
    """The draft's model (None if invalid) and its check report."""
    model, errors = check_ladder_text(draft)
    return model, {
        "valid": model is not None,
        "version": ladder_version(model) if model is not None else None,
        "errors": [{"path": e.path, "line": e.line, "message": e.message} for e in errors],
    }


def diff_draft_ladder(engine: Engine, draft: str, day: dt.date) -> dict[str, Any]:
    """What the draft would change against the ladder in force, for ``day``'s portfolio: the
    same comparison as ``outreach config diff`` (``outreach.operations.ladder_diff``), sending and writing
    nothing. An invalid draft gets its errors instead. Counts, codes and account references
    only: no personal data."""
    model, check = _checked_draft(draft)
    if model is None:
        return {"check": check, "diff": None}
    new = Ladder(model=model, version=check["version"], source="draft")
    old = ladder_in_force(engine=engine)
    return {"check": check, "diff": diff_ladders(engine, old, new, day).as_dict()}


def change_ladder(engine: Engine, who: str, action: str, *, allowed: bool, draft: str = "",
                  version: str = "", now: Callable[[], dt.datetime] = utcnow) -> dict[str, Any]:
    """Propose the draft, or approve a proposed version, as the signed-in user ``who`` (their
    Airflow login is the name recorded; nobody types it); ``allowed``: whether their role may.
    Returns ``{"version", "state"}``; raises ResolveError with the HTTP status for a refusal
    (403 role, 409 version rules, 422 draft)."""
    if not allowed:
        raise ResolveError(403, "your role may not propose or approve ladder versions")
    at = now()
    try:
        if action == "propose":
            made = propose_text(draft, who, source=f"console draft by {who}", engine=engine,
                                now=at)  # fmt: skip
            return {"version": made, "state": "proposed"}
        if action == "approve":
            record = approve(version, who, engine=engine, now=at)
            return {"version": record.version, "state": record.state}
    except LadderError as exc:
        raise ResolveError(422, "; ".join(str(e) for e in exc.errors)) from None
    except VersionError as exc:
        raise ResolveError(409, str(exc)) from None
    raise ResolveError(422, f"unknown ladder action {action!r}")
