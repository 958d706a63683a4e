"""The production topology without containers: PostgreSQL, Redis, the CeleryExecutor, one day.

What ``docker-compose.yaml`` runs in containers, run here as plain processes, for CI (which has
no Docker engine): given a PostgreSQL server, this creates two scratch databases (Airflow's
metadata and the application's), writes an ``airflow.cfg`` for the CeleryExecutor (Redis as
the broker, PostgreSQL as the result backend) into a temporary AIRFLOW_HOME, migrates, creates
the dispatch pools, starts the scheduler, the dag-processor, the api-server (the workers' Task
Execution API) and one ``airflow celery worker``, drops a generated portfolio into the app's
inbox, triggers ``outreach_daily`` for a fixed logical date with ``clock=logical`` and waits.

With ``--outbox`` every channel kind (calls, letters, placements and referrals too) records to
the outbox instead of its own medium, through a scratch copy of ``config/`` (the benchmark in
``bench/celery_daily.py`` runs 1M accounts that way: PDF rendering would otherwise dominate).
``--json-out`` writes the run's figures: wall time, task instances, time per task.

It prints the run's state, its task-instance count and the day's summary, checks that the run
succeeded and that every contact the ledger calls sent is recorded exactly once in its medium
(outbox messages, call tasks, letters, placements, legal cases), then stops every process it
started and drops both databases. Exit status 0 only if all of that held.

    python scripts/celery_stack.py --pg postgresql://postgres@127.0.0.1:5432/postgres \\
        --accounts 10000

Only 127.0.0.1 is contacted: PostgreSQL, Redis and the api-server on a free local port.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import airflow_local  # noqa: E402  (sibling script: pools and the bootstrap are shared)

REPO = airflow_local.REPO
DAG_ID = "outreach_daily"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
# Redis db 14: the Redis-backed tests use 15 (.ci/run), the app's rate limiter its own prefix.
DEFAULT_BROKER = "redis://127.0.0.1:6379/14"
DAY = dt.date(2025, 1, 7)  # a Tuesday, no US federal holiday: every channel has a window
SEED = 7
TERMINAL = {"success", "failed"}


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _sqlalchemy_url(server: str, database: str, driver: str = "postgresql+psycopg") -> str:
    """``server`` with another database and the psycopg (v3) driver that is installed."""
    from sqlalchemy.engine import make_url

    url = make_url(server).set(drivername=driver, database=database)
    return url.render_as_string(hide_password=False)


@contextmanager
def scratch_databases(server: str, names: list[str]) -> Iterator[None]:
    """Create ``names`` on the server; drop them (closing stray connections) afterwards."""
    import psycopg

    admin = _sqlalchemy_url(server, "postgres", driver="postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_airflow_cfg(
    home: Path,
    *,
    metadata_url: str,
    result_backend: str,
    broker: str,
    api_port: int,
    concurrency: int,
) -> Path:
    """The deployment's settings as an ``airflow.cfg`` (Airflow fills in every other default)."""
    home.mkdir(parents=True, exist_ok=True)
    cfg = f"""\
[core]
executor = CeleryExecutor
dags_folder = {REPO / "dags"}
plugins_folder = {REPO / "plugins"}
load_examples = False
# The stack is for one triggered run: nothing waits to be unpaused.
dags_are_paused_at_creation = False
execution_api_server_url = http://127.0.0.1:{api_port}/execution/
# A fresh Fernet key per stack: connections are encrypted as in production.
fernet_key = {_fernet_key()}

[database]
sql_alchemy_conn = {metadata_url}
# Airflow would derive postgresql+asyncpg (not installed); psycopg v3 has an async dialect.
sql_alchemy_conn_async = {metadata_url.replace("+psycopg://", "+psycopg_async://", 1)}

[celery]
broker_url = {broker}
result_backend = {result_backend}
worker_concurrency = {concurrency}

[scheduler]
# Only the triggered run: the cron schedule would add a run for "today" (catchup=False).
use_job_schedule = False

[api]
host = 127.0.0.1
port = {api_port}
base_url = http://127.0.0.1:{api_port}

[api_auth]
# Scheduler and api-server must agree on it: the workers' task tokens are signed with it.
jwt_secret = {secrets.token_urlsafe(32)}

[logging]
base_log_folder = {home / "logs"}
"""
    path = home / "airflow.cfg"
    path.write_text(cfg)
    return path


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@dataclass
class Stack:
    """The Airflow processes, each in its own process group so its children stop with it."""

    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _handles: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, args: list[str]) -> None:
        handle = (self.logs / f"{name}.log").open("wb")
        self._handles.append(handle)
        self.processes[name] = subprocess.Popen(
            [_airflow_bin(), *args],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; see {self.logs / (name + '.log')}"
                )

    def stop(self, grace: float = 30) -> None:
        """SIGTERM each process group we started, then SIGKILL what is left after ``grace``."""
        for proc in self.processes.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                # The group too: a worker's forked children outlive a killed parent otherwise.
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        for handle in self._handles:
            handle.close()


