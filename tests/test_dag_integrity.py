"""Every DAG file imports cleanly and follows the house rules (Astronomer-style integrity test).

Rules pinned here: tags, owner, retries with exponential backoff, a fixed start date, no
catch-up, one active run, one pool per channel on the dispatch tasks, batch-mapped tasks (the
task count follows batches, not accounts), and no I/O when a DAG file is imported.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pendulum
import pytest

from outreach.planning.kinds import CHANNELS as CHANNEL_KINDS

DAGS = Path(__file__).resolve().parent.parent / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))
EXPECTED_DAG_IDS = {"outreach_daily", "outreach_dispatch", "outreach_weekly"}
# The DAGs that send: one mapped dispatch task per channel, each in its channel's pool.
DISPATCHING_DAG_IDS = ("outreach_daily", "outreach_dispatch")


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_dag_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert DAG_FILES, "no DAG files found"
    assert set(dagbag.dag_ids) == EXPECTED_DAG_IDS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_dag_has_tags_owner_and_a_fixed_schedule(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert "outreach" in dag.tags
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.start_date == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert dag.timetable.can_be_scheduled, "the scheduler must run it, not only people"
    for task in dag.tasks:
        assert task.owner not in ("", "airflow"), f"{task.task_id} has no real owner"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_every_task_retries_with_exponential_backoff(dagbag: Any, dag_id: str) -> None:
    for task in dagbag.dags[dag_id].tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff > 1, task.task_id
        assert task.max_retry_delay is not None, task.task_id
        assert task.retry_delay <= task.max_retry_delay, task.task_id


@pytest.mark.parametrize("dag_id", DISPATCHING_DAG_IDS)
def test_dispatch_is_mapped_per_channel_with_one_pool_each(dagbag: Any, dag_id: str) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    dag = dagbag.dags[dag_id]
    for channel in CHANNEL_KINDS:
        dispatch = dag.get_task(f"dispatch_{channel}")
        assert isinstance(dispatch, MappedOperator), f"dispatch_{channel} must be mapped"
        assert dispatch.pool == f"{channel}_dispatch"
        assert f"dispatch_batches_{channel}" in dispatch.upstream_task_ids


def test_daily_flow_is_ingest_recall_plan_dispatch_close_summary(dagbag: Any) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    dag = dagbag.dags["outreach_daily"]
    assert dag.get_task("recall_placements").upstream_task_ids == {"ingest"}
    assert dag.get_task("settle").upstream_task_ids == {"recall_placements"}
    assert dag.get_task("score").upstream_task_ids == {"settle"}
    assert dag.get_task("plan_batches").upstream_task_ids == {"score"}
    plan = dag.get_task("plan_batch")
    assert isinstance(plan, MappedOperator)
    assert plan.upstream_task_ids == {"plan_batches"}
    for channel in CHANNEL_KINDS:
        assert dag.get_task(f"dispatch_batches_{channel}").upstream_task_ids == {"plan_batch"}
    # The day's batch outputs follow their channel's dispatch.
    assert dag.get_task("close_letter").upstream_task_ids == {"dispatch_letter"}
    assert dag.get_task("close_agency").upstream_task_ids == {"dispatch_agency"}
    assert dag.get_task("refresh_call_queue").upstream_task_ids == {"dispatch_call"}
    summary = dag.get_task("summary")
    # The plan's counts too: a dry run's summary is made of them.
    assert summary.upstream_task_ids == {"dispatch_sms", "dispatch_email", "refresh_call_queue",
                                         "close_letter", "close_agency", "dispatch_legal",
                                         "plan_batch"}
    # A channel with nothing to send skips its mapped task; what follows must still run.
    for task_id in ("summary", "close_letter", "close_agency", "refresh_call_queue"):
        assert dag.get_task(task_id).trigger_rule == "none_failed"
    # Fixed task count: 6 + 2 per channel + 3 closing tasks + summary, whatever the portfolio.
    assert len(dag.tasks) == 6 + 2 * len(CHANNEL_KINDS) + 3 + 1


def test_daily_params_offer_the_run_controls(dagbag: Any) -> None:
    params = dagbag.dags["outreach_daily"].params
    assert params["clock"] == "wall"
    assert params.get_param("clock").schema["enum"] == ["wall", "logical"]
    assert params["batch_size"] == 5000
    assert params.get_param("batch_size").schema["type"] == "integer"
    assert params["dry_run"] is False
    assert params["channels"] == params["stages"] == params["accounts"] == []
    assert params.get_param("channels").schema["items"]["enum"] == list(CHANNEL_KINDS)
    assert params.get_param("accounts").schema["maxItems"] == 1000


def test_weekly_dag_writes_the_report_on_mondays(dagbag: Any) -> None:
    dag = dagbag.dags["outreach_weekly"]
    assert dag.timetable.expression == "0 7 * * 1"
    assert {t.task_id for t in dag.tasks} == {"report", "train_score"}
    assert dag.params["lang"] == "en"
    assert dag.params.get_param("lang").schema["enum"] == ["en", "zh-CN"]


def test_hourly_dispatch_runs_every_hour_on_the_wall_clock(dagbag: Any) -> None:
    dag = dagbag.dags["outreach_dispatch"]
    assert dag.timetable.expression == "0 * * * *"
    assert dagbag.dags["outreach_daily"].timetable.expression == "0 6 * * *"
    assert "clock" not in dag.params


@pytest.mark.parametrize(
    ("logical_date", "expected"),
    [
        # 23:30 in New York on 9 March is already 10 March in UTC: the day is the UTC date.
        (
            dt.datetime(2025, 3, 9, 23, 30, tzinfo=ZoneInfo("America/New_York")),
            dt.date(2025, 3, 10),
        ),
        (dt.datetime(2025, 1, 6, 0, 0, tzinfo=dt.UTC), dt.date(2025, 1, 6)),
        # What Airflow really passes: a pendulum DateTime.
        (pendulum.datetime(2025, 1, 6, 6, 0, tz="UTC"), dt.date(2025, 1, 6)),
    ],
)
def test_the_day_is_the_logical_date_in_utc(
    monkeypatch: pytest.MonkeyPatch, logical_date: dt.datetime, expected: dt.date
) -> None:
    for module in _load_dag_modules():
        monkeypatch.setattr(module, "get_current_context", lambda: {"logical_date": logical_date})
        as_of = module._as_of()
        assert as_of == expected
        # Exactly datetime.date: sqlite3 and psycopg cannot bind pendulum's Date subclass.
        assert type(as_of) is dt.date


def test_a_run_without_logical_date_uses_its_run_after(monkeypatch: pytest.MonkeyPatch) -> None:
    class DagRun:
        run_after = dt.datetime(2025, 1, 7, 6, 0, tzinfo=dt.UTC)

    for module in _load_dag_modules():
        monkeypatch.setattr(module, "get_current_context", lambda: {"dag_run": DagRun()})
        assert module._as_of() == dt.date(2025, 1, 7)


def _load_dag_modules() -> list[Any]:
    import importlib.util

    modules = []
    for path in DAG_FILES:
        spec = importlib.util.spec_from_file_location(f"_dag_under_test_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


# Runs in a fresh interpreter: Airflow is imported first (it writes its own config), then an
# audit hook records every database connection, socket, subprocess and file write while the DAG
# files are imported.
_PROBE = textwrap.dedent(
    """
    import importlib.util, json, sys
    # Airflow's own start-up I/O is not the DAG's (croniter runs `file` once on import).
    import airflow.sdk, croniter  # noqa: F401
    events = []
    WATCHED = {"sqlite3.connect", "socket.connect", "socket.getaddrinfo", "subprocess.Popen",
               "os.mkdir", "os.remove", "os.rename", "shutil.rmtree"}
    def hook(event, args):
        if event in WATCHED:
            events.append([event, repr(args)[:200]])
        elif event == "open" and len(args) > 1 and isinstance(args[1], str) and (
            set(args[1]) & set("wax+")
        ):
            events.append([event, repr(args)[:200]])
    sys.addaudithook(hook)
    for n, path in enumerate(sys.argv[1:]):
        spec = importlib.util.spec_from_file_location(f"dag_{n}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    print(json.dumps(events))
    """
)


def test_importing_a_dag_file_does_no_io(tmp_path: Path) -> None:
    missing = tmp_path / "not-there"
    env = dict(os.environ)
    env.update(
        {
            "OUTREACH_DATA_DIR": str(missing / "data"),
            "OUTREACH_DATABASE_URL": f"sqlite:///{missing / 'outreach.db'}",
            "OUTREACH_OUTBOX_URL": f"sqlite:///{missing / 'outbox.db'}",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *map(str, DAG_FILES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = json.loads(result.stdout.strip().splitlines()[-1])
    assert events == []
    assert not missing.exists()


def test_hourly_dispatch_redrives_transient_failures_before_sms_and_email(dagbag: Any) -> None:
    dag = dagbag.dags["outreach_dispatch"]
    for channel in ("sms", "email"):
        assert dag.get_task(f"dispatch_batches_{channel}").upstream_task_ids == {
            f"redrive_{channel}"}
    assert not any(t.task_id.startswith("redrive_") and t.task_id[8:] not in ("sms", "email")
                   for t in dag.tasks)  # fmt: skip
