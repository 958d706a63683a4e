"""Benchmark: plan a generated portfolio of N accounts on SQLite; accounts/s and peak memory.

    python bench/plan.py --accounts 100000 1000000 --repeat 3 [--write-docs]
    python bench/plan.py --accounts 20000 --workers 1 --experiment   # with one experiment

Each size is generated and imported once (cached under data/bench/), then planned ``--repeat``
times, each time in a fresh process on a ledger emptied first, so the figure is the first plan of
the day. Peak memory is the planning process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docs_block import write_block  # noqa: E402  (beside this script)

AS_OF = dt.date(2026, 11, 23)
SEED = 11


def prepare(accounts: int, workdir: Path) -> Path:
    """Generate and import the portfolio once; returns the database file."""
    from outreach.portfolio.generator import generate
    from outreach.portfolio.importer import import_file
    from outreach.storage.db import make_engine, migrate

    db = workdir / f"plan-{accounts}.db"
    done = workdir / f"plan-{accounts}.ready"
    if done.exists() and db.exists():
        return db
    db.unlink(missing_ok=True)
    portfolio = workdir / f"portfolio-{accounts}.jsonl"
    t0 = time.perf_counter()
    generate(accounts, SEED, portfolio, AS_OF)
    t1 = time.perf_counter()
    url = f"sqlite:///{db}"
    migrate(url)
    report = import_file(portfolio, engine=make_engine(url),
                         rejects_path=workdir / f"portfolio-{accounts}.rejects.jsonl")
    t2 = time.perf_counter()
    print(f"  prepared {accounts:,}: generate {t1 - t0:.1f}s, import {t2 - t1:.1f}s "
          f"({report.rows_read:,} rows, {report.rejected} rejected)", flush=True)
    portfolio.unlink()
    done.write_text("ok")
    return db


def experiment_file(workdir: Path) -> Path:
    """One running experiment over every account: the ladder in force against a challenger
    (the same ladder without its early email reminder), 45% / 45% and a 10% holdout."""
    default = (ROOT / "config" / "ladders" / "default.yaml").read_text(encoding="utf-8")
    email = ("      - id: email_reminder\n        channel: email\n"
             "        template: email/reminder\n        cadence: {every_days: 5, max_times: 3}\n")
    assert email in default
    (workdir / "challenger.yaml").write_text(default.replace(email, "", 1), encoding="utf-8")
    path = workdir / "experiments.yaml"
    path.write_text(
        "experiments:\n  - id: bench\n    status: running\n    arms:\n"
        "      - {name: champion, ladder: in_force, share: 0.45}\n"
        "      - {name: challenger, ladder: challenger.yaml, share: 0.45}\n"
        "    holdout: 0.10\n", encoding="utf-8")  # fmt: skip
    return path


def plan_once(db: Path, batch_size: int, workers: int,
              experiments: Path | None = None) -> dict[str, float]:  # fmt: skip
    """Run one plan in a child process; returns its wall time, peak RSS and counts. With
    ``experiments`` (an experiments file) the plan runs with it, assignments made afresh."""
    env = {**os.environ, "OUTREACH_EXPERIMENTS": str(experiments or ROOT / "absent.yaml")}
    code = f"""
import json, resource, time, datetime as dt
from sqlalchemy import text
from outreach.storage.db import make_engine
from outreach.planning.ladder import load_ladder
from outreach.planning.parallel import plan_parallel
from outreach.planning.planner import PlanCounts, iter_plan
from outreach.settings import ladder_path
engine = make_engine("sqlite:///{db}")
with engine.begin() as conn:
    conn.execute(text("DELETE FROM policy_decision"))
    conn.execute(text("DELETE FROM contact"))
    conn.execute(text("DELETE FROM experiment_assignment"))
    conn.execute(text("DELETE FROM account_snapshot"))
ladder = load_ladder(ladder_path())
start = time.perf_counter()
total = PlanCounts()
day = dt.date.fromisoformat("{AS_OF}")
batches = (iter_plan(engine, ladder, day, {batch_size}) if {workers} == 1 else
           plan_parallel("sqlite:///{db}", ladder, day, {batch_size}, {workers}))
for counts in batches:
    total.add(counts)
elapsed = time.perf_counter() - start
# The largest resident set among this process and its planning workers.
peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({{"seconds": elapsed, "peak_mib": peak_kib / 1024, **total.as_dict()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--accounts", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                   help="planning processes; each count is measured")
    p.add_argument("--experiment", action="store_true",
                   help="also measure each size with one running experiment (two arms)")
    p.add_argument("--write-docs", action="store_true",
                   help="write the figures into docs/performance.md")
    args = p.parse_args()
    workdir = ROOT / "data" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for n in args.accounts:
        db = prepare(n, workdir)
        variants = [(w, None) for w in args.workers]
        if args.experiment:
            variants += [(w, experiment_file(workdir)) for w in args.workers]
        for workers, experiments in variants:
            runs = [plan_once(db, args.batch_size, workers, experiments)
                    for _ in range(args.repeat)]
            seconds = statistics.median(r["seconds"] for r in runs)
            peak = max(r["peak_mib"] for r in runs)
            row = {"accounts": n, "workers": workers, "experiment": experiments is not None,
                   "median_seconds": round(seconds, 2),
                   "accounts_per_second": round(n / seconds),
                   "peak_mib": round(peak), "runs": [round(r["seconds"], 2) for r in runs],
                   "steps": runs[-1]["steps"], "send": runs[-1]["send"],
                   "defer": runs[-1]["defer"], "block": runs[-1]["block"]}
            results.append(row)
            print(json.dumps(row), flush=True)
    if args.write_docs:
        write_docs(results, args)


def write_docs(results: list[dict], args: argparse.Namespace) -> None:  # type: ignore[type-arg]
    table = [
             f"Measured {dt.date.today()} on {platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, SQLite, batch size {args.batch_size}, "
             f"median of {args.repeat} runs (`python bench/plan.py --write-docs`).", "",
             "| accounts | workers | due steps | median s | accounts/s | peak RSS MiB (one process) "
             "| runs (s) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    table += [f"| {r['accounts']:,} | {r['workers']} | {r['steps']:,} | {r['median_seconds']} | "
              f"{r['accounts_per_second']:,} | {r['peak_mib']} | "
              f"{', '.join(map(str, r['runs']))} |" for r in results]
    write_block("plan-bench", table, "Planning")


if __name__ == "__main__":
    main()