def _airflow_bin() -> str:
    airflow = Path(sys.executable).parent / "airflow"
    return str(airflow) if airflow.exists() else "airflow"


def _wait_for_api(port: int, stack: Stack, timeout: float = 180) -> None:
    url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise RuntimeError(f"the api-server did not answer {url} within {timeout:.0f} s")


def _metadata(metadata_url: str, query: str, params: dict[str, Any]) -> list[Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(metadata_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query), params).all())
    finally:
        engine.dispose()


def wait_for_run(
    metadata_url: str, run_id: str, stack: Stack, timeout: float, poll: float = 5
) -> str:
    """Poll the run's state in the metadata DB until it is terminal; every process must live."""
    deadline = time.monotonic() + timeout
    state = "unknown"
    last_report = 0.0
    while time.monotonic() < deadline:
        stack.check_alive()
        rows = _metadata(
            metadata_url,
            "SELECT state FROM dag_run WHERE dag_id = :dag AND run_id = :run",
            {"dag": DAG_ID, "run": run_id},
        )
        state = str(rows[0][0]) if rows else "missing"
        if state in TERMINAL:
            return state
        if time.monotonic() - last_report > 60:
            done = _metadata(
                metadata_url,
                "SELECT COUNT(*) FROM task_instance WHERE dag_id = :dag AND run_id = :run "
                "AND state IN ('success', 'skipped')",
                {"dag": DAG_ID, "run": run_id},
            )[0][0]
            print(f"    run {state}, {done} task instances done", flush=True)
            last_report = time.monotonic()
        time.sleep(poll)
    raise RuntimeError(f"run {run_id} still {state} after {timeout:.0f} s")


def task_states(metadata_url: str, run_id: str) -> dict[str, dict[str, int]]:
    rows = _metadata(
        metadata_url,
        "SELECT task_id, state, COUNT(*) FROM task_instance WHERE dag_id = :dag AND run_id = :run "
        "GROUP BY task_id, state",
        {"dag": DAG_ID, "run": run_id},
    )
    states: dict[str, dict[str, int]] = {}
    for task_id, state, count in rows:
        states.setdefault(str(task_id), {})[str(state)] = int(count)
    return states


def task_timings(metadata_url: str, run_id: str) -> dict[str, dict[str, Any]]:
    """Per task id: instances, summed and longest run time, first start and last end (seconds
    from the run's first task start), from the metadata database."""
    rows = _metadata(
        metadata_url,
        "SELECT task_id, start_date, end_date FROM task_instance "
        "WHERE dag_id = :dag AND run_id = :run AND start_date IS NOT NULL",
        {"dag": DAG_ID, "run": run_id},
    )
    if not rows:
        return {}
    origin = min(row[1] for row in rows)
    timings: dict[str, dict[str, Any]] = {}
    for task_id, start, end in rows:
        end = end or start
        entry = timings.setdefault(
            str(task_id),
            {"instances": 0, "task_seconds": 0.0, "longest": 0.0, "first_start": None,
             "last_end": None},
        )  # fmt: skip
        seconds = (end - start).total_seconds()
        entry["instances"] += 1
        entry["task_seconds"] += seconds
        entry["longest"] = max(entry["longest"], seconds)
        begin, finish = (start - origin).total_seconds(), (end - origin).total_seconds()
        first, last = entry["first_start"], entry["last_end"]
        entry["first_start"] = begin if first is None else min(first, begin)
        entry["last_end"] = finish if last is None else max(last, finish)
    for entry in timings.values():
        for key in ("task_seconds", "longest", "first_start", "last_end"):
            entry[key] = round(entry[key], 1)
    return timings


