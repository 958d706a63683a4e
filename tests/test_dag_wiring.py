"""Each DAG task calls one ``outreach.services.daily`` function with the run's day and params.

The task callables run here against a recording stand-in for the service and a fake Airflow
context, so the wiring is pinned without a metadata database.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pendulum
import pytest

DAGS = Path(__file__).resolve().parent.parent / "dags"
LOGICAL_DATE = pendulum.datetime(2025, 1, 7, 6, 0, tz="UTC")
DAY = dt.date(2025, 1, 7)


class RecordingService:
    """Stands in for ``outreach.services.daily``: records calls, returns counts and ranges."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.controls: list[Any] = []  # the run controls each call was given

    def ingest(self) -> dict[str, int]:
        self.calls.append(("ingest",))
        return {"files": 1, "rows_read": 3, "rejected": 0}

    def plan_batches(
        self, as_of: dt.date, batch_size: int, controls: Any = None
    ) -> list[dict[str, int]]:
        self.calls.append(("plan_batches", as_of, batch_size))
        self.controls.append(controls)
        return [{"lo": 1, "hi": 100}, {"lo": 101, "hi": 180}]

    def plan_batch(self, as_of: dt.date, lo: int, hi: int, controls: Any = None) -> dict[str, int]:
        self.calls.append(("plan_batch", as_of, lo, hi))
        self.controls.append(controls)
        return {"send": 1}

    def dispatch_batches(
        self, as_of: dt.date, channel: str, batch_size: int, controls: Any = None
    ) -> list[dict[str, int]]:
        self.calls.append(("dispatch_batches", as_of, channel, batch_size))
        self.controls.append(controls)
        return [{"lo": 7, "hi": 9}]

    def dispatch_batch(
        self, as_of: dt.date, channel: str, lo: int, hi: int, *, clock: str = "wall"
    ) -> dict[str, int]:
        self.calls.append(("dispatch_batch", as_of, channel, lo, hi, clock))
        return {"sent": 1}

    def summary(
        self, as_of: dt.date, controls: Any = None, planned: Any = ()
    ) -> dict[str, Any]:
        self.calls.append(("summary", as_of))
        self.controls.append(controls)
        return {"as_of": as_of.isoformat(), "totals": {"sent": 1}, "planned": list(planned)}


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, app_data: Path) -> RecordingService:
    from outreach.services import daily as real
    from outreach.storage.db import migrate

    # The run controls are read for real: they check stages against the ladder in force.
    migrate(f"sqlite:///{app_data / 'outreach.db'}")

    fake = RecordingService()
    for name in (
        "ingest",
        "plan_batches",
        "plan_batch",
        "dispatch_batches",
        "dispatch_batch",
        "summary",
    ):
        monkeypatch.setattr(real, name, getattr(fake, name))
    return fake


def _callable(
    dag: Any, task_id: str, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any]
) -> Any:
    function = dag.get_task(task_id).python_callable
    context = {"logical_date": LOGICAL_DATE, "params": params}
    monkeypatch.setitem(function.__globals__, "get_current_context", lambda: context)
    return function


def test_daily_tasks_call_the_service_with_the_logical_day_and_params(
    dagbag: Any, service: RecordingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = dagbag.dags["outreach_daily"]
    params = {"clock": "logical", "batch_size": 100, "dry_run": True, "channels": ["email"],
              "stages": ["early_reminder"], "accounts": []}  # fmt: skip

    def run(task_id: str, **kwargs: Any) -> Any:
        return _callable(dag, task_id, monkeypatch, params)(**kwargs)

    assert run("ingest") == {"files": 1, "rows_read": 3, "rejected": 0}
    assert run("plan_batches") == [{"lo": 1, "hi": 100}, {"lo": 101, "hi": 180}]
    run("plan_batch", batch={"lo": 101, "hi": 180})
    assert run("dispatch_batches_email", channel="email") == [{"lo": 7, "hi": 9}]
    run("dispatch_email", channel="email", batch={"lo": 7, "hi": 9})
    summary = run("summary", planned=[{"send": 1}, {"send": 2}])
    assert summary["totals"] == {"sent": 1} and summary["planned"] == [{"send": 1}, {"send": 2}]
    # Every call got the run's controls, read from its params.
    for controls in service.controls:
        assert controls.dry_run is True
        assert controls.scope.channels == {"email"}
        assert controls.scope.stages == {"early_reminder"}
        assert controls.scope.account_refs is None

    assert service.calls == [
        ("ingest",),
        ("plan_batches", DAY, 100),
        ("plan_batch", DAY, 101, 180),
        ("dispatch_batches", DAY, "email", 100),
        ("dispatch_batch", DAY, "email", 7, 9, "logical"),
        ("summary", DAY),
    ]
    assert all(type(call[1]) is dt.date for call in service.calls[1:])


def test_hourly_dispatch_covers_yesterdays_open_windows_on_the_wall_clock(
    dagbag: Any, service: RecordingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = dagbag.dags["outreach_dispatch"]
    params = {"batch_size": 50}
    batches = _callable(dag, "dispatch_batches_sms", monkeypatch, params)(channel="sms")
    yesterday = DAY - dt.timedelta(days=1)
    assert batches == [
        {"day": yesterday.isoformat(), "lo": 7, "hi": 9},
        {"day": DAY.isoformat(), "lo": 7, "hi": 9},
    ]
    dispatch = _callable(dag, "dispatch_sms", monkeypatch, params)
    for batch in batches:
        dispatch(channel="sms", batch=batch)
    assert service.calls == [
        ("dispatch_batches", yesterday, "sms", 50),
        ("dispatch_batches", DAY, "sms", 50),
        ("dispatch_batch", yesterday, "sms", 7, 9, "wall"),
        ("dispatch_batch", DAY, "sms", 7, 9, "wall"),
    ]


def test_hourly_redrive_calls_the_service_with_the_logical_day(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outreach.services import daily as real

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(real, "redrive", lambda day, channel: calls.append((day, channel)) or {})
    dag = dagbag.dags["outreach_dispatch"]
    _callable(dag, "redrive_email", monkeypatch, {"batch_size": 50})(channel="email")
    assert calls == [(DAY, "email")] and type(calls[0][0]) is dt.date


def test_weekly_report_task_calls_the_service_with_the_logical_day_and_language(
    dagbag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outreach.services import reports as real

    calls: list[tuple[Any, ...]] = []

    def weekly_report(day: dt.date, *, lang: str = "en") -> dict[str, Any]:
        calls.append((day, lang))
        return {"from": "2024-12-30", "to": "2025-01-05", "written": 3}

    monkeypatch.setattr(real, "weekly_report", weekly_report)
    dag = dagbag.dags["outreach_weekly"]
    assert _callable(dag, "report", monkeypatch, {"lang": "zh-CN"})() == {
        "from": "2024-12-30", "to": "2025-01-05", "written": 3}  # fmt: skip
    assert calls == [(DAY, "zh-CN")] and type(calls[0][0]) is dt.date
