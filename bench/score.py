"""Benchmark: the day's scoring and the plan with a score model active, on SQLite.

    python bench/score.py --accounts 20000 --repeat 3 [--write-docs]

The portfolio is bench/plan.py's (generated and imported once, cached under data/bench/). A copy
of it gets an active scorecard with every feature of config/score.yaml (the shape training
produces: its edges and categories; the points are fixed made-up numbers, which the time does
not depend on). Measured: ``score_day`` (features read, model applied, rows written; the first
run and the reruns, which replace the day's rows), then the plan of the day with no model (the
original) and with the model active and the day scored, alternately, each in a fresh process on
an emptied ledger (bench/plan.py's ``plan_once``). Figures go into docs/score-bands.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_block import write_block  # noqa: E402  (beside this script)
from plan import AS_OF, plan_once, prepare  # noqa: E402

DOCS = ROOT / "docs" / "score-bands.md"
VERSION = "bench-scorecard"


def bench_model() -> dict[str, Any]:
    """A scorecard over every configured feature: numeric ones on their configured edges (or
    a few fixed cut points), category ones on a few values; points alternate in sign."""
    from outreach.measurement.features import CATALOG
    from outreach.measurement.score_config import score_config

    features = []
    for i, fc in enumerate(score_config().features):
        spec = CATALOG[fc.name]
        sign = 1 if i % 2 else -1
        if spec.type == "numeric":
            edges = list(fc.edges) if fc.edges else [1.0, 10.0, 100.0, 1000.0]
            points = [sign * 0.1 * (k - len(edges) / 2) for k in range(len(edges) + 1)] + [0.0]
            features.append({"name": fc.name, "type": "numeric", "edges": edges,
                             "categories": None, "points": points,
                             "label_en": fc.name, "label_zh": fc.name})  # fmt: skip
        else:
            categories = {"product": ["credit_card", "consumer_loan"], "country": ["US", "CN", "GB"],
                          "region": ["US-NY", "US-CA", "CN-SH"],
                          "cause": ["job_loss", "illness", "forgot"]}.get(fc.name, ["a", "b"])  # fmt: skip
            points = [sign * 0.05 * k for k in range(len(categories))] + [0.0]
            features.append({"name": fc.name, "type": "category", "edges": None,
                             "categories": categories, "points": points,
                             "label_en": fc.name, "label_zh": fc.name})  # fmt: skip
    return {"kind": "binned_logistic", "intercept": -0.5, "features": features}


def scored_copy(db: Path) -> Path:
    """The portfolio's database with the bench scorecard active (copied once)."""
    from sqlalchemy import insert

    from outreach.storage.db import make_engine
    from outreach.storage.models import ScoreModel

    copy = db.with_name(db.stem + "-scored.db")
    copy.unlink(missing_ok=True)
    # SQLite's backup API: the file alone can miss pages still in the write-ahead log.
    with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    model = bench_model()
    with make_engine(f"sqlite:///{copy}").begin() as conn:
        conn.execute(insert(ScoreModel).values(
            version=VERSION, kind="binned_logistic", label="pays_within_30d", state="active",
            trained_at=dt.datetime(2026, 11, 22), trained_by="bench",
            window_from=AS_OF - dt.timedelta(days=120), window_to=AS_OF - dt.timedelta(days=30),
            features=[f["name"] for f in model["features"]], model=model, metrics={}))  # fmt: skip
    return copy


def score_once(db: Path) -> dict[str, Any]:
    from outreach.measurement.score_config import score_config
    from outreach.measurement.scoring import score_day
    from outreach.storage.db import make_engine

    engine = make_engine(f"sqlite:///{db}")
    start = time.perf_counter()
    result = score_day(engine, AS_OF, score_config())
    return {"seconds": time.perf_counter() - start, **result}


def runs(results: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['seconds']:.2f}" for r in results)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--accounts", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--write-docs", action="store_true")
    args = p.parse_args()
    workdir = ROOT / "data" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    db = prepare(args.accounts, workdir)
    scored = scored_copy(db)
    scoring = [score_once(scored) for _ in range(args.repeat)]
    print("scoring:", [round(r["seconds"], 2) for r in scoring], scoring[-1]["by_band"], flush=True)
    without, with_model = [], []
    for _ in range(args.repeat):  # alternately, so that the machine's load falls on both alike
        without.append(plan_once(db, args.batch_size, 1))
        with_model.append(plan_once(scored, args.batch_size, 1))
        print("plan:", round(without[-1]["seconds"], 2), round(with_model[-1]["seconds"], 2),
              flush=True)  # fmt: skip
    scored.unlink()
    n = args.accounts
    score_s = statistics.median(r["seconds"] for r in scoring)
    plain_s = statistics.median(r["seconds"] for r in without)
    banded_s = statistics.median(r["seconds"] for r in with_model)
    lines = [
        f"Measured {dt.date.today()} on {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite, {n:,} generated accounts, median of {args.repeat} "
        f"runs (`python bench/score.py --accounts {n} --write-docs`).",
        "",
        "| what | median s | accounts/s | runs (s) |",
        "| --- | ---: | ---: | --- |",
        f"| scoring the day ({scoring[-1]['scored']:,} accounts in collections scored; "
        f"{', '.join(f'{k} {v:,}' for k, v in scoring[-1]['by_band'].items())}) | "
        f"{score_s:.2f} | {round(n / score_s):,} | "
        f"{runs(scoring)} |",
        f"| plan, no model active | {plain_s:.2f} | {round(n / plain_s):,} | {runs(without)} |",
        f"| plan, model active, the day scored | {banded_s:.2f} | {round(n / banded_s):,} | "
        f"{runs(with_model)} |",
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_block("score-bench", lines, "Measured", path=DOCS)


if __name__ == "__main__":
    main()
