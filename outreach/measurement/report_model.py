"""The shape every KPI output is rendered from: the HTML report with its SVG charts, the JSON
and CSV files, the console's dashboard. ``outreach.measurement.kpis`` fills it from the
database; the renderers read only this.

A report is a list of groups; each group is one table and one chart: the values of some
metrics along one dimension (a day, a stage, a channel, a score band, an arm...), with the
targets from config/measurement.yaml where there are any. Money is never summed across
currencies: a money metric's row carries its currency, and rates are computed per currency
before they are shown side by side.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any, Literal

Unit = Literal["money", "rate", "count", "ratio"]
# A headline money figure is per currency (e.g. ``collected``: {"USD": ...}).
Value = Decimal | float | int | dict[str, Decimal] | None

# The dimensions KPIs are grouped by (issue 16); a group names one of these.
DIMENSIONS: tuple[str, ...] = (
    "day", "week", "month", "stage", "channel", "segment", "score_band", "jurisdiction",
    "agency", "ladder_version", "arm", "bucket", "reason", "cause", "currency",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Metric:
    """One measured quantity: its key (used in JSON and CSV), its labels and its unit."""

    key: str
    label_en: str
    label_zh: str
    unit: Unit

    def label(self, lang: str) -> str:
        return self.label_zh if lang.startswith("zh") else self.label_en


@dataclasses.dataclass
class KpiGroup:
    """One table and one chart: ``metrics`` along ``dimension``.

    ``rows`` hold one dict per value of the dimension, in display order: the dimension's value
    under the key ``dimension`` (a string; "currency" too when the metrics are money), then one
    entry per metric key (None where it cannot be computed, for example a rate over zero).
    ``targets`` maps a metric key to {dimension value: target}; ``chart`` is the kind of chart
    that suits it (bar, line, stacked).
    """

    key: str
    title_en: str
    title_zh: str
    dimension: str
    metrics: list[Metric]
    rows: list[dict[str, Any]]
    targets: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    chart: Literal["bar", "line", "stacked"] = "bar"
    note_en: str = ""
    note_zh: str = ""
    # The metric keys the chart draws (one unit: one y axis); empty: the renderer chooses
    # (the unit of a metric with targets, else the rates, else the first metric's unit).
    charted: list[str] = dataclasses.field(default_factory=list)

    def title(self, lang: str) -> str:
        return self.title_zh if lang.startswith("zh") else self.title_en


@dataclasses.dataclass
class KpiReport:
    """KPIs over ``date_from``..``date_to`` (both included): headline figures and groups."""

    date_from: dt.date
    date_to: dt.date
    generated_at: dt.datetime
    headline: dict[str, Value]  # metric key -> value over the whole period (e.g. recovery_rate)
    headline_metrics: list[Metric]
    groups: list[KpiGroup]
    method: dict[str, Any] = dataclasses.field(default_factory=dict)  # attribution window...

    def group(self, key: str) -> KpiGroup:
        for g in self.groups:
            if g.key == key:
                return g
        raise KeyError(key)


def plain(value: Any) -> Any:
    """A value as JSON can carry it: Decimal as a string of its cents, dates as ISO text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Metric):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def as_dict(report: KpiReport) -> dict[str, Any]:
    """The whole report as plain data, for ``--format json`` (it has ``recovery_rate`` at the
    top level whenever the headline does)."""
    out: dict[str, Any] = {
        "from": report.date_from.isoformat(),
        "to": report.date_to.isoformat(),
        "generated_at": report.generated_at.isoformat(),
    }
    out.update({k: plain(v) for k, v in report.headline.items()})
    out["method"] = plain(report.method)
    out["groups"] = [
        {
            "key": g.key,
            "title": g.title_en,
            "dimension": g.dimension,
            "metrics": [m.key for m in g.metrics],
            "rows": plain(g.rows),
            "targets": plain(g.targets),
        }
        for g in report.groups
    ]
    return out
