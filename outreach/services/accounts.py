"""Accounts' use cases for the CLI: generate a synthetic portfolio, import a portfolio file,
explain one account's plan (every gate's verdict and the facts used)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from outreach.kernel.facts import account_ids_by_ref, load_accounts
from outreach.kernel.policy_settings import policy_settings
from outreach.measurement.account_scores import account_score
from outreach.planning.experiment_arms import arm_ladders
from outreach.planning.explain import explain_account, explain_resolution, prime_household
from outreach.planning.judging import plan_step_hook
from outreach.planning.ladder import Ladder
from outreach.planning.planner import plan_cutoff
from outreach.portfolio.files import ImportFileError, ImportInterruptedError
from outreach.portfolio.generator import GenerateReport
from outreach.portfolio.generator import generate as _generate
from outreach.portfolio.importer import ImportReport
from outreach.portfolio.importer import import_file as _import_file
from policies.packs import assert_valid

__all__ = [
    "ImportFileError", "ImportInterruptedError", "explain", "generate", "import_file",
]  # fmt: skip


def generate(accounts: int, seed: int, out: Path, as_of: dt.date) -> GenerateReport:
    """Write a synthetic portfolio of ``accounts`` accounts in the import format."""
    return _generate(accounts, seed, out, as_of)


def import_file(path: Path, *, engine: Engine, rejects_path: Path | None = None) -> ImportReport:
    """Import a portfolio file (ImportFileError: unreadable, nothing written;
    ImportInterruptedError: stopped part-way)."""
    return _import_file(path, engine=engine, rejects_path=rejects_path)


def explain(engine: Engine, ladder: Ladder, account_ref: str, as_of: dt.date
            ) -> dict[str, Any] | None:  # fmt: skip
    """Every gate's verdict for the account ``account_ref`` on ``as_of`` and the facts used, as
    the plan would judge it; None when there is no such account."""
    with engine.connect() as conn:
        account_id = account_ids_by_ref(conn, [account_ref]).get(account_ref)
        if account_id is None:
            return None
        accounts = load_accounts(
            conn, account_id, account_id, day=as_of, cutoff=plan_cutoff(as_of)
        )
        assert_valid()
        settings = policy_settings()
        hook = plan_step_hook(engine, as_of)
        # What the plan judged for the person's other accounts first (outreach.planning.household).
        prime_household(
            conn, ladder, accounts, account_id, as_of, role=settings.role,
            enabled=settings.householding, step_hook=hook,
        )  # fmt: skip
        resolution = explain_resolution(conn, account_id)
        # The score the stage entry read: band, model version, the top factors (no amounts).
        score = account_score(conn, account_id, as_of)
        # In a running experiment the account is planned with its arm's ladder: explained so.
        arm: str | None = None
        arms = arm_ladders(engine, as_of, ladder)
        if arms is not None:
            found, _ = arms.assign(conn, [accounts[account_id]])
            if account_id in found:
                arm, ladder = found[account_id]
    explanation: dict[str, Any] = explain_account(
        ladder, accounts[account_id], as_of, role=settings.role, step_hook=hook
    )
    return {**explanation, "experiment_arm": arm, **resolution, "score": score}
