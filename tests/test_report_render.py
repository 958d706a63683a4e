"""The KPI report's renderings from reports built here: the self-contained HTML page with one
inline SVG chart and one table per group, English and Chinese labels, escaping of values from
config, the JSON with ``recovery_rate`` and the CSV with neutralised cells."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal

import pytest

from contact_channels.csvsafe import restore
from outreach.measurement import render
from outreach.measurement.report_model import KpiGroup, KpiReport, Metric

RECOVERY = Metric("recovery_rate", "Recovery rate", "回收率", "rate")
COLLECTED = Metric("collected", "Collected", "回收金额", "money")
CONTACTS = Metric("contacts", "Contacts", "联系次数", "count")
HOSTILE = '<script>alert("x")</script>'


def _report(stage: str = "early_reminder") -> KpiReport:
    by_bucket = KpiGroup(
        "recovery_by_bucket", "Recovery rate by days past due", "按逾期天数段的回收率", "bucket",
        [RECOVERY, CONTACTS],
        [{"bucket": "1-30", "recovery_rate": 0.31, "contacts": 120},
         {"bucket": "31-60", "recovery_rate": 0.12, "contacts": 80},
         {"bucket": "61-90", "recovery_rate": None, "contacts": 0}],
        targets={"recovery_rate": {"1-30": 0.3, "31-60": 0.15}},
    )  # fmt: skip
    by_stage = KpiGroup(
        "collected_by_stage", "Collected by stage", "按阶段回收金额", "stage", [COLLECTED],
        [{"stage": stage, "currency": "USD", "collected": Decimal("1234.50")},
         {"stage": "=HYPERLINK(1)", "currency": "CNY", "collected": Decimal("88.00")}],
    )  # fmt: skip
    by_day = KpiGroup(
        "contacts_by_day", "Contacts by day", "每日联系次数", "day", [CONTACTS],
        [{"day": f"2025-01-{d:02d}", "contacts": d * 3} for d in range(1, 29)], chart="line",
    )  # fmt: skip
    return KpiReport(
        dt.date(2025, 1, 1), dt.date(2025, 1, 28), dt.datetime(2025, 1, 29, tzinfo=dt.UTC),
        # ``collected`` is money per currency: never summed across currencies.
        {"recovery_rate": 0.2, "collected": {"USD": Decimal("1234.50"), "CNY": Decimal("88.00")}},
        [RECOVERY, COLLECTED], [by_bucket, by_stage, by_day],
        method={"attribution_window_days": 14, "fx_rates": "none: money is never converted"},
    )  # fmt: skip


def _sections(html: str) -> list[str]:
    return re.findall(r'<section class="kpi-group".*?</section>', html, flags=re.S)


def test_html_has_one_section_with_an_svg_chart_and_a_table_per_group() -> None:
    html = render.render_html(_report())
    sections = _sections(html)
    assert [re.search(r'data-group="([^"]+)"', s).group(1) for s in sections] == [  # type: ignore[union-attr]
        "recovery_by_bucket", "collected_by_stage", "contacts_by_day"]  # fmt: skip
    for section in sections:
        assert section.count("<svg") == 1 and section.count("</svg>") == 1
        assert '<table class="numbers">' in section
    # The headline at the top, the method at the bottom.
    assert html.index("kpi-headline") < html.index("kpi-group") < html.index("kpi-method")
    assert "20.0%" in html and "1,234.50 USD" in html and "88.00 CNY" in html
    assert "attribution window days" in html and "14" in html


def test_html_refers_to_nothing_outside_the_page() -> None:
    html = render.render_html(_report())
    assert "http://" not in html and "https://" not in html
    assert "//" not in re.sub(r"<style.*?</style>", "", html, flags=re.S).replace("://", "")
    assert "<script" not in html.lower()
    assert not re.search(r"\b(src|href)=\"(?!#)", html), "only in-page anchors"
    assert "<link" not in html and "@import" not in html and "url(" not in html


def test_target_is_a_series_on_the_chart_and_a_column_in_the_table() -> None:
    section = _sections(render.render_html(_report()))[0]
    # Actuals and targets: two series in the chart, each with a legend entry.
    assert set(re.findall(r'class="series (serie-[0-9]+)', section)) == {"serie-0", "serie-1"}
    assert section.count('class="legend ') == 2
    assert "Recovery rate (target)" in section
    assert "<th>Recovery rate (target)</th>" in section
    row = re.search(r"<tr><td>31-60</td>(.*?)</tr>", section).group(1)  # type: ignore[union-attr]
    assert re.findall(r"<td>(.*?)</td>", row) == ["12.0%", "15.0%", "80"]


def test_chinese_labels_everywhere_and_the_page_language() -> None:
    html = render.render_html(_report(), "zh-CN")
    assert '<html lang="zh-CN">' in html
    for text in ("按逾期天数段的回收率", "回收率 (目标)", "逾期天数段", "核心指标", "计算方法",
                 "比率", "阶段"):  # fmt: skip
        assert text in html, text
    assert "Recovery rate" not in html
    assert '<html lang="en">' in render.render_html(_report(), "en")


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="en, zh-CN"):
        render.render_html(_report(), "fr")


def test_values_from_config_are_escaped_in_the_chart_and_the_table() -> None:
    html = render.render_html(_report(stage=HOSTILE))
    assert HOSTILE not in html
    assert "<script" not in html
    assert "&lt;script&gt;" in html  # shown as text, in the chart's labels and in the table
    chart = re.search(r"<svg.*?</svg>", _sections(html)[1], flags=re.S).group(0)  # type: ignore[union-attr]
    assert "&lt;script&gt;" in chart


def test_the_same_report_gives_the_same_bytes() -> None:
    assert render.render(_report(), "html") == render.render(_report(), "html")
    assert render.render(_report(), "json") == render.render(_report(), "json")
    assert render.render(_report(), "csv") == render.render(_report(), "csv")


def test_json_is_the_report_model_with_recovery_rate() -> None:
    data = json.loads(render.render(_report(), "json"))
    assert data["recovery_rate"] == 0.2
    assert data["collected"] == {"CNY": "88.00", "USD": "1234.50"}
    assert data["from"] == "2025-01-01" and data["to"] == "2025-01-28"
    assert [g["key"] for g in data["groups"]] == [
        "recovery_by_bucket", "collected_by_stage", "contacts_by_day"]  # fmt: skip
    assert data["groups"][0]["targets"] == {"recovery_rate": {"1-30": 0.3, "31-60": 0.15}}


def test_csv_has_a_row_per_group_value_and_metric_with_its_target() -> None:
    rows = list(csv.DictReader(io.StringIO(render.render(_report(), "csv").decode())))
    assert len(rows) == 3 * 2 + 2 * 1 + 28 * 1
    first = rows[0]
    assert first == {"group": "recovery_by_bucket", "dimension": "bucket",
                     "dimension_value": "1-30", "currency": "", "metric": "recovery_rate",
                     "unit": "rate", "value": "0.31", "target": "0.3"}  # fmt: skip
    assert rows[4]["value"] == "" and rows[4]["target"] == ""  # 61-90: no rate, no target
    money = [r for r in rows if r["group"] == "collected_by_stage"]
    assert [(r["currency"], r["value"]) for r in money] == [("USD", "1234.50"), ("CNY", "88.00")]


def test_csv_neutralises_formula_prefixes() -> None:
    rows = list(csv.DictReader(io.StringIO(render.render(_report(), "csv").decode())))
    cell = [r for r in rows if r["currency"] == "CNY"][0]["dimension_value"]
    assert cell == "'=HYPERLINK(1)"
    assert restore(cell) == "=HYPERLINK(1)"


def test_a_group_without_rows_still_has_its_section() -> None:
    report = _report()
    report.groups.append(KpiGroup("agency", "Agency recovery", "机构回收", "agency",
                                  [RECOVERY], []))  # fmt: skip
    section = _sections(render.render_html(report))[-1]
    assert section.count("<svg") == 1 and "No data in this period" in section


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [(0.1234, "rate", "12.3%"), (Decimal("1234.5"), "money", "1,234.50"), (12345, "count", "12,345"),
     (None, "rate", "–"), (0.125, "ratio", "0.125")],
)  # fmt: skip
def test_values_are_shown_by_unit(value: object, unit: str, shown: str) -> None:
    assert render.format_value(value, unit) == shown  # type: ignore[arg-type]


def test_the_chart_draws_rates_or_the_targeted_unit_unless_the_group_chooses() -> None:
    report = _report()
    by_bucket = report.group("recovery_by_bucket")
    # The target is on the recovery rate: the rates are charted, the counts only tabled.
    assert render.charted_metrics(by_bucket) == [RECOVERY]
    by_bucket.targets = {}
    assert render.charted_metrics(by_bucket) == [RECOVERY]  # rates before counts
    by_bucket.charted = ["contacts"]
    assert render.charted_metrics(by_bucket) == [CONTACTS]
    chart = render.chart_svg(by_bucket, "en")
    assert ">Contacts<" in chart and ">Recovery rate<" not in chart
    by_bucket.charted = ["no_such_metric"]
    assert render.charted_metrics(by_bucket) == [RECOVERY]
