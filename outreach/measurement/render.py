"""Renderings of a ``KpiReport`` (``report_model``): a self-contained HTML page with one inline
SVG chart (pygal) and one table per KPI group, the same body for the console's dashboard, the
JSON of ``report_model.as_dict`` and a CSV with one row per group, dimension value and metric.

Nothing rendered here refers to anything outside the page: no script, font, stylesheet or
image by URL; pygal's own script is switched off and its XML comments and namespace URLs are
dropped. Every text from data (dimension values come from config and ladder names) is
escaped: by Jinja2's autoescape in the page, by the XML serializer in the charts. The same
report gives the same bytes: chart ids come from the group keys, not from random UUIDs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from contact_channels.drops import csv_bytes
from outreach.measurement.report_model import (
    KpiGroup,
    KpiReport,
    Metric,
    Unit,
    as_dict,
    plain,
)

LANGS = ("en", "zh-CN")

# The page's own words; metric names and group titles come from the report.
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Collections KPI report", "period": "Period", "generated": "Generated",
        "headline": "Headline", "method": "Method", "target": "target",
        "no_data": "No data in this period", "contents": "Contents",
    },
    "zh": {
        "title": "催收关键指标报告", "period": "期间", "generated": "生成时间",
        "headline": "核心指标", "method": "计算方法", "target": "目标",
        "no_data": "本期无数据", "contents": "目录",
    },
}  # fmt: skip

DIMENSION_LABELS: dict[str, tuple[str, str]] = {
    "day": ("Day", "日"), "week": ("Week", "周"), "month": ("Month", "月"),
    "stage": ("Stage", "阶段"), "channel": ("Channel", "渠道"), "segment": ("Segment", "客群"),
    "score_band": ("Score band", "评分段"), "jurisdiction": ("Jurisdiction", "司法辖区"),
    "agency": ("Agency", "催收机构"), "ladder_version": ("Ladder version", "策略版本"),
    "arm": ("Experiment arm", "实验组"), "bucket": ("Days past due", "逾期天数段"),
    "reason": ("Reason", "原因"), "cause": ("Cause of delinquency", "逾期原因"),
    "currency": ("Currency", "币种"),
}  # fmt: skip

UNIT_LABELS: dict[str, tuple[str, str]] = {
    "rate": ("Rate", "比率"), "money": ("Amount", "金额"), "count": ("Count", "数量"),
    "ratio": ("Ratio", "比值"),
}  # fmt: skip

# The order in which a group's unit is chosen for its chart when its metrics mix units: the
# chart shows the metrics of one unit (one y axis); the table shows them all.
_MANY_LABELS = 20  # more x labels than this: show every few, rotated


def _zh(lang: str) -> bool:
    return lang.lower().startswith("zh")


def check_lang(lang: str) -> str:
    """``en`` or ``zh-CN`` (case-insensitive); anything else is a ValueError naming them."""
    for known in LANGS:
        if lang.lower() == known.lower():
            return known
    raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")


def words(lang: str) -> dict[str, str]:
    return WORDS["zh" if _zh(lang) else "en"]


def dimension_label(dimension: str, lang: str) -> str:
    en, zh = DIMENSION_LABELS.get(dimension, (dimension.replace("_", " ").capitalize(), dimension))
    return zh if _zh(lang) else en


# --- numbers as shown ----------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def format_value(value: Any, unit: Unit, currency: str | None = None) -> str:
    """A value as the table shows it: rates as percentages, money with two decimals and its
    currency, counts whole, ratios with up to four decimals; '–' where there is none."""
    if value is None:
        return "–"
    if isinstance(value, dict):  # money per currency (a headline such as ``collected``)
        return "; ".join(format_value(v, unit, str(k)) for k, v in sorted(value.items()))
    number = _number(value)
    if number is None:
        return str(value)
    if unit == "rate":
        return f"{number:.1%}"
    if unit == "money":
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        text = f"{amount.quantize(Decimal('0.01')):,}"
        return f"{text} {currency}" if currency else text
    if unit == "count":
        return f"{number:,.0f}"
    return f"{number:,.4g}"


def _axis_formatter(unit: Unit) -> Callable[[float], str]:
    if unit == "rate":
        return lambda v: f"{v:.0%}" if v is not None else ""
    if unit == "count":
        return lambda v: f"{v:,.0f}" if v is not None else ""
    return lambda v: f"{v:,.2f}" if v is not None else ""


# --- the groups as tables ------------------------------------------------------------------


def _target(group: KpiGroup, metric: str, row_value: str) -> float | None:
    """The target for ``metric`` at one value of the group's dimension; ``*`` applies to all."""
    targets = group.targets.get(metric) or {}
    found = targets.get(row_value, targets.get("*"))
    return _number(found)


