"""Champion-challenger experiments: config/experiments.yaml (validated like every file operations
write: each error names its YAML path and line), the deterministic assignment of accounts to
arms, and which running experiment and arm each account is planned in (sticky: the first
assignment is stored in ``experiment_assignment`` and read back for the experiment's life).

The statistics of the results are in ``outreach.measurement.experiment_stats``. Nothing here
decides a contact: an arm only chooses the ladder an account is planned with; the gates judge
every arm alike. docs/experiments.md explains the file, the assignment and the statistics.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from sqlalchemy import Connection, bindparam, text

from outreach import settings
from outreach.kernel.config_yaml import (
    ConfigError,
    ConfigFileError,
    located,
    read_config_file,
    validate_yaml,
)
from outreach.kernel.facts import AccountRecord

HOLDOUT = "holdout"
# An arm whose ``ladder`` is this plans with the ladder in force (the champion, usually).
IN_FORCE = "in_force"
STATUSES = ("draft", "running", "stopped")
# A ladder version is the first 12 hex digits of a hash (outreach.planning.ladder.ladder_version).
VERSION_PATTERN = re.compile(r"^[0-9a-f]{12}$")
SHARE_TOLERANCE = 1e-9


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Arm(_Strict):
    """One arm: the ladder its accounts are planned with (a file, relative to the experiments
    file's folder, an approved ladder version, or ``in_force``) and its share of the eligible
    accounts."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    ladder: str = IN_FORCE
    share: float = Field(ge=0, le=1)


class Eligibility(_Strict):
    """Which accounts an experiment takes (each list: any of; absent: all). A jurisdiction is a
    country (``US``) or a country and region (``US-NY``)."""

    jurisdictions: tuple[str, ...] | None = None
    products: tuple[str, ...] | None = None
    segments: tuple[str, ...] | None = None
    score_bands: tuple[str, ...] | None = None

    def admits(self, account: AccountRecord) -> bool:
        if self.jurisdictions is not None:
            here = {account.country, f"{account.country}-{account.region or ''}"}
            if not here & set(self.jurisdictions):
                return False
        if self.products is not None and account.product not in self.products:
            return False
        if self.segments is not None and account.segment not in self.segments:
            return False
        if self.score_bands is not None:
            band = getattr(account, "score_band", None)
            if band not in self.score_bands:
                return False
        return True


class Experiment(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$")
    description: str = ""
    status: str = "draft"
    start: dt.date | None = None
    end: dt.date | None = None
    # The arm the others are compared with (default: the first listed).
    champion: str | None = None
    arms: tuple[Arm, ...] = Field(min_length=1)
    holdout: float = Field(default=0.0, ge=0, le=1)
    eligibility: Eligibility = Eligibility()

    @property
    def champion_arm(self) -> str:
        return self.champion or self.arms[0].name

    def arm(self, name: str) -> Arm | None:
        return next((a for a in self.arms if a.name == name), None)

    def shares(self) -> list[tuple[str, float]]:
        return [(a.name, a.share) for a in self.arms]

    def runs_on(self, day: dt.date) -> bool:
        """Running on ``day``: status running, within start..end (both included)."""
        return (
            self.status == "running"
            and (self.start is None or self.start <= day)
            and (self.end is None or day <= self.end)
        )

    def assign(self, account_id: int) -> str:
        return assign(self.id, account_id, self.shares())


class ExperimentsConfig(_Strict):
    experiments: tuple[Experiment, ...] = ()
    # Where arm ladder files are found (set by the loader: the experiments file's folder); not
    # a key of the file.
    _base_dir: str = PrivateAttr(default="")

    @property
    def base_dir(self) -> str:
        return self._base_dir

    def get(self, experiment_id: str) -> Experiment | None:
        return next((e for e in self.experiments if e.id == experiment_id), None)

    def running(self, day: dt.date, promoted: Iterable[str] = ()) -> list[Experiment]:
        """The experiments running on ``day`` in file order (the order decides which takes an
        account eligible for two), less those whose winner was promoted."""
        done = set(promoted)
        return [e for e in self.experiments if e.runs_on(day) and e.id not in done]

    def ladder_path(self, ref: str) -> Path:
        path = Path(ref)
        return path if path.is_absolute() else Path(self._base_dir or ".") / path


class ExperimentsError(ConfigFileError):
    pass


def is_version(ref: str) -> bool:
    return bool(VERSION_PATTERN.match(ref))


def _semantic_errors(model: ExperimentsConfig) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, exp in enumerate(model.experiments):
        where = f"experiments[{i}]"
        if exp.id in seen:
            errors.append((f"{where}.id", f"'{exp.id}' appears twice"))
        seen.add(exp.id)
        if exp.status not in STATUSES:
            errors.append((f"{where}.status", f"must be one of {', '.join(STATUSES)}"))
        if exp.start and exp.end and exp.end < exp.start:
            errors.append((f"{where}.end", "end is before start"))
        names: set[str] = set()
        for j, arm in enumerate(exp.arms):
            if arm.name == HOLDOUT:
                errors.append(
                    (
                        f"{where}.arms[{j}].name",
                        f"'{HOLDOUT}' names the accounts kept out (holdout:), not an arm",
                    )
                )
            elif arm.name in names:
                errors.append((f"{where}.arms[{j}].name", f"'{arm.name}' appears twice"))
            names.add(arm.name)
        total = sum(a.share for a in exp.arms) + exp.holdout
        if abs(total - 1.0) > SHARE_TOLERANCE:
            errors.append((f"{where}.arms", f"the shares and the holdout add up to {total:g}, "
                                             "not 1"))  # fmt: skip
        if exp.champion is not None and exp.champion not in names:
            errors.append((f"{where}.champion", "not the name of one of the arms"))
    return errors


def check_experiments_text(
    text_: str, base_dir: str = ""
) -> tuple[ExperimentsConfig | None, list[ConfigError], dict[str, int]]:
    """The experiments file validated: the model, or every error with its YAML path and line;
    and the line of every path (for the checks that need the database or the ladders)."""
    model, errors, lines = validate_yaml(text_ or "{}", ExperimentsConfig)
    if model is None:
        return None, errors, lines
    found = located(_semantic_errors(model), lines)
    if found:
        return None, found, lines
    model._base_dir = base_dir
    return model, [], lines


def parse_experiments(text_: str, source: str) -> ExperimentsConfig:
    model, errors, _ = check_experiments_text(text_, str(Path(source).parent))
    if model is None:
        raise ExperimentsError(source, errors)
    return model


def experiments_path() -> Path:
    return Path(settings.EXPERIMENTS.get(settings.config_dir() / "experiments.yaml"))


def load_experiments(path: Path | None = None) -> ExperimentsConfig:
    """The experiments file (read again when it changes); none when there is no file."""
    return read_config_file(path or experiments_path(), parse_experiments, ExperimentsConfig)


# --- assignment -------------------------------------------------------------------------------


def position(experiment_id: str, account_id: int) -> float:
    """Where an account falls in [0, 1) for an experiment: the first 64 bits of
    sha256("experiment_id:account_id"), over 2**64. The same for every run and machine."""
    digest = hashlib.sha256(f"{experiment_id}:{account_id}".encode()).hexdigest()
    return int(digest[:16], 16) / 2**64


def assign(experiment_id: str, account_id: int, arms: Sequence[tuple[str, float]]) -> str:
    """The arm of ``account_id``: arms by cumulative share in the order listed, the holdout
    (whatever the shares leave) last. Pure."""
    u = position(experiment_id, account_id)
    edge = 0.0
    for name, share in arms:
        edge += share
        if u < edge:
            return name
    return HOLDOUT


def arm_label(experiment_id: str, arm: str) -> str:
    """The arm as contacts and decisions carry it: "EXPERIMENT/ARM"."""
    return f"{experiment_id}/{arm}"


@dataclass(frozen=True, slots=True)
class ArmOf:
    """An account's place in a running experiment: the arm and the ladder it is planned with
    (``ladder`` a file path, a version, or ``in_force`` for the ladder in force; the holdout
    always plans with the ladder in force)."""

    experiment_id: str
    arm: str
    ladder: str

    @property
    def label(self) -> str:
        return arm_label(self.experiment_id, self.arm)


def promoted_experiments(conn: Connection) -> set[str]:
    """The experiments whose winner was promoted: they no longer assign or plan."""
    return {
        r[0]
        for r in conn.execute(
            text("SELECT DISTINCT experiment_id FROM experiment_event WHERE action = 'promoted'")
        )
    }


def stored_assignments(
    conn: Connection, experiment_ids: Sequence[str], account_ids: Sequence[int]
) -> dict[int, tuple[str, str]]:
    """account id -> (experiment id, arm) stored for these experiments."""
    if not experiment_ids or not account_ids:
        return {}
    out: dict[int, tuple[str, str]] = {}
    lo, hi = min(account_ids), max(account_ids)
    rows = conn.execute(
        text(
            "SELECT account_id, experiment_id, arm FROM experiment_assignment "
            "WHERE experiment_id IN :ids AND account_id BETWEEN :lo AND :hi"
        ).bindparams(bindparam("ids", expanding=True)),
        {"ids": list(experiment_ids), "lo": lo, "hi": hi},
    )
    order = {e: i for i, e in enumerate(experiment_ids)}
    for account_id, experiment_id, arm in rows:
        held = out.get(account_id)
        # Two stored experiments for one account (possible only if the file's order changed):
        # the one listed first.
        if held is None or order[experiment_id] < order[held[0]]:
            out[account_id] = (experiment_id, arm)
    return out


@dataclass
class Assignments:
    """The arms of one batch of accounts: ``arms`` by account id, and the assignments made now
    (to be stored with the batch's plan, ``write_assignments``)."""

    arms: dict[int, ArmOf]
    new: list[tuple[str, int, str]]  # (experiment id, account id, arm)


def arms_for(
    conn: Connection,
    running: Sequence[Experiment],
    accounts: Mapping[int, AccountRecord] | Iterable[AccountRecord],
) -> Assignments:
    """The arm of each account in a running experiment. An account keeps the arm stored for
    it; otherwise the first running experiment (in file order) whose eligibility admits it
    assigns it by hash. One experiment per account at a time."""
    records = list(accounts.values()) if isinstance(accounts, Mapping) else list(accounts)
    if not running or not records:
        return Assignments({}, [])
    by_id = {e.id: e for e in running}
    stored = stored_assignments(conn, [e.id for e in running], [a.id for a in records])
    arms: dict[int, ArmOf] = {}
    new: list[tuple[str, int, str]] = []
    for account in records:
        held = stored.get(account.id)
        if held is not None:
            exp, name = by_id[held[0]], held[1]
        else:
            found = next((e for e in running if e.eligibility.admits(account)), None)
            if found is None:
                continue
            exp, name = found, found.assign(account.id)
            new.append((exp.id, account.id, name))
        arm = exp.arm(name)
        # An arm removed from the file since: its accounts plan with the ladder in force.
        ladder = arm.ladder if arm is not None else IN_FORCE
        arms[account.id] = ArmOf(exp.id, name, ladder)
    return Assignments(arms, new)


def write_assignments(conn: Connection, new: Sequence[tuple[str, int, str]], day: dt.date) -> None:
    """Store the assignments made today; one already stored (a rerun) is kept as it was."""
    if not new:
        return
    dialect = conn.dialect.name
    verb = "INSERT OR IGNORE INTO" if dialect == "sqlite" else "INSERT INTO"
    tail = "" if dialect == "sqlite" else " ON CONFLICT DO NOTHING"
    conn.execute(
        text(
            f"{verb} experiment_assignment (experiment_id, account_id, arm, assigned_on) "
            f"VALUES (:e, :a, :arm, :day){tail}"
        ),
        [{"e": e, "a": a, "arm": arm, "day": day} for e, a, arm in new],
    )


# --- the experiment's life --------------------------------------------------------------------

PROPOSED = "winner_proposed"
PROMOTED = "promoted"


def record_event(
    conn: Connection,
    experiment_id: str,
    action: str,
    actor: str,
    at: dt.datetime,
    *,
    arm: str | None = None,
    ladder_version: str | None = None,
    reason: str = "",
    detail: dict[str, object] | None = None,
) -> None:
    conn.execute(
        text(
            "INSERT INTO experiment_event (experiment_id, action, arm, ladder_version, "
            "occurred_at, actor, reason, detail) VALUES (:e, :action, :arm, :v, :at, :actor, "
            ":reason, :detail)"
        ),
        {"e": experiment_id, "action": action, "arm": arm, "v": ladder_version, "at": at,
         "actor": actor[:64], "reason": reason[:300],
         "detail": json.dumps(detail or {}, sort_keys=True)},
    )  # fmt: skip


def events(conn: Connection, experiment_id: str) -> list[dict[str, object]]:
    rows = conn.execute(
        text(
            "SELECT action, arm, ladder_version, occurred_at, actor, reason FROM experiment_event "
            "WHERE experiment_id = :e ORDER BY occurred_at, id"
        ),
        {"e": experiment_id},
    )
    return [
        {"action": r[0], "arm": r[1], "ladder_version": r[2], "occurred_at": str(r[3]),
         "actor": r[4], "reason": r[5]}
        for r in rows
    ]  # fmt: skip


def record_promoted(
    conn: Connection, ladder_version: str, approver: str, at: dt.datetime
) -> list[str]:
    """After ``ladder_version`` was approved: each experiment whose winner it was proposed as is
    recorded as promoted (it stops assigning and planning). Returns their ids."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT experiment_id, arm FROM experiment_event WHERE action = :proposed "
            "AND ladder_version = :v AND experiment_id NOT IN (SELECT experiment_id FROM "
            "experiment_event WHERE action = :promoted)"
        ),
        {"proposed": PROPOSED, "promoted": PROMOTED, "v": ladder_version},
    ).all()
    for experiment_id, arm in rows:
        record_event(conn, experiment_id, PROMOTED, approver, at, arm=arm,
                     ladder_version=ladder_version,
                     reason="the winner's ladder was approved by a second person")  # fmt: skip
    return [r[0] for r in rows]


def assignment_counts(conn: Connection, experiment_id: str) -> dict[str, int]:
    return {
        r[0]: int(r[1])
        for r in conn.execute(
            text(
                "SELECT arm, COUNT(*) FROM experiment_assignment WHERE experiment_id = :e "
                "GROUP BY arm"
            ),
            {"e": experiment_id},
        )
    }
