"""The glass-box score: a binned logistic scorecard, stored as plain JSON data.

A model is ``{"kind": "binned_logistic", "intercept": float, "features": [...]}``; each feature
is ``{"name", "type": "numeric"|"category", "edges": [...]|None, "categories": [...]|None,
"points": [...], "label_en", "label_zh"}``. A numeric feature with edges ``e0 < ... < ek-1`` has
k+2 points: bin 0 is ``x < e0``, bin i is ``e(i-1) <= x < ei``, bin k is ``x >= ek-1`` and the
last is "missing". A category feature has one point per category and a last one for "other or
missing". The probability is ``1 / (1 + exp(-(intercept + sum of the account's points)))``.
Points are centred on the training population (each feature's mean points over the training rows
is 0), so a bin's points say how far it pushed the account from the average account: an
explanation's factors are the three largest by |points|.

Fitting (``fit``) one-hot encodes the bins and fits an L2-regularised logistic regression
(scikit-learn); a feature configured monotone whose fitted points are not is refitted with the
violating adjacent bins merged, until every such feature is monotone. Nothing is pickled.
docs/decisions/010-score-model.md says why.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from outreach.measurement.features import CATALOG
from outreach.measurement.score_config import FeatureConfig, ScoreConfig

KIND = "binned_logistic"
TOP_FACTORS = 3


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def bin_index(feature: dict[str, Any], value: Any) -> int:
    """The bin of ``value`` in ``feature`` (an index into its points)."""
    if feature["type"] == "numeric":
        edges = feature["edges"]
        number = _number(value)
        if number is None:
            return len(edges) + 1
        return bisect.bisect_right(edges, number)
    categories = feature["categories"]
    if value is None or str(value) not in categories:
        return len(categories)
    return int(categories.index(str(value)))


def bin_label(feature: dict[str, Any], index: int) -> str:
    """A bin in words: ``< 30``, ``30 – 60``, ``>= 90``, ``missing``, a category, ``other``."""
    if feature["type"] == "numeric":
        edges = feature["edges"]
        if index == len(edges) + 1:
            return "missing"
        if not edges:
            return "any"
        if index == 0:
            return f"< {edges[0]:g}"
        if index == len(edges):
            return f">= {edges[-1]:g}"
        return f"{edges[index - 1]:g} – {edges[index]:g}"
    categories = feature["categories"]
    return str(categories[index]) if index < len(categories) else "other or missing"


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    number = _number(value)
    return round(number, 4) if number is not None else str(value)


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def column(feature: dict[str, Any], rows: Sequence[dict[str, Any]]) -> Any:
    """A feature's values over ``rows``: floats with NaN for missing (numeric), or the values
    as text with None for missing (category)."""
    name = feature["name"]
    if feature["type"] == "numeric":
        nan = math.nan
        try:
            return np.fromiter((nan if (v := r.get(name)) is None else v for r in rows),
                               dtype=np.float64, count=len(rows))  # fmt: skip
        except (TypeError, ValueError):  # a value that is not a number: missing
            values = [_number(r.get(name)) for r in rows]
            return np.array([nan if v is None else v for v in values], dtype=np.float64)
    return [None if (v := r.get(name)) is None else str(v) for r in rows]


def bin_indices(feature: dict[str, Any], values: Any) -> np.ndarray:
    """``bin_index`` over a whole column (from ``column``), vectorised."""
    if feature["type"] == "numeric":
        edges = np.asarray(feature["edges"], dtype=np.float64)
        found = np.searchsorted(edges, values, side="right")
        return np.where(np.isnan(values), len(edges) + 1, found).astype(np.int64)
    lookup = {c: i for i, c in enumerate(feature["categories"])}
    other = len(feature["categories"])
    return np.fromiter((lookup.get(v, other) if v is not None else other for v in values),
                       dtype=np.int64, count=len(values))  # fmt: skip


CHUNK = 20_000


def apply(
    model: dict[str, Any], rows: Iterable[dict[str, Any]]
) -> Iterator[tuple[float, list[dict[str, Any]]]]:
    """For each feature row: the probability and the top factors, ``[{"feature", "label_en",
    "label_zh", "value", "bin", "points"}]``, ordered by |points| descending, at most three.
    Rows are taken in chunks and scored with array arithmetic."""
    features = model["features"]
    top = min(TOP_FACTORS, len(features))
    labels = [[bin_label(f, i) for i in range(len(f["points"]))] for f in features]
    for chunk, index, points, totals in _chunks(model, rows):
        # Stable, so ties keep the features' order and the result is the same on every run.
        order = np.argsort(-np.abs(points), axis=1, kind="stable")[:, :top].tolist()
        rounded = np.round(points, 4).tolist()
        bins = index.tolist()
        probs = (1.0 / (1.0 + np.exp(-totals))).tolist()
        for k, row in enumerate(chunk):
            factors = []
            for j in order[k]:
                f = features[j]
                factors.append({
                    "feature": f["name"], "label_en": f["label_en"], "label_zh": f["label_zh"],
                    "value": _json_value(row.get(f["name"])), "bin": labels[j][bins[k][j]],
                    "points": rounded[k][j],
                })  # fmt: skip
            yield probs[k], factors


def _chunks(
    model: dict[str, Any], rows: Iterable[dict[str, Any]]
) -> Iterator[tuple[list[dict[str, Any]], np.ndarray, np.ndarray, np.ndarray]]:
    """Rows in chunks, with each row's bin per feature, points per feature and total."""
    if model.get("kind") != KIND:
        raise ValueError(f"unknown score model kind {model.get('kind')!r}")
    features = model["features"]
    intercept = float(model["intercept"])
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, CHUNK)):
        index = np.column_stack([bin_indices(f, column(f, chunk)) for f in features])
        points = np.column_stack([
            np.asarray(f["points"], dtype=np.float64)[index[:, j]] for j, f in enumerate(features)
        ])  # fmt: skip
        yield chunk, index, points, intercept + points.sum(axis=1)


