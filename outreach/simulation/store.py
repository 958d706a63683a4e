"""The simulator's own tables in a simulation's database: what only the simulator knows (each
consumer's hidden ability and willingness, the true probability of paying, and whether and when
they paid). Its own SQLAlchemy metadata, created by the engine: never part of the application's
migrations, never in a real deployment's database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Float,
    Integer,
    MetaData,
    Table,
    delete,
    insert,
    select,
)

metadata = MetaData()

sim_truth = Table(
    "sim_truth",
    metadata,
    Column("account_id", Integer, primary_key=True),
    # The behavioural model's true probability that the consumer pays something within the
    # model's horizon from the simulation's start (outreach.simulation.behaviour, p_true).
    Column("p_true", Float, nullable=False),
    Column("ability", Float, nullable=False),
    Column("willingness", Float, nullable=False),
    # Paid something (a posted payment of the simulation) before start + horizon days; only
    # as far as the simulation ran (a run shorter than the horizon cannot know later payments).
    Column("paid_within_horizon", Boolean, nullable=False),
    Column("first_paid_on", Date, nullable=True),
)


@dataclass(frozen=True, slots=True)
class Truth:
    """What the simulator knows of one account (never personal data: an id and numbers)."""

    account_id: int
    p_true: float
    ability: float
    willingness: float
    paid_within_horizon: bool
    first_paid_on: dt.date | None

    def as_dict(self) -> dict[str, object]:
        return {
            "account_id": self.account_id,
            "p_true": self.p_true,
            "ability": self.ability,
            "willingness": self.willingness,
            "paid_within_horizon": self.paid_within_horizon,
            "first_paid_on": self.first_paid_on.isoformat() if self.first_paid_on else None,
        }


def create(engine: Engine) -> None:
    """Create the simulator's tables (idempotent)."""
    metadata.create_all(engine)


def write_truth(conn: Connection, truths: Iterable[Truth]) -> int:
    """Replace the truth table's rows with ``truths``; returns how many were written."""
    rows = [t.as_dict() | {"first_paid_on": t.first_paid_on} for t in truths]
    conn.execute(delete(sim_truth))
    if rows:
        conn.execute(insert(sim_truth), rows)
    return len(rows)


def read_truth(conn: Connection) -> Mapping[int, Truth]:
    """The truth table, by account id."""
    return {
        int(r.account_id): Truth(
            int(r.account_id),
            float(r.p_true),
            float(r.ability),
            float(r.willingness),
            bool(r.paid_within_horizon),
            r.first_paid_on,
        )  # fmt: skip
        for r in conn.execute(select(sim_truth).order_by(sim_truth.c.account_id))
    }