def _row_label(group: KpiGroup, row: dict[str, Any]) -> str:
    label = str(row.get(group.dimension, ""))
    currency = row.get("currency")
    if currency and group.dimension != "currency":
        label = f"{label} ({currency})"
    return label


def table(group: KpiGroup, lang: str) -> dict[str, Any]:
    """The group as a table: a header and rows of shown strings (escaped by the template)."""
    w = words(lang)
    target_keys = [m.key for m in group.metrics if group.targets.get(m.key)]
    header = [dimension_label(group.dimension, lang)]
    for m in group.metrics:
        header.append(m.label(lang))
        if m.key in target_keys:
            header.append(f"{m.label(lang)} ({w['target']})")
    rows = []
    for row in group.rows:
        value = str(row.get(group.dimension, ""))
        currency = row.get("currency")
        cells = [_row_label(group, row)]
        for m in group.metrics:
            cells.append(
                format_value(row.get(m.key), m.unit, currency if m.unit == "money" else None)
            )
            if m.key in target_keys:
                cells.append(format_value(_target(group, m.key, value), m.unit))
        rows.append(cells)
    return {"header": header, "rows": rows}


# --- the groups as charts ------------------------------------------------------------------


def charted_metrics(group: KpiGroup) -> list[Metric]:
    """The metrics a group's chart shows, all of one unit (one y axis): the group's own choice
    (``KpiGroup.charted``) when it makes one; else the unit of the first
    metric with a target (so the target is on the chart), else rates when the group has any
    (money in several currencies does not share an axis), else the first metric's unit. The
    table shows every metric."""
    if not group.metrics:
        return []
    chosen = [m for m in group.metrics if m.key in group.charted]
    if chosen:
        return [m for m in chosen if m.unit == chosen[0].unit]
    units = [m.unit for m in group.metrics]
    targeted = [m.unit for m in group.metrics if group.targets.get(m.key)]
    unit = targeted[0] if targeted else "rate" if "rate" in units else units[0]
    return [m for m in group.metrics if m.unit == unit]


