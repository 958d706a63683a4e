"""Reruns under the real scheduler: ``outreach_daily`` triggered through the REST API on a running
Airflow (api-server, scheduler, dag-processor, LocalExecutor, SQLite metadata DB), with one
dispatch batch failing after a send and another batch's worker killed with SIGKILL mid-group;
then the failed task instances cleared through the REST API as ops staff would from the UI.

Every contact must end sent exactly once: in the ledger, in the outbox, and in the journal the
fault wrapper keeps of every message handed to the channel (tests/scheduler_faults/). Slow:
runs only with OUTREACH_TEST_SCHEDULER=1 (CI sets it).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_stack_loader import load_stack_module

pytestmark = [
    pytest.mark.scheduler,
    pytest.mark.skipif(
        os.environ.get("OUTREACH_TEST_SCHEDULER") != "1",
        reason="starts a real Airflow: set OUTREACH_TEST_SCHEDULER=1",
    ),
]

REPO = Path(__file__).resolve().parent.parent
FAULTS = Path(__file__).resolve().parent / "scheduler_faults"
DAG_ID = "outreach_daily"
DAY = dt.date(2025, 1, 7)  # a Tuesday, no US federal holiday
LOGICAL_DATE = dt.datetime.combine(DAY, dt.time(0, 0), tzinfo=dt.UTC)
RUN_ID = "e2e_faulted_day"
ACCOUNTS = 300
BATCH_SIZE = 100
CONF = {"clock": "logical", "batch_size": BATCH_SIZE}
SENDS_BEFORE_FAULT = 10  # inside the first claimed group (25): part of a group is in doubt
LEASE_SECONDS = 5  # a killed worker's claims are presumed dead after this (default 300)
CRASHED, KILLED = "sms", "email"  # the channel of the batch that raises / that is SIGKILLed


@dataclass
class Outcome:
    """What the faulted run left and what the cleared rerun made of it."""

    root: Path
    database_url: str
    outbox_path: Path
    fault_dir: Path
    failed_tasks: dict[str, str]  # task_id[map_index] -> state, after the faulted run
    ledger_at_failure: dict[str, dict[str, str]]  # channel -> key -> state
    outbox_at_failure: set[str]
    cleared: list[dict[str, Any]]
    final_state: str
    tasks_after: dict[str, str]
    killed_pid: int


def _ledger(database_url: str) -> dict[str, dict[str, str]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT channel, key, state FROM contact WHERE plan_date = :d"), {"d": DAY}
            ).all()
    finally:
        engine.dispose()
    out: dict[str, dict[str, str]] = {}
    for channel, key, state in rows:
        out.setdefault(channel, {})[key] = state
    return out


# The PostgreSQL server for the second run of this module: Airflow's metadata database and the
# application's, each a scratch database created here and dropped after.
PG_SERVER = os.environ.get("OUTREACH_TEST_SCHEDULER_PG", "postgres@127.0.0.1:5432")


def _pg_databases(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Two scratch databases (metadata, app) on PG_SERVER, dropped when the module is done."""
    import uuid

    psycopg = pytest.importorskip("psycopg")
    admin = f"postgresql://{PG_SERVER}/postgres"
    names = tuple(f"outreach_e2e_{uuid.uuid4().hex[:8]}_{part}" for part in ("airflow", "app"))
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_SERVER}: {exc}")

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    return names[0], names[1]


