"""``outreach_weekly`` in a real Airflow (``scripts/airflow_local.py``, as tests/test_dag_run.py
runs ``outreach_daily``): its ``report`` task writes the last complete ISO week's report (HTML,
JSON, CSV) to the report drop through Airflow's object storage, and a rerun of the same logical
date, later on the wall clock, leaves the same bytes."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.report_run import START, shared_run

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parent.parent
MONDAY = START + dt.timedelta(days=7)
LOGICAL_DATE = dt.datetime.combine(MONDAY, dt.time(7, 0), tzinfo=dt.UTC)


def _runner() -> Any:
    spec = importlib.util.spec_from_file_location(
        "airflow_local", REPO / "scripts/airflow_local.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_weekly_dag_drops_the_report_and_a_rerun_writes_the_same_bytes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run = shared_run(tmp_path_factory.getbasetemp() / "report-run")
    root = tmp_path_factory.mktemp("weekly-dag")
    drop = root / "drop"
    runner = _runner()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    base.update(run["env"])
    base["OUTREACH_REPORT_DROP"] = drop.resolve().as_uri()
    # The task process imports this checkout's packages, whatever the venv has installed.
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH")]))
    env = runner.airflow_env(root / "airflow", base=base)
    log_path = root / "airflow.log"
    with log_path.open("w") as log:
        runner.bootstrap(env, log)
        first = runner.run_dag(env, "outreach_weekly", LOGICAL_DATE, {}, log=log)
    assert first["state"] == "success", log_path.read_text(errors="replace")[-4000:]
    # The score's weekly training runs beside the report: with a week of history it stores a
    # version or says why not; either way the task succeeds (services.scores.train_weekly).
    assert first["tasks"] == {"report": {"success": 1}, "train_score": {"success": 1}}
    folder = drop / "2026-W47"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["kpi-report.csv", "kpi-report.html", "kpi-report.json"]
    written = {n: (folder / n).read_bytes() for n in names}
    report = json.loads(written["kpi-report.json"])
    assert (report["from"], report["to"]) == ("2026-11-16", "2026-11-22")
    assert report["generated_at"] == "2026-11-23T00:00:00+00:00"
    assert "recovery_rate" in report
    assert written["kpi-report.html"].count(b'<section class="kpi-group"') == len(report["groups"])

    # Cleared and rerun from the UI: the same logical date, the same files, byte for byte.
    with log_path.open("a") as log:
        again = runner.run_dag(env, "outreach_weekly", LOGICAL_DATE, {}, log=log)
    assert again["state"] == "success", log_path.read_text(errors="replace")[-4000:]
    assert {n: (folder / n).read_bytes() for n in names} == written
    assert not list(folder.glob("*.part"))