def probabilities(model: dict[str, Any], rows: Iterable[dict[str, Any]]) -> list[float]:
    """The probability of each row (``apply`` without the explanations)."""
    out: list[float] = []
    for _, _, _, totals in _chunks(model, rows):
        out.extend(1.0 / (1.0 + np.exp(-totals)))
    return [float(p) for p in out]


# --- fitting ------------------------------------------------------------------------------------


def _quantile_edges(values: Sequence[float], bins: int) -> list[float]:
    if not values:
        return []
    qs = np.quantile(np.asarray(values, dtype=float), [i / bins for i in range(1, bins)])
    # Whole numbers (days, counts) get whole edges, so a bin reads "3 – 5", not "2.4 – 4.7".
    whole = all(float(v).is_integer() for v in values)
    edges: list[float] = []
    low = min(values)
    for q in qs:
        edge = float(math.ceil(q)) if whole else float(f"{float(q):.4g}")
        # A cut at the minimum leaves its lower bin empty; duplicates collapse.
        if edge > low and (not edges or edge > edges[-1]):
            edges.append(edge)
    return edges


def _initial_features(cfg: ScoreConfig, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    features = []
    for fc in cfg.features:
        spec = CATALOG[fc.name]
        feature: dict[str, Any] = {
            "name": fc.name, "type": spec.type, "edges": None, "categories": None,
            "points": [], "label_en": spec.label_en, "label_zh": spec.label_zh,
            "monotone": fc.monotone,
        }  # fmt: skip
        if spec.type == "numeric":
            if fc.edges is not None:
                feature["edges"] = [float(e) for e in fc.edges]
            else:
                values = [n for r in rows if (n := _number(r.get(fc.name))) is not None]
                feature["edges"] = _quantile_edges(values, fc.bins or 5)
        else:
            feature["categories"] = _categories(fc, rows, cfg.training.min_category_rows)
        features.append(feature)
    return features


def _categories(fc: FeatureConfig, rows: Sequence[dict[str, Any]], min_rows: int) -> list[str]:
    if fc.categories is not None:
        return list(fc.categories)
    counts = Counter(str(v) for r in rows if (v := r.get(fc.name)) is not None)
    return sorted(c for c, n in counts.items() if n >= min_rows)


def _width(feature: dict[str, Any]) -> int:
    if feature["type"] == "numeric":
        return len(feature["edges"]) + 2
    return len(feature["categories"]) + 1


def _design(features: list[dict[str, Any]], columns: list[Any]) -> sparse.csr_matrix:
    """The one-hot bins of every row: one column per bin of every feature, sparse."""
    blocks = []
    for feature, values in zip(features, columns, strict=True):
        index = bin_indices(feature, values)
        n = len(index)
        blocks.append(sparse.csr_matrix(
            (np.ones(n), (np.arange(n), index)), shape=(n, _width(feature))
        ))  # fmt: skip
    return sparse.hstack(blocks, format="csr")


def _violation(feature: dict[str, Any]) -> int | None:
    """The first edge to drop for a monotone feature whose bins' points are not monotone."""
    direction = feature.get("monotone")
    if direction is None or feature["type"] != "numeric" or not feature["edges"]:
        return None
    points = feature["points"][: len(feature["edges"]) + 1]  # the missing bin is free
    for i in range(len(points) - 1):
        step = points[i + 1] - points[i]
        if (direction == "increasing" and step < -1e-9) or (
            direction == "decreasing" and step > 1e-9
        ):
            return i  # merge bins i and i+1: drop the edge between them
    return None


def fit(cfg: ScoreConfig, rows: Sequence[dict[str, Any]], labels: Sequence[int]) -> dict[str, Any]:
    """The scorecard fitted on ``rows`` (feature dicts) and their 0/1 ``labels``."""
    if len(set(labels)) < 2:
        raise ValueError("the training rows need both payers and non-payers")
    features = _initial_features(cfg, rows)
    y = np.asarray(labels, dtype=np.int64)
    columns = [column(f, rows) for f in features]
    merges = 0
    while True:
        x = _design(features, columns)
        regression = LogisticRegression(C=cfg.training.regularisation, max_iter=2000)
        regression.fit(x, y)
        coef = regression.coef_[0]
        intercept = float(regression.intercept_[0])
        start = 0
        for feature in features:
            width = _width(feature)
            points = coef[start : start + width]
            # Centre each feature's points on the training rows: intercept takes the mean.
            share = np.asarray(x[:, start : start + width].mean(axis=0)).ravel()
            mean = float(share @ points)
            feature["points"] = [float(p) - mean for p in points]
            intercept += mean
            start += width
        redo = False
        for feature in features:
            edge = _violation(feature)
            if edge is not None:
                del feature["edges"][edge]
                redo = True
                merges += 1
        if not redo:
            break
    return {
        "kind": KIND,
        "label": cfg.label_name,
        "intercept": round(intercept, 6),
        "merges": merges,
        "features": [{**f, "points": [round(p, 6) for p in f["points"]]} for f in features],
    }


# --- evaluation -----------------------------------------------------------------------------


def calibration(
    predicted: Sequence[float], observed: Sequence[int], bins: int = 10
) -> list[dict[str, Any]]:
    """Accounts sorted by predicted probability in ``bins`` groups of (nearly) equal size: each
    group's count, mean predicted probability and observed rate."""
    order = np.argsort(np.asarray(predicted, dtype=float), kind="stable")
    table = []
    for i, chunk in enumerate(np.array_split(order, bins)):
        if len(chunk) == 0:
            continue
        table.append({
            "bin": i + 1,
            "count": int(len(chunk)),
            "predicted": round(float(np.mean([predicted[k] for k in chunk])), 4),
            "observed": round(float(np.mean([observed[k] for k in chunk])), 4),
        })  # fmt: skip
    return table


def evaluate(predicted: Sequence[float], observed: Sequence[int]) -> dict[str, Any]:
    """AUC, Brier score, base rate and the calibration table of predictions against outcomes."""
    metrics: dict[str, Any] = {
        "rows": len(observed),
        "positives": int(sum(observed)),
        "base_rate": round(float(np.mean(observed)), 4) if observed else None,
        "auc": None,
        "brier": None,
        "calibration": [],
    }
    if observed and len(set(observed)) == 2:
        metrics["auc"] = round(float(roc_auc_score(observed, predicted)), 4)
    if observed:
        metrics["brier"] = round(float(brier_score_loss(observed, predicted)), 4)
        metrics["calibration"] = calibration(predicted, observed)
    return metrics
