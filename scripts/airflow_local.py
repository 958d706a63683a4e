"""Run the project's DAGs in a local Airflow (SQLite metadata DB): bootstrap it, run one DAG run.

Used by ``scripts/demo.py`` and the DAG run tests; also usable by hand:

    python scripts/airflow_local.py bootstrap        # db migrate, pools, reserialize
    python scripts/airflow_local.py run outreach_daily --logical-date 2025-01-06 \\
        --conf '{"clock": "logical"}' --result run.json

Both read Airflow's usual environment (AIRFLOW_HOME, AIRFLOW__CORE__DAGS_FOLDER, ...);
``airflow_env`` builds one for a local home. Airflow is imported only inside ``run`` so that
this module can be imported before the environment is set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent

# One pool per channel (provider or medium): caps how many dispatch batches talk to it at once.
POOL_SLOTS: dict[str, int] = {
    "sms": 4,
    "email": 4,
    "call": 2,
    "letter": 2,
    "agency": 1,
    "legal": 1,
}


def airflow_env(
    airflow_home: Path, *, dags_folder: Path = REPO / "dags", base: dict[str, str] | None = None
) -> dict[str, str]:
    """Environment for a local Airflow: SQLite metadata DB in ``airflow_home``, LocalExecutor."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
        }
    )
    return env


def _airflow(
    args: list[str], env: dict[str, str], log: IO[str] | None, timeout: float = 600
) -> None:
    airflow = Path(sys.executable).parent / "airflow"
    cmd = [str(airflow) if airflow.exists() else "airflow", *args]
    if log is not None:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
    result = subprocess.run(
        cmd,
        env=env,
        stdout=log if log is not None else None,
        stderr=subprocess.STDOUT if log is not None else None,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        where = f" (see {log.name})" if log is not None else ""
        raise RuntimeError(
            f"`airflow {' '.join(args)}` failed with exit code {result.returncode}{where}"
        )


def bootstrap(env: dict[str, str], log: IO[str] | None = None) -> None:
    """Migrate the metadata DB, create the dispatch pools, serialize the DAGs (all idempotent)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    _airflow(["db", "migrate"], env, log)
    pools = {
        f"{channel}_dispatch": {
            "slots": slots,
            "description": f"Concurrent {channel} dispatch batches (one pool per channel)",
        }
        for channel, slots in POOL_SLOTS.items()
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(pools, handle)
    try:
        _airflow(["pools", "import", handle.name], env, log)
    finally:
        os.unlink(handle.name)
    reserialize(env, log)


def reserialize(env: dict[str, str], log: IO[str] | None = None) -> None:
    """Write the DAGs to the metadata DB (``dag.test`` refuses a DAG that is not serialized)."""
    _airflow(["dags", "reserialize"], env, log)


def run_dag(
    env: dict[str, str],
    dag_id: str,
    logical_date: dt.datetime,
    conf: dict[str, Any] | None = None,
    *,
    log: IO[str] | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    """Run one DAG run with ``dag.test`` in a child process; returns its state and task counts."""
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "run",
            dag_id,
            "--logical-date",
            logical_date.isoformat(),
            "--conf",
            json.dumps(conf or {}),
            "--result",
            str(result_path),
        ]
        if log is not None:
            log.write(f"\n$ {' '.join(cmd)}\n")
            log.flush()
        subprocess.run(
            cmd,
            env=env,
            stdout=log if log is not None else None,
            stderr=subprocess.STDOUT if log is not None else None,
            timeout=timeout,
            check=False,
        )
        if not result_path.exists():
            where = f"; see {log.name}" if log is not None else ""
            return {"dag_id": dag_id, "state": "error", "error": f"no result written{where}"}
        result: dict[str, Any] = json.loads(result_path.read_text())
        return result


def _run_in_process(dag_id: str, logical_date: dt.datetime, conf: dict[str, Any]) -> dict[str, Any]:
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    bag = DagBag(dag_folder=settings.DAGS_FOLDER)
    if bag.import_errors or dag_id not in bag.dags:
        return {"dag_id": dag_id, "state": "error", "error": f"import errors: {bag.import_errors}"}
    dag_run = bag.dags[dag_id].test(logical_date=logical_date, run_conf=conf)
    tasks: dict[str, dict[str, int]] = {}
    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == dag_run.run_id
            )
        ).all()
    for task_id, state in rows:
        per_state = tasks.setdefault(task_id, {})
        per_state[str(state)] = per_state.get(str(state), 0) + 1
    return {
        "dag_id": dag_id,
        "run_id": dag_run.run_id,
        "state": str(dag_run.state),
        "task_instances": len(rows),
        "tasks": tasks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bootstrap", help="db migrate, create pools, reserialize DAGs")
    run = sub.add_parser("run", help="run one DAG run with dag.test")
    run.add_argument("dag_id")
    run.add_argument("--logical-date", required=True, type=dt.datetime.fromisoformat)
    run.add_argument("--conf", default="{}", type=json.loads)
    run.add_argument("--result", type=Path, help="write the run's state here as JSON")
    args = parser.parse_args(argv)

    if args.command == "bootstrap":
        bootstrap(dict(os.environ))
        return 0
    logical_date = args.logical_date
    if logical_date.tzinfo is None:
        logical_date = logical_date.replace(tzinfo=dt.UTC)
    try:
        result = _run_in_process(args.dag_id, logical_date, args.conf)
    except Exception as exc:  # reported to the caller, which decides how to fail
        result = {"dag_id": args.dag_id, "state": "error", "error": repr(exc)}
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.result:
        args.result.write_text(text)
    print(text)
    return 0 if result["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
