"""Changing the ladder safely: a version becomes active only when a second person approves it.

One person proposes a ladder file (``outreach config propose FILE --by NAME``): it is validated
and stored as it was written, under its version (the hash of its meaning). Another person
approves it (``outreach config approve VERSION --by NAME``): it becomes the active version and
the one it replaces is retired, in one transaction. Once any version has been approved, the
active one is the ladder in force everywhere (plan, dispatch, explain, the console), whatever
the file in ``config/`` now says; before that, the configured file is. Every decision records
the version that made it (``config_version`` on ledger rows and decisions).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from outreach import settings
from outreach.kernel.clock import utcnow
from outreach.planning.ladder import (
    Ladder,
    LadderError,
    check_ladder_text,
    ladder_version,
    load_ladder,
    read_ladder_text,
)


class VersionError(ValueError):
    """A proposal or approval that cannot be taken; says why."""


@dataclass(frozen=True, slots=True)
class VersionRecord:
    version: str
    state: str
    source: str
    proposed_by: str
    proposed_at: dt.datetime
    approved_by: str | None
    approved_at: dt.datetime | None
    retired_at: dt.datetime | None


def _engine(engine: Engine | None) -> Engine:
    if engine is not None:
        return engine
    from outreach.storage.db import get_engine

    return get_engine()



def _who(name: str) -> str:
    who = " ".join(name.split())
    if not who:
        raise VersionError("say who you are (--by NAME)")
    return who[:64]


def propose(
    path: Path, who: str, *, engine: Engine | None = None, now: dt.datetime | None = None
) -> str:
    """Validate the ladder at ``path`` and store it as a proposed version; returns the version.
    Proposing a version already on record changes nothing (and says its state)."""
    return propose_text(read_ladder_text(path), who, source=str(path), engine=engine, now=now)


def propose_text(
    content: str,
    who: str,
    *,
    source: str,
    engine: Engine | None = None,
    now: dt.datetime | None = None,
) -> str:
    """``propose`` for a ladder given as text (the console's draft box); ``source`` says where
    it came from. Raises LadderError with every YAML path and line of an invalid draft."""
    model, errors = check_ladder_text(content)
    if model is None:
        raise LadderError(source, errors)
    version = ladder_version(model)
    with _engine(engine).begin() as conn:
        state = conn.execute(
            text("SELECT state FROM ladder_version WHERE version = :v"), {"v": version}
        ).scalar()
        if state is not None:
            raise VersionError(f"version {version} is already on record ({state})")
        conn.execute(
            text(
                "INSERT INTO ladder_version (version, content, source, state, proposed_by, "
                "proposed_at) VALUES (:v, :c, :s, 'proposed', :by, :at)"
            ),
            {"v": version, "c": content, "s": source[:300], "by": _who(who),
             "at": now or utcnow()},
        )  # fmt: skip
    return version


def approve(
    version: str, who: str, *, engine: Engine | None = None, now: dt.datetime | None = None
) -> VersionRecord:
    """Make a proposed ``version`` the active ladder. The approver must not be its proposer;
    the version it replaces is retired in the same transaction."""
    at = now or utcnow()
    approver = _who(who)
    with _engine(engine).begin() as conn:
        row = conn.execute(
            text("SELECT state, proposed_by, content FROM ladder_version WHERE version = :v"),
            {"v": version},
        ).first()
        if row is None:
            raise VersionError(f"no proposed version {version!r}")
        if row.state != "proposed":
            raise VersionError(f"version {version} is {row.state}, not proposed")
        if row.proposed_by == approver:
            raise VersionError(
                f"version {version} was proposed by {approver}: a second person must approve it"
            )
        _parse(version, row.content)  # still valid with today's templates
        conn.execute(
            text(
                "UPDATE ladder_version SET state = 'retired', retired_at = :at "
                "WHERE state = 'active'"
            ),
            {"at": at},
        )
        moved = conn.execute(
            text(
                "UPDATE ladder_version SET state = 'active', approved_by = :by, approved_at = :at "
                "WHERE version = :v AND state = 'proposed'"
            ),
            {"by": approver, "at": at, "v": version},
        ).rowcount
        if moved != 1:
            raise VersionError(f"version {version} changed meanwhile; try again")
    return next(r for r in history(engine=engine) if r.version == version)


def history(*, engine: Engine | None = None) -> list[VersionRecord]:
    """Every version on record, newest proposal first."""
    with _engine(engine).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT version, state, source, proposed_by, proposed_at, approved_by, "
                "approved_at, retired_at FROM ladder_version ORDER BY proposed_at DESC, version"
            )
        ).all()
    from outreach.kernel.facts import as_instant

    def instant(value: object) -> dt.datetime | None:
        return None if value is None else as_instant(value)

    return [
        VersionRecord(r[0], r[1], r[2], r[3], as_instant(r[4]), r[5], instant(r[6]),
                      instant(r[7]))
        for r in rows
    ]  # fmt: skip


def _parse(version: str, content: str) -> Ladder:
    model, errors = check_ladder_text(content)
    if model is None:
        raise LadderError(f"ladder version {version}", errors)
    if ladder_version(model) != version:
        raise VersionError(f"stored ladder {version} no longer hashes to its version")
    return Ladder(model=model, version=version, source=f"ladder version {version}")


def ladder_in_force(*, engine: Engine | None = None) -> Ladder:
    """The active approved version; before any approval, the configured ladder file."""
    with _engine(engine).connect() as conn:
        row = conn.execute(
            text("SELECT version, content FROM ladder_version WHERE state = 'active'")
        ).first()
    if row is None:
        return load_ladder(settings.ladder_path())
    return _parse(row[0], row[1])
