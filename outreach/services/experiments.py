"""Champion-challenger use cases, for ``outreach experiments`` and the console's experiments page:
check the file (every arm's ladder validated like the main ladder), list the experiments with
their arms and assignments, the results per arm with intervals and tests, and the promotion of
a winner's ladder through the ladder's two-person approval (docs/experiments.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from outreach.kernel.clock import utcnow
from outreach.kernel.config_yaml import ConfigError
from outreach.measurement import experiment_stats as st
from outreach.measurement.experiments import (
    HOLDOUT,
    IN_FORCE,
    PROMOTED,
    PROPOSED,
    ExperimentsConfig,
    ExperimentsError,
    assignment_counts,
    check_experiments_text,
    events,
    experiments_path,
    is_version,
    load_experiments,
    record_event,
)
from outreach.measurement.kpis import arm_outcomes
from outreach.planning.ladder import LadderError, load_ladder, read_ladder_text
from outreach.planning.ladder_versions import VersionError, ladder_in_force, propose_text

__all__ = [
    "ExperimentError", "ExperimentsError", "check", "overview", "promote", "results",
]  # fmt: skip


class ExperimentError(ValueError):
    """A request about an experiment that cannot be done; says why."""


def _engine(engine: Engine | None) -> Engine:
    if engine is not None:
        return engine
    from outreach.storage.db import get_engine

    return get_engine()


def check(path: Path | None = None, *, engine: Engine | None = None) -> list[str]:
    """Every problem of the experiments file, one ``file: yaml.path (line N): message`` a line:
    its shape and shares, then each arm's ladder (a file validated like the main ladder, or an
    approved version on record when a database is given)."""
    path = path or experiments_path()
    if not path.is_file():
        return []
    source = str(path)
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [f"{source}: (file): cannot read: {exc.strerror}"]
    model, errors, lines = check_experiments_text(content, str(path.parent))
    if model is None:
        return [f"{source}: {e}" for e in errors]
    problems: list[str] = []
    approved: set[str] | None = None
    if engine is not None:
        try:
            with engine.connect() as conn:
                approved = {
                    r[0]
                    for r in conn.execute(
                        text("SELECT version FROM ladder_version WHERE approved_by IS NOT NULL")
                    )
                }
        except SQLAlchemyError:
            approved = None  # no schema yet: the database check says so
    for i, exp in enumerate(model.experiments):
        for j, arm in enumerate(exp.arms):
            where = f"experiments[{i}].arms[{j}].ladder"
            line = lines.get(where) or lines.get(f"experiments[{i}].arms[{j}]")
            if arm.ladder == IN_FORCE:
                continue
            if is_version(arm.ladder):
                if approved is not None and arm.ladder not in approved:
                    why = "no approved ladder version with this hash (outreach config versions)"
                    problems.append(f"{source}: {ConfigError(where, why, line)}")
                continue
            ladder_path = model.ladder_path(arm.ladder)
            try:
                load_ladder(ladder_path)
            except LadderError as exc:
                why = f"the ladder {arm.ladder} does not validate ({len(exc.errors)} error(s))"
                problems.append(f"{source}: {ConfigError(where, why, line)}")
                problems.extend(f"{ladder_path}: {e}" for e in exc.errors)
    return problems


def account_outcomes(
    engine: Engine, experiment_id: str, date_from: dt.date, date_to: dt.date
) -> list[st.AccountOutcome]:
    """Each assigned account's outcome over the period, as the KPIs count it
    (``outreach.measurement.kpis.arm_outcomes``, docs/kpis.md)."""
    return [
        st.AccountOutcome(o.arm, o.account_id, o.currency, o.past_due_at_entry, o.collected,
                          o.contacted, o.right_party, o.promises, o.promises_kept)
        for o in arm_outcomes(engine, experiment_id, date_from, date_to)
    ]  # fmt: skip


def _config() -> ExperimentsConfig:
    return load_experiments()


def _experiment(config: ExperimentsConfig, experiment_id: str) -> Any:
    exp = config.get(experiment_id)
    if exp is None:
        raise ExperimentError(f"no experiment {experiment_id!r} in {experiments_path().name}")
    return exp


def overview(*, engine: Engine | None = None) -> list[dict[str, Any]]:
    """Every experiment of the file: status, dates, arms with their shares and ladders, how many
    accounts each arm holds, and its life (events). No account data."""
    config = _config()
    db = _engine(engine)
    out: list[dict[str, Any]] = []
    with db.connect() as conn:
        promoted = {r[0] for r in conn.execute(
            text("SELECT DISTINCT experiment_id FROM experiment_event WHERE action = :p"),
            {"p": PROMOTED})}  # fmt: skip
        for exp in config.experiments:
            counts = assignment_counts(conn, exp.id)
            arms = [
                {"name": a.name, "ladder": a.ladder, "share": a.share,
                 "champion": a.name == exp.champion_arm, "accounts": counts.get(a.name, 0)}
                for a in exp.arms
            ]  # fmt: skip
            arms.append({"name": HOLDOUT, "ladder": IN_FORCE, "share": exp.holdout,
                         "champion": False, "accounts": counts.get(HOLDOUT, 0)})  # fmt: skip
            out.append({
                "id": exp.id,
                "description": exp.description,
                "status": PROMOTED if exp.id in promoted else exp.status,
                "start": exp.start.isoformat() if exp.start else None,
                "end": exp.end.isoformat() if exp.end else None,
                "champion": exp.champion_arm,
                "eligibility": exp.eligibility.model_dump(mode="json", exclude_none=True),
                "arms": arms,
                "accounts": sum(counts.values()),
                "events": events(conn, exp.id),
            })  # fmt: skip
    return out


def results(
    experiment_id: str,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    engine: Engine | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Per arm (and currency): accounts, past due at entry, collected, the recovery rate, the
    contact rate and the promise-kept rate with 95% intervals, and each challenger's tests
    against the champion. ``date_from`` defaults to the experiment's start (or its first
    assignment), ``date_to`` to today."""
    config = _config()
    exp = _experiment(config, experiment_id)
    db = _engine(engine)
    with db.connect() as conn:
        first = conn.execute(
            text("SELECT MIN(assigned_on) FROM experiment_assignment WHERE experiment_id = :e"),
            {"e": exp.id},
        ).scalar()
        lo = date_from or exp.start or (dt.date.fromisoformat(str(first)) if first else None)
    hi = date_to or utcnow().date()
    outcomes = account_outcomes(db, exp.id, lo, hi) if lo is not None else []
    names = [a.name for a in exp.arms]
    found = st.arm_results(outcomes, names, exp.champion_arm, alpha=alpha)
    return {
        "experiment": exp.id,
        "from": lo.isoformat() if lo else None,
        "to": hi.isoformat(),
        "champion": exp.champion_arm,
        "alpha": alpha,
        "accounts": len(outcomes),
        "arms": [r.as_dict() for r in found],
    }


