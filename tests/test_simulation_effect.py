"""A treatment with a larger true effect shows a larger measured recovery: the whole simulator
(the real daily pipeline on its own database, the behavioural model answering) run twice on the
same seed, once with the calls' effect raised (config/simulation.yaml, channels.call.effect)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from outreach.simulation.behaviour import SimParams, load_params
from outreach.simulation.behaviour_config import PACKAGED
from outreach.simulation.engine import SimResult, simulate

START = dt.date(2025, 1, 6)  # a Monday
ACCOUNTS = 150
DAYS = 5
SEED = 31


def recovery(result: SimResult) -> dict[str, Decimal]:
    """Collected since the start / past due at the start, per currency (never summed across)."""
    past_due: dict[str, Decimal] = {}
    currency_of: dict[str, str] = {}
    portfolio = result.workdir / "inbox" / "done" / "portfolio.jsonl"
    for line in portfolio.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("record") == "account":
            currency = record["currency"]
            currency_of[record["account_ref"]] = currency
            past_due[currency] = past_due.get(currency, Decimal(0)) + Decimal(
                record["amount_past_due"]
            )
    collected = {currency: Decimal(0) for currency in past_due}
    engine = create_engine(result.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT a.account_ref, p.amount FROM payment p JOIN account a "
                    "ON a.id = p.account_id WHERE p.paid_on >= :start AND p.status = 'posted'"
                ),
                {"start": START},
            )
            for ref, amount in rows:
                currency = currency_of[ref]
                collected[currency] += Decimal(str(amount))
    finally:
        engine.dispose()
    return {c: collected[c] / past_due[c] for c in past_due if past_due[c] > 0}


def with_call_effect(params: SimParams, effect: float) -> SimParams:
    data = params.model_dump(mode="json")
    data["channels"]["call"]["effect"] = effect
    return SimParams.model_validate(data)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimResult, SimResult]:
    home = tmp_path_factory.mktemp("home")
    params = load_params(PACKAGED)
    with pytest.MonkeyPatch.context() as patch:
        # What the application's own database would be: never the simulation's.
        patch.setenv("OUTREACH_DATA_DIR", str(home))
        patch.setenv("OUTREACH_DATABASE_URL", f"sqlite:///{home / 'outreach.db'}")
        patch.setenv("OUTREACH_OUTBOX_URL", f"sqlite:///{home / 'outbox.db'}")
        plain = simulate(ACCOUNTS, DAYS, SEED, START, workdir=tmp_path_factory.mktemp("plain"),
                         params=params)  # fmt: skip
        stronger = simulate(ACCOUNTS, DAYS, SEED, START,
                            workdir=tmp_path_factory.mktemp("stronger"),
                            params=with_call_effect(params, 4 * params.channels["call"].effect))  # fmt: skip
    return plain, stronger


def test_a_larger_call_effect_shows_a_larger_measured_recovery(
    runs: tuple[SimResult, SimResult],
) -> None:
    plain, stronger = runs
    # The same seed: the same portfolio and the same consumers; only the calls' effect differs.
    assert plain.summary()["sent"]["call"] > 0
    before, after = recovery(plain), recovery(stronger)
    assert before.keys() == after.keys() and before
    assert all(after[c] >= before[c] for c in before)
    assert sum(after.values()) > sum(before.values())
    assert stronger.summary()["payments"] > plain.summary()["payments"]