def outbox_config(target: Path) -> Path:
    """A copy of ``config/`` in which every channel kind's backend is the outbox (its other
    settings kept), for a run that must not render PDFs or write agency and counsel files."""
    import yaml

    from contact_channels.base import CHANNEL_KINDS

    shutil.copytree(REPO / "config", target)
    path = target / "channels.yaml"
    settings = yaml.safe_load(path.read_text()) or {}
    for kind in CHANNEL_KINDS:
        section = dict(settings.get(kind) or {})
        section["backend"] = "outbox"
        section.pop("conn_id", None)
        settings[kind] = section
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return target


def _print_summary(as_of: dt.date, env: dict[str, str]) -> bool:
    cli = Path(sys.executable).parent / "outreach"
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "outreach.entry.cli"]
    result = subprocess.run(
        [*cmd, "summary", "--as-of", as_of.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    print(result.stdout.rstrip())
    if result.returncode != 0:
        print(f"`outreach summary` failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.returncode == 0


def _first_task_error(logs: Path) -> str:
    """The first task traceback in the task logs, for a failed run's report."""
    for path in sorted(logs.rglob("*.log")):
        text = path.read_text(errors="replace")
        at = text.find("Traceback")
        if at >= 0:
            return f"--- {path} ---\n{text[at : at + 4000]}"
    return "(no traceback in the task logs)"


def _base_env() -> dict[str, str]:
    """This process's environment without Airflow settings or connections from outside: the
    stack is configured by its airflow.cfg alone, and no connection sends to a real provider."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and k != "AIRFLOW_HOME"
    }


def run_stack(args: argparse.Namespace) -> int:
    started = time.monotonic()
    tag = uuid.uuid4().hex[:10]
    meta_db, app_db = f"outreach_celery_{tag}_airflow", f"outreach_celery_{tag}_app"
    metadata_url = _sqlalchemy_url(args.pg, meta_db)
    app_url = _sqlalchemy_url(args.pg, app_db)
    root = Path(tempfile.mkdtemp(prefix="celery-stack-"))
    home, data, logs = root / "airflow", root / "data", root / "logs"
    data.mkdir()
    logs.mkdir()
    api_port = _free_port()

    env = _base_env()
    app_env = {
        "OUTREACH_DATA_DIR": str(data),
        "OUTREACH_DATABASE_URL": app_url,
        # The outbox in the app's PostgreSQL database (its own table): the worker's forked
        # task processes write it concurrently, which one SQLite file would serialize.
        "OUTREACH_OUTBOX_URL": app_url,
    }
    from outreach.kernel.identity import demo_identity

    app_env.update(demo_identity())  # who is writing: the demo's, marked as such
    if args.outbox:
        app_env["OUTREACH_CONFIG_DIR"] = str(outbox_config(root / "config"))
    env.update(app_env)
    env["AIRFLOW_HOME"] = str(home)
    # The Celery result backend is SQLAlchemy too ("db+" prefix), on the metadata database.
    result_backend = "db+" + metadata_url
    write_airflow_cfg(
        home,
        metadata_url=metadata_url,
        result_backend=result_backend,
        broker=args.broker,
        api_port=api_port,
        concurrency=args.concurrency,
    )
    logical_date = dt.datetime.combine(args.day, dt.time(0, 0), tzinfo=dt.UTC)
    run_id = f"celery_stack__{args.day.isoformat()}__{tag}"

    _step(f"Scratch databases {meta_db}, {app_db}; Airflow home {home}")
    try:
        with scratch_databases(args.pg, [meta_db, app_db]):
            stack = Stack(env=env, logs=logs)
            try:
                with (logs / "bootstrap.log").open("w") as log:
                    _step("airflow db migrate, pools, reserialize")
                    airflow_local.bootstrap(env, log)

                _step(f"Application schema; portfolio of {args.accounts:,} accounts into the inbox")
                os.environ.update(app_env)
                from outreach.portfolio.generator import generate
                from outreach.services import daily as service
                from outreach.storage.db import engine_for

                service.setup_database()
                engine_for.cache_clear()  # no pooled connection of ours may block the final drop
                inbox = data / "inbox"
                inbox.mkdir()
                generate(args.accounts, seed=SEED, out=inbox / "portfolio.jsonl", as_of=args.day)

                _step("Starting scheduler, dag-processor, api-server, celery worker")
                stack.start("api-server", ["api-server", "--port", str(api_port)])
                stack.start("scheduler", ["scheduler"])
                stack.start("dag-processor", ["dag-processor"])
                stack.start(
                    "worker",
                    [
                        "celery",
                        "worker",
                        "--concurrency",
                        str(args.concurrency),
                        "--skip-serve-logs",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                )
                _wait_for_api(api_port, stack)

                conf = {"clock": "logical"}
                if args.batch_size:
                    conf["batch_size"] = args.batch_size
                _step(f"Triggering {DAG_ID} for {args.day} with conf {json.dumps(conf)}")
                with (logs / "trigger.log").open("w") as log:
                    airflow_local._airflow(
                        [
                            "dags",
                            "trigger",
                            DAG_ID,
                            "--run-id",
                            run_id,
                            "--logical-date",
                            logical_date.isoformat(),
                            "--conf",
                            json.dumps(conf),
                        ],
                        env,
                        log,
                    )
                run_started = time.monotonic()
                state = wait_for_run(metadata_url, run_id, stack, timeout=args.timeout)
                run_seconds = time.monotonic() - run_started

                states = task_states(metadata_url, run_id)
                count = sum(sum(per.values()) for per in states.values())
                print(f"    run {run_id}: {state}, {count} task instances in {run_seconds:.0f} s")
                figures: dict[str, Any] = {
                    "accounts": args.accounts,
                    "batch_size": args.batch_size,
                    "concurrency": args.concurrency,
                    "outbox": bool(args.outbox),
                    "state": state,
                    "run_seconds": round(run_seconds, 1),
                    "task_instances": count,
                    "task_states": states,
                    "tasks": task_timings(metadata_url, run_id),
                }
                bad = {t: s for t, s in states.items() if set(s) - {"success", "skipped"}}
                if state != "success":
                    print(f"    tasks not successful: {bad}")
                    print(_first_task_error(home / "logs"))
                    return 1

                summary_ok = _print_summary(args.day, env)
                from outreach.operations.reporting import sent_and_recorded

                ledger, recorded = sent_and_recorded(app_url, app_url)
                figures["sent"] = ledger
                figures["recorded"] = recorded
                if args.json_out:
                    figures["stack_seconds"] = round(time.monotonic() - started, 1)
                    out = Path(args.json_out)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(figures, indent=2, sort_keys=True))
                print(f"    ledger sent by channel: {json.dumps(ledger, sort_keys=True)}")
                print(f"    recorded by the media:  {json.dumps(recorded, sort_keys=True)}")
                if not sum(ledger.values()):
                    print("FAIL: the run sent nothing")
                    return 1
                if ledger != recorded:
                    print("FAIL: the ledger's sent contacts differ from what the media recorded")
                    return 1
                if not summary_ok:
                    return 1
                (home / ".ok").touch()
            finally:
                _step("Stopping the stack and dropping the databases")
                stack.stop()
                from outreach.storage.db import engine_for

                engine_for.cache_clear()
        print(f"Celery stack finished in {time.monotonic() - started:.0f} s: OK")
        return 0
    finally:
        # Logs are kept when something failed after a process wrote any; nothing else stays.
        failed = not (home / ".ok").exists()
        if args.keep or (failed and any(logs.iterdir())):
            print(f"    logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL (any database)")
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="Celery broker (Redis) URL")
    parser.add_argument("--accounts", type=int, default=10_000, help="portfolio size")
    parser.add_argument("--day", type=dt.date.fromisoformat, default=DAY, help="logical date")
    parser.add_argument("--batch-size", type=int, default=0, help="DAG param (0: its default)")
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker slots")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the run")
    parser.add_argument("--keep", action="store_true", help="keep logs and data on success")
    parser.add_argument(
        "--outbox", action="store_true", help="every channel kind records to the outbox"
    )
    parser.add_argument("--json-out", help="write the run's figures (JSON) to this file")
    args = parser.parse_args(argv)
    try:
        return run_stack(args)
    except Exception as exc:  # any set-up failure is a failed check, reported as such
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