def _arm_ladder_text(config: ExperimentsConfig, ladder: str, engine: Engine) -> tuple[str, str]:
    """The arm's ladder as text and where it came from."""
    if is_version(ladder):
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT content FROM ladder_version WHERE version = :v"), {"v": ladder}
            ).first()
        if row is None:
            raise ExperimentError(f"no ladder version {ladder} on record")
        return row[0], f"ladder version {ladder}"
    path = config.ladder_path(ladder)
    return read_ladder_text(path), str(path)


def promote(
    experiment_id: str, arm: str, who: str, *, engine: Engine | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Propose the winner ``arm``'s ladder as a new ladder version (``outreach config propose``'s
    rule: validated, stored, not in force) and record it on the experiment. A second person
    approves it with ``outreach config approve VERSION --by NAME``; the experiment is then
    recorded as promoted and stops assigning (``outreach.services.ladders.approve``)."""
    at = now or utcnow()
    config = _config()
    exp = _experiment(config, experiment_id)
    chosen = exp.arm(arm)
    if chosen is None:
        raise ExperimentError(f"experiment {exp.id} has no arm {arm!r}")
    db = _engine(engine)
    in_force = ladder_in_force(engine=db)
    if chosen.ladder == IN_FORCE or chosen.ladder == in_force.version:
        raise ExperimentError(f"arm {arm} plans with the ladder in force: nothing to promote")
    with db.connect() as conn:
        done = conn.execute(
            text("SELECT COUNT(*) FROM experiment_event WHERE experiment_id = :e AND action = :p"),
            {"e": exp.id, "p": PROMOTED},
        ).scalar()
    if done:
        raise ExperimentError(f"experiment {exp.id} was already promoted")
    content, source = _arm_ladder_text(config, chosen.ladder, db)
    try:
        version = propose_text(content, who, source=f"experiment {exp.id} arm {arm} ({source})",
                               engine=db, now=at)  # fmt: skip
    except VersionError as exc:
        raise ExperimentError(str(exc)) from None
    with db.begin() as conn:
        record_event(conn, exp.id, PROPOSED, who, at, arm=arm, ladder_version=version,
                     reason="winner proposed as the ladder in force",
                     detail={"source": source[:200]})  # fmt: skip
    return {"experiment": exp.id, "arm": arm, "version": version, "state": "proposed",
            "approve_with": f"outreach config approve {version} --by NAME"}  # fmt: skip


def sample_size(
    experiment_id: str, *, uplift: float = 0.05, engine: Engine | None = None
) -> dict[str, Any]:
    """Accounts per arm to detect ``uplift`` in the recovery rate and in the promise-kept rate
    (alpha 0.05, power 0.8), from the champion's outcomes so far."""
    config = _config()
    exp = _experiment(config, experiment_id)
    db = _engine(engine)
    with db.connect() as conn:
        first = conn.execute(
            text("SELECT MIN(assigned_on) FROM experiment_assignment WHERE experiment_id = :e"),
            {"e": exp.id},
        ).scalar()
    lo = exp.start or (dt.date.fromisoformat(str(first)) if first else utcnow().date())
    outcomes = [o for o in account_outcomes(db, exp.id, lo, utcnow().date())
                if o.arm == exp.champion_arm]  # fmt: skip
    ys = [float(o.collected) for o in outcomes]
    xs = [float(o.past_due_at_entry) for o in outcomes]
    sd = st.linearised_sd(ys, xs)
    promises = sum(o.promises for o in outcomes)
    kept = sum(o.promises_kept for o in outcomes) / promises if promises else None
    return {
        "experiment": exp.id,
        "uplift": uplift,
        "champion_accounts": len(outcomes),
        "recovery_sd": sd,
        "accounts_per_arm_recovery": st.sample_size_ratio(sd, uplift) if sd > 0 else None,
        "promise_kept_rate": kept,
        "promises_per_arm": (st.sample_size_proportion(kept, uplift)
                             if kept is not None and kept + uplift < 1 else None),
    }  # fmt: skip
