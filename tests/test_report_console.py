"""The console's KPI dashboard, behind Airflow's real authentication (tests/test_console.py's
auth manager): the report's charts and tables for a period (default the last 30 days), the
same numbers as JSON, read-only, linked from the navigation, framed only by Airflow."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from outreach.entry.console import create_app
from tests.report_run import shared_run
from tests.test_console import auth_manager, bearer  # noqa: F401  (the real auth manager)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return shared_run(tmp_path_factory.getbasetemp() / "report-run")


@pytest.fixture
def client(run: dict[str, Any], auth_manager: Any) -> TestClient:  # noqa: F811
    from outreach.storage.db import engine_for

    engine = engine_for(run["env"]["OUTREACH_DATABASE_URL"])
    # "Today" is the run's last day: the default period (30 days to today) covers the run.
    now = dt.datetime.combine(run["last"], dt.time(18, 0))
    return TestClient(create_app(engine=engine, now=lambda: now))


def test_dashboard_shows_a_chart_per_kpi_group_for_the_last_30_days(
    client: TestClient,
    auth_manager: Any,  # noqa: F811
    run: dict[str, Any],
) -> None:
    viewer = bearer(auth_manager, "vic", "VIEWER")
    page = client.get("/dashboard", headers=viewer)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == "frame-ancestors 'self'"
    html = page.text
    start = run["last"] - dt.timedelta(days=29)
    assert f'name="from" value="{start.isoformat()}"' in html
    assert f'name="to" value="{run["last"].isoformat()}"' in html
    sections = re.findall(r'<section class="kpi-group".*?</section>', html, flags=re.S)
    assert len(sections) >= 10
    assert all(s.count("<svg") == 1 for s in sections)
    assert '<a href="/dashboard">Dashboard</a>' in html
    assert "<script" not in html and "https://" not in html
    # The numbers behind it: the same period as JSON.
    api = client.get("/api/dashboard", headers=viewer).json()
    assert api["from"] == start.isoformat() and api["to"] == run["last"].isoformat()
    assert "recovery_rate" in api and len(api["groups"]) == len(sections)


def test_dashboard_for_a_chosen_period_in_chinese(
    client: TestClient,
    auth_manager: Any,  # noqa: F811
    run: dict[str, Any],
) -> None:
    op = bearer(auth_manager, "oli", "OP")
    day = run["first"].isoformat()
    page = client.get("/dashboard", params={"from": day, "to": day, "lang": "zh-CN"}, headers=op)
    assert page.status_code == 200
    assert '<div class="kpi-report" lang="zh-CN">' in page.text
    assert "核心指标" in page.text and "回收率" in page.text
    assert f"{day} – {day}" in page.text


@pytest.mark.parametrize(
    "params",
    [{"from": "2026-13-01"}, {"to": "soon"}, {"from": "2026-11-20", "to": "2026-11-19"},
     {"lang": "fr"}],
)  # fmt: skip
def test_dashboard_refuses_a_bad_period_or_language(
    client: TestClient,
    auth_manager: Any,  # noqa: F811
    params: dict[str, str],
) -> None:
    viewer = bearer(auth_manager, "vic", "VIEWER")
    assert client.get("/dashboard", params=params, headers=viewer).status_code == 422
    if "lang" not in params:
        assert client.get("/api/dashboard", params=params, headers=viewer).status_code == 422


def test_dashboard_is_for_signed_in_users_and_read_only(
    client: TestClient,
    auth_manager: Any,  # noqa: F811
) -> None:
    assert client.get("/dashboard").status_code == 401
    assert client.get("/api/dashboard").status_code == 401
    op = bearer(auth_manager, "oli", "OP")
    # No state-changing route: a post is not allowed, whoever sends it.
    assert client.post("/dashboard", headers=op).status_code in (403, 405)
