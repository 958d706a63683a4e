"""Reports: the day's figures for ``outreach summary`` and the plan's decisions for ``outreach
plan --json`` (``outreach.operations.reporting``); the KPI report over a period
(``outreach.measurement.kpis``) rendered as HTML with SVG charts, JSON or CSV
(``outreach.measurement.render``) for ``outreach report``, the console's dashboard and the
weekly drop (docs/reports.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from markupsafe import Markup
from sqlalchemy import Engine

from contact_channels.drops import storage_path, write_file
from outreach import settings
from outreach.measurement import kpis, render
from outreach.measurement.report_model import KpiReport, as_dict
from outreach.operations.reporting import day_summary, format_summary, plan_decisions
from outreach.services.database import migrated_engine

__all__ = [
    "FORMATS", "LANGS", "check_period", "dashboard", "dashboard_data", "day_summary",
    "format_summary", "kpi_report", "last_complete_week", "plan_decisions", "render_report",
    "report_drop", "weekly_report", "write_report",
]  # fmt: skip

FORMATS = render.FORMATS
LANGS = render.LANGS
SUFFIX = {"html": "html", "json": "json", "csv": "csv"}


def check_period(date_from: dt.date, date_to: dt.date) -> None:
    """A period runs forwards: ``date_from`` after ``date_to`` is a ValueError naming both."""
    if date_from > date_to:
        raise ValueError(
            f"the period starts after it ends: --from {date_from.isoformat()} is after "
            f"--to {date_to.isoformat()}"
        )


def kpi_report(
    engine: Engine,
    date_from: dt.date,
    date_to: dt.date,
    *,
    lang: str = "en",
    generated_at: dt.datetime | None = None,
) -> KpiReport:
    """The KPIs over ``date_from``..``date_to`` (both included); stamped ``generated_at`` when
    given (a scheduled run stamps its logical date, so its rerun writes the same bytes)."""
    check_period(date_from, date_to)
    report = kpis.compute(engine, date_from, date_to, lang=render.check_lang(lang))
    return render.with_generated_at(report, generated_at) if generated_at else report


def render_report(report: KpiReport, fmt: str = "html", lang: str = "en") -> bytes:
    """``report`` as html, json or csv bytes."""
    return render.render(report, fmt, render.check_lang(lang))


def write_report(
    engine: Engine,
    date_from: dt.date,
    date_to: dt.date,
    out: Path | None,
    *,
    fmt: str = "html",
    lang: str = "en",
) -> tuple[bytes, dict[str, Any]]:
    """Render the period's report; write it to ``out`` when given. Returns the bytes and a
    summary (the period, the number of groups, the headline recovery rate)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    report = kpi_report(engine, date_from, date_to, lang=lang)
    data = render_report(report, fmt, lang)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return data, {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "groups": len(report.groups),
        "recovery_rate": as_dict(report).get("recovery_rate"),
        "bytes": len(data),
    }


# --- the weekly drop -----------------------------------------------------------------------


def last_complete_week(day: dt.date) -> tuple[dt.date, dt.date]:
    """The last ISO week (Monday..Sunday) that ended before ``day``."""
    this_monday = day - dt.timedelta(days=day.isoweekday() - 1)
    monday = this_monday - dt.timedelta(days=7)
    return monday, monday + dt.timedelta(days=6)


def report_drop() -> Any:
    """Where the weekly report goes (``OUTREACH_REPORT_DROP``): an object-storage URL
    (``s3://bucket/reports``, ``file:///srv/reports``) or a directory path; default
    ``<data dir>/drop/reports``. An ``airflow.sdk.ObjectStoragePath``."""
    configured = settings.REPORT_DROP.get("")
    if configured and "://" in configured:
        return storage_path(configured)
    folder = Path(configured) if configured else settings.data_dir() / "drop" / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    return storage_path(folder.resolve().as_uri())


def weekly_report(
    day: dt.date, *, lang: str = "en", engine: Engine | None = None, drop: Any = None
) -> dict[str, Any]:
    """Write the last complete ISO week's report before ``day`` to the report drop, as
    ``<ISO year>-W<week>/kpi-report.html`` (``.json``, ``.csv``).

    Stamped with the run's day (00:00 UTC), not the wall clock: a rerun over the same data
    writes the same bytes (and leaves files that are already there untouched)."""
    if engine is None:
        engine = migrated_engine()
    date_from, date_to = last_complete_week(day)
    stamp = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)
    report = kpi_report(engine, date_from, date_to, lang=lang, generated_at=stamp)
    year, week, _ = date_from.isocalendar()
    folder = (drop if drop is not None else report_drop()) / f"{year}-W{week:02d}"
    written = {}
    for fmt in FORMATS:
        path = folder / f"kpi-report.{SUFFIX[fmt]}"
        written[fmt] = write_file(path, render_report(report, fmt, lang))
    return {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "folder": str(folder),
        "groups": len(report.groups),
        "written": sum(written.values()),
        "unchanged": len(written) - sum(written.values()),
    }


# --- the console's dashboard ---------------------------------------------------------------


def dashboard(engine: Engine, date_from: dt.date, date_to: dt.date, lang: str = "en"
              ) -> dict[str, Any]:  # fmt: skip
    """The report's body (headline, a chart and table per group, method) for the console:
    the same renderer as the HTML file."""
    lang = render.check_lang(lang)
    report = kpi_report(engine, date_from, date_to, lang=lang)
    body: Markup = render.body_html(report, lang)
    return {"from": date_from.isoformat(), "to": date_to.isoformat(), "lang": lang,
            "groups": len(report.groups), "body": body}  # fmt: skip


def dashboard_data(engine: Engine, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
    """The same period's numbers as plain data (``report_model.as_dict``)."""
    return as_dict(kpi_report(engine, date_from, date_to))
