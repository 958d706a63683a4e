"""Benchmark: ``outreach simulate`` on a generated portfolio; seconds in all, per-day medians
of the pipeline (settle, plan, dispatch) and of the people's play, and where a day's time goes.

    python bench/simulate.py --accounts 10000 --days 90 [--seed 1] [--profile FILE]

Runs the engine in this process (``outreach.simulation.engine.simulate``) in a scratch workdir
under data/bench/; ``--profile FILE`` writes a cProfile of the whole run there.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

START = dt.date(2026, 11, 2)  # a Monday


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=START)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the run here")
    args = parser.parse_args(argv)
    for name in ("outreach", "contact_channels", "policies"):
        logging.getLogger(name).setLevel(logging.WARNING)

    from outreach.simulation.engine import simulate

    workdir = ROOT / "data" / "bench" / f"simulate-{args.accounts}x{args.days}"
    began = time.monotonic()

    def progress(index: int, counts: dict[str, object]) -> None:
        print(f"  day {index + 1}/{args.days} done at {time.monotonic() - began:.0f} s",
              file=sys.stderr, flush=True)  # fmt: skip

    def run() -> object:
        return simulate(args.accounts, args.days, args.seed, args.start, workdir=workdir,
                        progress=progress)  # fmt: skip

    if args.profile:
        profiler = cProfile.Profile()
        result = profiler.runcall(run)
        profiler.dump_stats(str(args.profile))
    else:
        result = run()
    timings = result.timings  # type: ignore[attr-defined]
    figures = {
        "accounts": args.accounts,
        "days": args.days,
        "seconds": round(result.seconds, 1),  # type: ignore[attr-defined]
        "pipeline_median_s": round(statistics.median(t["pipeline"] for t in timings), 2),
        "people_median_s": round(statistics.median(t["people"] for t in timings), 2),
        "first_day_s": round(timings[0]["pipeline"] + timings[0]["people"], 1),
        "summary": result.summary(),  # type: ignore[attr-defined]
    }
    print(json.dumps(figures, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
