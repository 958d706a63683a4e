"""``outreach report`` and the weekly drop on a small real run's database (tests/report_run.py):
the HTML page with a chart per KPI group, JSON with ``recovery_rate``, CSV, refused periods,
and the weekly report written to the report drop with the same bytes on a rerun."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from outreach.entry.cli import main
from outreach.kernel import clock
from tests.report_run import START, shared_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return shared_run(tmp_path_factory.getbasetemp() / "report-run")


@pytest.fixture
def env(run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name, value in run["env"].items():
        monkeypatch.setenv(name, value)
    return run


def _period(run: dict[str, Any]) -> list[str]:
    return ["--from", run["first"].isoformat(), "--to", run["last"].isoformat()]


def _compute(run: dict[str, Any]) -> Any:
    from outreach.measurement.kpis import compute
    from outreach.storage.db import get_engine

    return compute(get_engine(), run["first"], run["last"])


def test_html_report_has_a_chart_and_a_table_for_every_kpi_group(
    env: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kpi.html"
    assert main(["report", *_period(env), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    expected = [g.key for g in _compute(env).groups]
    assert len(expected) >= 10
    sections = re.findall(r'<section class="kpi-group"[^>]*data-group="([^"]+)"(.*?)</section>',
                          html, flags=re.S)  # fmt: skip
    assert [key for key, _ in sections] == expected
    for key, body in sections:
        assert body.count("<svg") == 1, key
        assert '<table class="numbers">' in body, key
    assert '<html lang="en">' in html
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_html_report_in_chinese(env: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "kpi-zh.html"
    assert main(["report", *_period(env), "--out", str(out), "--lang", "zh-CN"]) == 0
    html = out.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html
    for text in ("催收关键指标报告", "回收率", "核心指标", "计算方法", "逾期天数段"):
        assert text in html, text
    assert "Recovery rate" not in html


def test_json_report_carries_the_headline_recovery_rate(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", *_period(env), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = _compute(env)
    assert data["recovery_rate"] == pytest.approx(expected.headline["recovery_rate"])
    assert data["recovery_rate"] is not None and 0 <= data["recovery_rate"] <= 1
    assert data["collected"] == {k: str(v) for k, v in expected.headline["collected"].items()}
    assert [g["key"] for g in data["groups"]] == [g.key for g in expected.groups]


def test_csv_report_has_a_row_per_group_value_and_metric(
    env: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "kpi.csv"
    assert main(["report", *_period(env), "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    expected = _compute(env)
    assert len(rows) == sum(len(g.rows) * len(g.metrics) for g in expected.groups)
    headline_group = expected.group("recovery_by_day")
    first = next(r for r in rows if r["group"] == "recovery_by_day")
    assert first["dimension_value"] == headline_group.rows[0]["day"]
    assert first["metric"] == headline_group.metrics[0].key


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-31", "--to", "2026-12-01"], "not an ISO date"),
        (["--from", "yesterday", "--to", "2026-12-01"], "not an ISO date"),
        (["--from", "2026-12-02", "--to", "2026-12-01"], "starts after it ends"),
    ],
)
def test_a_bad_period_is_refused_with_exit_2(
    env: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
    message: str,
) -> None:  # fmt: skip
    out = tmp_path / "never.html"
    try:
        code = main(["report", *args, "--out", str(out)])
    except SystemExit as exc:  # argparse refuses a bad date itself
        code = int(exc.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_last_complete_iso_week() -> None:
    from outreach.services.reports import last_complete_week

    # Monday: the week that ended yesterday; Sunday: still the week before.
    assert last_complete_week(dt.date(2026, 11, 23)) == (dt.date(2026, 11, 16),
                                                         dt.date(2026, 11, 22))  # fmt: skip
    assert last_complete_week(dt.date(2026, 11, 22)) == (dt.date(2026, 11, 9),
                                                         dt.date(2026, 11, 15))  # fmt: skip
    assert last_complete_week(dt.date(2027, 1, 4)) == (dt.date(2026, 12, 28),
                                                       dt.date(2027, 1, 3))  # fmt: skip


def test_weekly_report_goes_to_the_drop_and_a_rerun_writes_the_same_bytes(
    env: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outreach.services.reports import weekly_report

    drop = tmp_path / "drop"
    monkeypatch.setenv("OUTREACH_REPORT_DROP", drop.resolve().as_uri())
    monday = START + dt.timedelta(days=7)
    with clock.use(dt.datetime(2026, 11, 23, 7, 0)):
        first = weekly_report(monday)
    folder = drop / "2026-W47"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["kpi-report.csv", "kpi-report.html", "kpi-report.json"]
    assert first["written"] == 3 and first["from"] == "2026-11-16" and first["to"] == "2026-11-22"
    before = {n: (folder / n).read_bytes() for n in names}
    # Stamped with the run's day, not the wall clock.
    assert json.loads(before["kpi-report.json"])["generated_at"] == "2026-11-23T00:00:00+00:00"
    # A rerun a day later (the wall clock moved on) writes the same bytes: nothing changes.
    with clock.use(dt.datetime(2026, 11, 24, 15, 30)):
        again = weekly_report(monday)
    assert again["written"] == 0 and again["unchanged"] == 3
    assert {n: (folder / n).read_bytes() for n in names} == before
    assert b"<svg" in before["kpi-report.html"]


def test_report_drop_may_be_a_plain_folder(
    env: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outreach.services.reports import weekly_report

    monkeypatch.setenv("OUTREACH_REPORT_DROP", str(tmp_path / "reports"))
    done = weekly_report(START + dt.timedelta(days=8), lang="zh-CN")
    html = (tmp_path / "reports" / "2026-W47" / "kpi-report.html").read_text(encoding="utf-8")
    assert done["written"] == 3 and '<html lang="zh-CN">' in html
