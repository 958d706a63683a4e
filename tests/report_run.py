"""A small real run for the report tests: a generated portfolio imported, then a few days of
the daily pipeline through the services (settle, plan, dispatch on the outbox with the logical
clock) and the payment processor's payments between the days (the demo's)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
START = dt.date(2026, 11, 16)  # a Monday


def _demo() -> Any:
    spec = importlib.util.spec_from_file_location("demo_for_reports", REPO / "scripts/demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_days(data: Path, accounts: int = 200, days: int = 3, seed: int = 7) -> dict[str, Any]:
    """Run ``days`` days from START on the app DB the environment names (OUTREACH_*); returns
    the first and last day."""
    from outreach.dispatch.dispatcher import dispatch_range, dispatch_ranges
    from outreach.kernel import clock
    from outreach.planning.planner import plan_range
    from outreach.portfolio.generator import generate
    from outreach.services import daily as service
    from outreach.storage.db import get_engine

    with clock.use(dt.datetime.combine(START, dt.time(9))):
        service.setup_database()
        generate(accounts, seed=seed, out=data / "inbox" / "portfolio.jsonl", as_of=START)
        service.ingest()
    # The daily DAG's steps for the whole portfolio in one range (the config is checked once:
    # the services check it on every call, which is what a DAG task wants, not a test).
    engine = get_engine()
    ladder = service.checked_config().ladder
    last = START + dt.timedelta(days=days - 1)
    for n in range(days):
        day = START + dt.timedelta(days=n)
        with clock.use(dt.datetime.combine(day, dt.time(6))):
            service.settle(day, clock="logical")
            plan_range(engine, ladder, day, 0, 10**9)
            for channel in service.channel_kinds():
                if dispatch_ranges(engine, day, channel, 10**6):  # something planned to send
                    dispatch_range(engine, day, channel, 0, 10**9, clock="logical")
    _demo()._pay_between_days(START, last + dt.timedelta(days=1))
    return {"first": START, "last": last}


_BUILT: dict[tuple[int, int], dict[str, Any]] = {}


def shared_run(root: Path, accounts: int = 40, days: int = 2) -> dict[str, Any]:
    """A run built once per test process (the report tests only read it): its data dir, with
    the environment variables that name it, and its first and last day."""
    import os

    key = (accounts, days)
    if key not in _BUILT:
        data = root / "data"
        data.mkdir(parents=True)
        env = {
            "OUTREACH_DATA_DIR": str(data),
            "OUTREACH_DATABASE_URL": f"sqlite:///{data / 'outreach.db'}",
            "OUTREACH_OUTBOX_URL": f"sqlite:///{data / 'outbox.db'}",
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            days_run = run_days(data, accounts=accounts, days=days)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        _BUILT[key] = {"data": data, "env": env, **days_run}
    return _BUILT[key]
