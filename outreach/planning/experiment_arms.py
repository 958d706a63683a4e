"""The planner's side of champion-challenger: for one run, the running experiments of
config/experiments.yaml and each arm's ladder, parsed once; for each batch, the arm and the
ladder each account is planned with (``outreach.measurement.experiments`` assigns).

An arm only chooses the ladder: the facts, the gates, the household and the caps are the same
for every arm, and an account has one arm, so two arms' ladders never both contact it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from outreach.kernel.facts import AccountRecord
from outreach.measurement.experiments import (
    HOLDOUT,
    IN_FORCE,
    ArmOf,
    Experiment,
    ExperimentsConfig,
    arms_for,
    is_version,
    load_experiments,
    promoted_experiments,
    write_assignments,
)
from outreach.planning.ladder import (
    Ladder,
    LadderError,
    check_ladder_text,
    ladder_version,
    load_ladder,
)


@lru_cache(maxsize=32)
def _ladder_file(path: str, mtime_ns: int) -> Ladder:
    return load_ladder(Path(path))


def ladder_file(path: Path) -> Ladder:
    """An arm's ladder file, validated like the main ladder; parsed again only when it changes."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return load_ladder(path)  # says it cannot be read, with the file's name
    return _ladder_file(str(path), mtime)


def stored_ladder(conn: Connection, version: str) -> Ladder:
    """An approved ladder version from the database (LadderError when there is none)."""
    row = conn.execute(
        text("SELECT content FROM ladder_version WHERE version = :v AND approved_by IS NOT NULL"),
        {"v": version},
    ).first()
    if row is None:
        raise LadderError(f"ladder version {version}", [])
    model, errors = check_ladder_text(row[0])
    if model is None or ladder_version(model) != version:
        raise LadderError(f"ladder version {version}", errors)
    return Ladder(model=model, version=version, source=f"ladder version {version}")


def resolve_ladder(
    ref: str, experiments: ExperimentsConfig, in_force: Ladder, conn: Connection
) -> Ladder:
    """The ladder an arm names: the ladder in force, an approved version, or a file."""
    if ref == IN_FORCE:
        return in_force
    if is_version(ref):
        if ref == in_force.version:
            return in_force
        return stored_ladder(conn, ref)
    return ladder_file(experiments.ladder_path(ref))


@dataclass
class ArmLadders:
    """The running experiments of one planning run and each arm's ladder (parsed once)."""

    day: dt.date
    in_force: Ladder
    running: list[Experiment]
    ladders: dict[str, Ladder] = field(default_factory=dict)  # ladder ref -> ladder

    def ladder_of(self, arm: ArmOf) -> Ladder:
        if arm.arm == HOLDOUT:
            return self.in_force
        return self.ladders.get(arm.ladder, self.in_force)

    def by_version(self) -> dict[str, Ladder]:
        """Every arm's ladder by its version (dispatch judges a contact with its own)."""
        return {lad.version: lad for lad in (self.in_force, *self.ladders.values())}

    def assign(
        self, conn: Connection, accounts: Mapping[int, AccountRecord] | Iterable[AccountRecord]
    ) -> tuple[dict[int, tuple[str, Ladder]], list[tuple[str, int, str]]]:
        """account id -> (arm label "EXPERIMENT/ARM", ladder) for the accounts in an experiment,
        and the new assignments to store with the plan (``write_assignments``)."""
        found = arms_for(conn, self.running, accounts)
        return (
            {aid: (arm.label, self.ladder_of(arm)) for aid, arm in found.arms.items()},
            found.new,
        )


def arm_ladders(
    engine: Engine,
    day: dt.date,
    in_force: Ladder,
    *,
    experiments: ExperimentsConfig | None = None,
) -> ArmLadders | None:
    """The experiments running on ``day`` with their arms' ladders, or None when none runs (the
    plan is then exactly as without experiments). Raises LadderError for an arm's bad ladder."""
    config = experiments if experiments is not None else load_experiments()
    candidates = [e for e in config.experiments if e.runs_on(day)]
    if not candidates:
        return None
    with engine.connect() as conn:
        promoted = promoted_experiments(conn)
        running = [e for e in candidates if e.id not in promoted]
        if not running:
            return None
        ladders = {
            arm.ladder: resolve_ladder(arm.ladder, config, in_force, conn)
            for exp in running
            for arm in exp.arms
        }
    return ArmLadders(day, in_force, running, ladders)


__all__ = ["ArmLadders", "arm_ladders", "resolve_ladder", "write_assignments"]
