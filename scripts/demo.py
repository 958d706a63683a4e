"""``make demo``: one day of outreach for a generated 10,000-account portfolio, end to end.

Sets up a local Airflow (SQLite, LocalExecutor) under ``data/airflow`` and the application's
SQLite databases under ``data/``, wipes the previous demo's application data, generates a
portfolio into the inbox, runs ``outreach_daily`` for today with ``clock=logical`` (the outbox
walks the day's send windows) and prints the day's summary. Airflow's own output goes to
``data/demo.log``. Exits non-zero if the DAG run does not succeed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import airflow_local  # noqa: E402  (sibling script)

REPO = airflow_local.REPO
DATA = REPO / "data"
AIRFLOW_HOME = DATA / "airflow"
LOG = DATA / "demo.log"
ACCOUNTS = 10_000
SEED = 7


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _app_env() -> dict[str, str]:
    """The application's settings for the demo: SQLite under data/, default ladder and config."""
    from outreach.kernel.identity import demo_identity

    return {
        "OUTREACH_DATA_DIR": str(DATA),
        "OUTREACH_DATABASE_URL": f"sqlite:///{DATA / 'outreach.db'}",
        "OUTREACH_OUTBOX_URL": f"sqlite:///{DATA / 'outbox.db'}",
        # Who is writing: the demo's own identity, marked as such (a real deployment must set
        # its own; without one, dispatch refuses to start). Reserved names: never a real firm.
        **demo_identity(),
    }


def _wipe_app_data() -> None:
    """Start each demo clean: app DB, outbox, inbox, rejects and drop files (Airflow's run
    history stays)."""
    for name in ("outreach.db", "outbox.db"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (DATA / f"{name}{suffix}").unlink(missing_ok=True)
    for directory in ("inbox", "rejects", "drop"):
        shutil.rmtree(DATA / directory, ignore_errors=True)


def _print_summary(as_of: dt.date) -> None:
    cli = Path(sys.executable).parent / "outreach"
    if cli.exists():
        result = subprocess.run(
            [str(cli), "summary", "--as-of", as_of.isoformat()],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            print(result.stdout.rstrip())
            return
        with LOG.open("a") as log:
            log.write(f"\n`outreach summary` failed ({result.returncode}):\n{result.stderr}\n")
    from outreach.services import daily as service

    summary = service.summary(as_of)
    try:
        from outreach.operations.reporting import format_summary

        print(format_summary(summary))
    except (ImportError, KeyError):
        print(json.dumps(summary, indent=2, sort_keys=True, default=str))


def _example_accounts(as_of: dt.date) -> dict[str, str]:
    """One account that was contacted and one a gate blocked, to try ``outreach explain`` on."""
    from sqlalchemy import text

    from outreach.storage.db import get_engine

    # The blocked example had nothing sent that day, so explain shows only what stopped it.
    query = text(
        "SELECT a.account_ref FROM contact c JOIN account a ON a.id = c.account_id "
        "WHERE c.plan_date = :day AND c.state = :state AND c.reasons LIKE :reason "
        "AND (:state = 'sent' OR NOT EXISTS (SELECT 1 FROM contact s WHERE "
        "s.account_id = c.account_id AND s.plan_date = :day AND s.state = 'sent')) "
        "ORDER BY a.id LIMIT 1"
    )
    examples: dict[str, str] = {}
    with get_engine().connect() as conn:
        for label, state, reason in (
            ("contacted", "sent", "%"),
            ("blocked", "suppressed", "core.%"),
        ):
            ref = conn.execute(query, {"day": as_of, "state": state, "reason": reason}).scalar()
            if ref:
                examples[label] = str(ref)
    return examples


def main() -> int:
    started = time.monotonic()
    os.environ.update(_app_env())
    env = airflow_local.airflow_env(AIRFLOW_HOME)
    os.environ.update(env)
    DATA.mkdir(parents=True, exist_ok=True)
    today = dt.datetime.now(dt.UTC).date()
    logical_date = dt.datetime.combine(today, dt.time(0, 0), tzinfo=dt.UTC)

    with LOG.open("w") as log:
        _step(f"Airflow: metadata DB, pools, DAGs in {AIRFLOW_HOME} (output in {LOG})")
        airflow_local.bootstrap(env, log)

        _step("Application database: fresh schema in data/outreach.db, empty outbox")
        _wipe_app_data()
        from outreach.portfolio.generator import generate
        from outreach.services import daily as service

        service.setup_database()

        inbox = DATA / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        _step(f"Portfolio: {ACCOUNTS:,} generated accounts (seed {SEED}) into {inbox}")
        generate(ACCOUNTS, seed=SEED, out=inbox / "portfolio.jsonl", as_of=today)

        _step(f"Running outreach_daily for {today} (clock=logical) ...")
        run_started = time.monotonic()
        result: dict[str, Any] = airflow_local.run_dag(
            env, "outreach_daily", logical_date, {"clock": "logical"}, log=log
        )
        run_seconds = time.monotonic() - run_started

    if result.get("state") != "success":
        print(f"\nDAG run did not succeed: {result.get('state')} {result.get('error', '')}")
        for task_id, states in sorted(result.get("tasks", {}).items()):
            if set(states) - {"success", "skipped"}:
                print(f"  {task_id}: {states}")
        print(f"The task logs and tracebacks are in {LOG}")
        return 1

    print(
        f"    run {result['run_id']}: success, {result['task_instances']} task instances "
        f"in {run_seconds:.0f} s\n"
    )
    _print_summary(today)
    examples = _example_accounts(today)
    explain = "".join(
        f"\n                              outreach explain {ref} --as-of {today}   ({label})"
        for label, ref in examples.items()
    )
    print(
        f"""
Where to look next (commands are in {Path(sys.executable).parent}):
  outbox (what was "sent"):   {DATA / "outbox.db"}
  letters and print manifest: {DATA / "drop" / "mailhouse" / today.isoformat()}
  agent call queue:           table call_task in {DATA / "outreach.db"} (docs/call-queue.md)
  why an account was (not) contacted:
                              outreach explain ACCOUNT --as-of {today}{explain}
  the day's counts again:     outreach summary --as-of {today}
  Airflow set-up, run and task logs (dag.test runs the tasks in this process):
                              {LOG}
  Airflow home (metadata DB): {AIRFLOW_HOME}

Demo finished in {time.monotonic() - started:.0f} s."""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