def _outbox(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return [
            (str(c), str(k)) for c, k in conn.execute("SELECT channel, key FROM outbox_messages")
        ]


def _journal(fault_dir: Path) -> list[tuple[str, str]]:
    path = fault_dir / "sends.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(channel, key) for channel, key, _pid in (line.split() for line in lines)]


def _journal_with_pids(fault_dir: Path) -> list[tuple[str, str, int]]:
    lines = (fault_dir / "sends.log").read_text().splitlines()
    return [(channel, key, int(pid)) for channel, key, pid in (line.split() for line in lines)]


def _task_states(api: Any) -> dict[str, str]:
    return {
        f"{ti['task_id']}[{ti['map_index']}]": str(ti["state"])
        for ti in api.task_instances(DAG_ID, RUN_ID)
    }


def _wait_for_file(path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        time.sleep(0.2)
    raise TimeoutError(f"{path.name} not written within {timeout:.0f}s")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def outcome(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outcome]:
    """One faulted day, run, cleared and finished: with SQLite for Airflow's metadata and the
    application, then with PostgreSQL for both (the production engine)."""
    stack_mod = load_stack_module()
    runner = stack_mod.load_airflow_local()
    root = tmp_path_factory.mktemp("scheduler-e2e")
    data, fault_dir = root / "data", root / "faults"
    data.mkdir()
    fault_dir.mkdir()
    app_env = {
        "OUTREACH_DATA_DIR": str(data),
        "OUTREACH_DATABASE_URL": f"sqlite:///{data / 'outreach.db'}",
        "OUTREACH_OUTBOX_URL": f"sqlite:///{data / 'outbox.db'}",
    }
    metadata_url = None
    if request.param == "postgresql":
        airflow_db, app_db = _pg_databases(request)
        app_env["OUTREACH_DATABASE_URL"] = f"postgresql+psycopg://{PG_SERVER}/{app_db}"
        metadata_url = f"postgresql+psycopg://{PG_SERVER}/{airflow_db}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    base.update(app_env)
    base.update(
        {
            # The seam (sitecustomize) and the no-retries cluster policy, for these processes only.
            "PYTHONPATH": os.pathsep.join(p for p in (str(FAULTS), base.get("PYTHONPATH")) if p),
            "OUTREACH_FAULT_DIR": str(fault_dir),
            "OUTREACH_FAULT_INJECT": f"{CRASHED}:*:{SENDS_BEFORE_FAULT}",
            "OUTREACH_FAULT_HANG": f"{KILLED}:*:{SENDS_BEFORE_FAULT}",
            "OUTREACH_SENDING_LEASE_SECONDS": str(LEASE_SECONDS),
        }
    )
    env = runner.airflow_env(root / "airflow", base=base)
    if metadata_url is not None:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_url
        # Airflow's async engine would pick asyncpg (not installed) for a plain postgresql URL.
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = metadata_url.replace(
            "+psycopg:", "+psycopg_async:"
        )
    with (root / "bootstrap.log").open("w") as log:
        runner.bootstrap(env, log)

    with pytest.MonkeyPatch.context() as patch:
        for name, value in app_env.items():
            patch.setenv(name, value)
        from outreach.portfolio.generator import generate
        from outreach.services import daily as service

        service.setup_database()
        (data / "inbox").mkdir()
        generate(ACCOUNTS, seed=11, out=data / "inbox" / "portfolio.jsonl", as_of=DAY)

    stack = stack_mod.AirflowStack.start(env, root / "logs")
    try:
        api = stack.api
        stack.wait_for_dag(DAG_ID)
        api.trigger_run(DAG_ID, RUN_ID, LOGICAL_DATE, CONF)
        pid_text = _wait_for_file(fault_dir / "hang.pid", timeout=240)
        killed_pid = int(pid_text.split()[0])
        os.kill(killed_pid, signal.SIGKILL)  # the task process, mid-group
        lease_over = time.monotonic() + LEASE_SECONDS + 1
        state = api.wait_for_run(DAG_ID, RUN_ID, {"failed", "success"}, timeout=300)
        assert state == "failed", stack.log_tail()
        failed = {k: v for k, v in _task_states(api).items() if v != "success"}
        ledger_at_failure = _ledger(app_env["OUTREACH_DATABASE_URL"])
        outbox_at_failure = {key for _c, key in _outbox(data / "outbox.db")}
        failed_ids = sorted({k.split("[")[0] for k, v in failed.items() if v == "failed"})
        # As docs/reruns.md tells ops staff: clear a killed worker's task once its claims are
        # past the lease, or the rerun leaves them `sending` for a later dispatch.
        time.sleep(max(0.0, lease_over - time.monotonic()))
        cleared = api.clear_failed(DAG_ID, RUN_ID, failed_ids)
        final = api.wait_for_run(DAG_ID, RUN_ID, {"failed", "success"}, timeout=300)
        yield Outcome(
            root=root,
            database_url=app_env["OUTREACH_DATABASE_URL"],
            outbox_path=data / "outbox.db",
            fault_dir=fault_dir,
            failed_tasks=failed,
            ledger_at_failure=ledger_at_failure,
            outbox_at_failure=outbox_at_failure,
            cleared=cleared,
            final_state=final,
            tasks_after=_task_states(api),
            killed_pid=killed_pid,
        )
    except BaseException:
        print(stack.log_tail())
        raise
    finally:
        stack.stop()


def test_faulted_run_fails_only_in_the_two_faulted_dispatch_batches(outcome: Outcome) -> None:
    failed = {k for k, v in outcome.failed_tasks.items() if v == "failed"}
    assert {k.split("[")[0] for k in failed} == {f"dispatch_{CRASHED}", f"dispatch_{KILLED}"}
    assert len(failed) == 2, outcome.failed_tasks  # one batch each, not the whole channel
    assert (outcome.fault_dir / "inject.fired").exists()
    assert (outcome.fault_dir / "hang.fired").exists()


def test_clearing_failed_tasks_through_the_rest_api_finishes_the_run(outcome: Outcome) -> None:
    cleared = {(ti["task_id"], ti["map_index"]) for ti in outcome.cleared}
    assert {task for task, _ in cleared} >= {f"dispatch_{CRASHED}", f"dispatch_{KILLED}"}
    assert outcome.final_state == "success", outcome.tasks_after
    assert set(outcome.tasks_after.values()) <= {"success", "skipped"}, outcome.tasks_after


def test_every_contact_was_handed_to_its_channel_at_most_once(outcome: Outcome) -> None:
    journal = _journal(outcome.fault_dir)
    assert journal, "the fault wrapper saw no sends: the seam was not active"
    twice = [key for key, n in Counter(key for _c, key in journal).items() if n > 1]
    assert not twice, f"{len(twice)} keys sent more than once, e.g. {twice[0][:16]}"


def test_ledger_outbox_and_journal_agree_on_every_sent_contact(outcome: Outcome) -> None:
    ledger = _ledger(outcome.database_url)
    outbox = _outbox(outcome.outbox_path)
    journal = _journal(outcome.fault_dir)
    for channel in (CRASHED, KILLED):
        sent = {k for k, s in ledger.get(channel, {}).items() if s == "sent"}
        in_outbox = [key for c, key in outbox if c == channel]
        assert sent, f"nothing {channel} was sent"
        assert len(in_outbox) == len(set(in_outbox)) == len(sent)
        assert set(in_outbox) == sent == {key for c, key in journal if c == channel}


def test_no_contact_is_left_in_doubt_after_the_rerun(outcome: Outcome) -> None:
    ledger = _ledger(outcome.database_url)
    left = Counter(s for rows in ledger.values() for s in rows.values())
    assert left["sending"] == 0 and left["uncertain"] == 0, dict(left)


def test_crashed_batch_contact_taken_by_the_outbox_is_settled_without_a_resend(
    outcome: Outcome,
) -> None:
    # The injected fault raised after the outbox took the message: the dispatcher could only
    # record it uncertain. The rerun found it by lookup and marked it sent; it went out once.
    at_failure = outcome.ledger_at_failure[CRASHED]
    in_doubt = {k for k, s in at_failure.items() if s == "uncertain"}
    assert len(in_doubt) == 1, Counter(at_failure.values())
    assert in_doubt <= outcome.outbox_at_failure
    assert all(_ledger(outcome.database_url)[CRASHED][k] == "sent" for k in in_doubt)


def test_sigkilled_batch_leaves_no_duplicate_and_no_lost_contact(outcome: Outcome) -> None:
    at_failure = outcome.ledger_at_failure[KILLED]
    before_kill = [
        k
        for c, k, pid in _journal_with_pids(outcome.fault_dir)
        if c == KILLED and pid == outcome.killed_pid
    ]
    # What the killed worker handed to the outbox: earlier groups recorded sent, the current
    # group's sends still `sending` in the ledger (the worker died before recording them).
    assert len(before_kill) == SENDS_BEFORE_FAULT
    assert set(before_kill) <= outcome.outbox_at_failure
    assert {at_failure[k] for k in before_kill} <= {"sent", "sending"}
    claimed = {k for k, s in at_failure.items() if s == "sending"}
    # The contact it hung on (at least) was claimed and never reached the outbox.
    assert claimed - outcome.outbox_at_failure, Counter(at_failure.values())
    after = _ledger(outcome.database_url)[KILLED]
    lost = [k for k in at_failure if at_failure[k] in ("planned", "sending") and after[k] != "sent"]
    assert not lost, f"{len(lost)} contacts of the killed batch never went out"
    journal = Counter(key for c, key in _journal(outcome.fault_dir) if c == KILLED)
    # Taken before the kill: settled by lookup, not resent; the rest of the group: sent once.
    assert all(journal[k] == 1 for k in claimed | set(before_kill))