def _chart_id(group: KpiGroup) -> str:
    """A stable, id-safe name for the chart's CSS scope: the same group gives the same bytes."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", group.key)[:40]
    digest = hashlib.sha256(group.key.encode()).hexdigest()[:8]
    return f"{safe}-{digest}"


def _style() -> Any:
    from pygal.style import Style

    # Local font names only (no web font): CJK fonts for the Chinese labels where installed.
    fonts = "'DejaVu Sans','Noto Sans CJK SC','WenQuanYi Zen Hei','Microsoft YaHei',sans-serif"
    return Style(
        font_family=fonts, background="white", plot_background="white",
        foreground="#333", foreground_strong="#111", foreground_subtle="#888",
        colors=("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"),
        title_font_size=15, label_font_size=11, major_label_font_size=11,
        legend_font_size=12, value_font_size=11,
    )  # fmt: skip


def _strip(root: ET.Element) -> ET.Element:
    """pygal's tree without what an inline chart must not carry: its comments (a date and two
    URLs), its script (the chart's config as JavaScript, for tooltips we do not load) and the
    namespace URLs (an SVG inside HTML needs none)."""
    root.attrib.pop("xmlns", None)
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag is ET.Comment or child.tag == "script":  # type: ignore[comparison-overlap]
                parent.remove(child)
    return root


def chart_svg(group: KpiGroup, lang: str) -> Markup:
    """The group's chart as an inline ``<svg>`` element (pygal, no script).

    A bar group is drawn as bars, a line group (days, weeks, months) as lines, a stacked group
    as stacked bars. A group with targets is drawn as lines, the targets dashed beside the
    actuals, so that each actual can be read against its target."""
    import pygal

    metrics = charted_metrics(group)
    unit = metrics[0].unit if metrics else "count"
    w = words(lang)
    has_targets = any(group.targets.get(m.key) for m in metrics)
    kind: Any = pygal.Bar
    if group.chart == "line" or has_targets:
        kind = pygal.Line
    elif group.chart == "stacked":
        kind = pygal.StackedBar
    # One x position per value of the dimension; rows in several currencies become one series
    # per currency (money and rates are never mixed across currencies).
    labels = list(dict.fromkeys(str(row.get(group.dimension, "")) for row in group.rows))
    currencies = list(dict.fromkeys(row.get("currency") for row in group.rows))
    by_cell = {(str(row.get(group.dimension, "")), row.get("currency")): row for row in group.rows}
    many = len(labels) > _MANY_LABELS
    chart = kind(
        js=[], disable_xml_declaration=True, style=_style(), width=900, height=380,
        title=group.title(lang), x_title=dimension_label(group.dimension, lang),
        y_title=UNIT_LABELS.get(unit, (unit, unit))[1 if _zh(lang) else 0],
        legend_at_bottom=True, truncate_legend=40,
        truncate_label=24, x_label_rotation=40 if many or len(labels) > 8 else 0,
        show_minor_x_labels=not many, x_labels_major_every=max(1, len(labels) // 12),
        value_formatter=_axis_formatter(unit), no_data_text=w["no_data"],
        include_x_axis=True, print_values=False, dots_size=4, stroke_style={"width": 2},
    )  # fmt: skip
    chart.uuid = _chart_id(group)
    chart.x_labels = labels
    series: dict[str, Any] = {}
    if kind is pygal.Line and group.chart != "line":
        series = {"stroke": False, "dots_size": 7}  # markers, not a trend, over categories
    for m in metrics:
        for currency in currencies:
            values = [_number(by_cell.get((v, currency), {}).get(m.key)) for v in labels]
            title = m.label(lang) + (f" ({currency})" if len(currencies) > 1 else "")
            chart.add(title, values, **series)
    for m in metrics:
        if group.targets.get(m.key):
            values = [_target(group, m.key, v) for v in labels]
            chart.add(f"{m.label(lang)} ({w['target']})", values,
                      stroke_style={"width": 3, "dasharray": "8,5"}, dots_size=3)  # fmt: skip
    root = _strip(chart.render_tree())
    return Markup(ET.tostring(root, encoding="unicode"))


# --- the page ------------------------------------------------------------------------------


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("outreach.measurement", "report_templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        keep_trailing_newline=True,
    )


def _method_items(method: dict[str, Any]) -> list[tuple[str, str]]:
    """The method as (name, text) pairs; a nested mapping gives one pair per entry."""

    def shown(value: Any) -> str:
        if isinstance(value, dict | list):
            return json.dumps(plain(value), ensure_ascii=False, sort_keys=True, default=str)
        return str(value)

    items = []
    for key, value in sorted(method.items()):
        name = str(key).replace("_", " ")
        if (
            isinstance(value, dict)
            and value
            and all(not isinstance(v, dict) for v in value.values())
        ):
            items += [(f"{name}: {str(k).replace('_', ' ')}", shown(v)) for k, v in value.items()]
        else:
            items.append((name, shown(value)))
    return items


def sections(report: KpiReport, lang: str) -> list[dict[str, Any]]:
    """One section per group, in the report's order: its key, title, note, chart and table."""
    return [
        {
            "key": g.key,
            "anchor": "g-" + _chart_id(g),
            "title": g.title(lang),
            "note": g.note_zh if _zh(lang) else g.note_en,
            "svg": chart_svg(g, lang),
            "table": table(g, lang),
        }
        for g in report.groups
    ]


def headline(report: KpiReport, lang: str) -> list[tuple[str, str]]:
    """The headline figures as shown; a single money figure is in the reporting currency (a
    per-currency one names its currencies)."""
    currency = report.method.get("reporting_currency")
    return [
        (m.label(lang), format_value(report.headline.get(m.key), m.unit, currency))
        for m in report.headline_metrics
    ]


def body_html(report: KpiReport, lang: str = "en") -> Markup:
    """The report without its page: headline, one section per group, the method. The console's
    dashboard shows exactly this."""
    lang = check_lang(lang)
    template = _environment().get_template("body.html")
    return Markup(template.render(**_context(report, lang)))


def _context(report: KpiReport, lang: str) -> dict[str, Any]:
    return {
        "lang": lang,
        "w": words(lang),
        "date_from": report.date_from.isoformat(),
        "date_to": report.date_to.isoformat(),
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        "headline": headline(report, lang),
        "sections": sections(report, lang),
        "method": _method_items(report.method),
    }


def render_html(report: KpiReport, lang: str = "en") -> str:
    """The whole report as one self-contained HTML page (readable offline)."""
    lang = check_lang(lang)
    context = _context(report, lang)
    context["body"] = Markup(_environment().get_template("body.html").render(**context))
    return _environment().get_template("report.html").render(**context)


def render_json(report: KpiReport) -> str:
    """``report_model.as_dict`` as JSON text (keys sorted: the same report, the same text)."""
    return json.dumps(as_dict(report), ensure_ascii=False, sort_keys=True, indent=2) + "\n"


CSV_COLUMNS = ("group", "dimension", "dimension_value", "currency", "metric", "unit", "value",
               "target")  # fmt: skip


def csv_rows(report: KpiReport) -> Iterable[dict[str, Any]]:
    """One row per (group, dimension value, metric), with the target where there is one."""
    for g in report.groups:
        for row in g.rows:
            value = str(row.get(g.dimension, ""))
            for m in g.metrics:
                number = row.get(m.key)
                target = _target(g, m.key, value)
                yield {
                    "group": g.key, "dimension": g.dimension, "dimension_value": value,
                    "currency": row.get("currency") or "", "metric": m.key, "unit": m.unit,
                    "value": "" if number is None else plain(number),
                    "target": "" if target is None else target,
                }  # fmt: skip


def render_csv(report: KpiReport) -> bytes:
    """The numbers as CSV (UTF-8, CRLF), every cell through ``csvsafe`` (formula prefixes
    neutralised: a dimension value from config could start with ``=``)."""
    return csv_bytes(CSV_COLUMNS, csv_rows(report))


FORMATS = ("html", "json", "csv")


def render(report: KpiReport, fmt: str = "html", lang: str = "en") -> bytes:
    """The report in ``fmt`` (html, json or csv) as bytes."""
    if fmt == "html":
        return render_html(report, lang).encode("utf-8")
    if fmt == "json":
        return render_json(report).encode("utf-8")
    if fmt == "csv":
        return render_csv(report)
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def with_generated_at(report: KpiReport, when: dt.datetime) -> KpiReport:
    """The same report stamped ``when`` (a scheduled run stamps its logical date, so a rerun
    writes the same bytes)."""
    return dataclasses.replace(report, generated_at=when)
