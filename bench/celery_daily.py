"""Benchmark: the daily DAG for N accounts through the Celery topology; wall time, task instances.

    python bench/celery_daily.py --accounts 1000000 [--batch-size 20000] [--write-docs]

Runs ``scripts/celery_stack.py --outbox`` (PostgreSQL for Airflow's metadata and the app,
Redis as the Celery broker, the scheduler, dag-processor, api-server and one Celery worker, as
plain processes on this machine) for a generated portfolio, every channel kind recording to the
outbox. The run is ``outreach_daily`` for one logical date on the logical clock: ingest of the
whole portfolio, planning and every channel's dispatch. The stack script checks that the run
succeeded and that every contact the ledger calls sent is in the outbox exactly once.

Reported: the run's wall time (trigger to terminal state), its task-instance count, and per
task the instances, their summed run time and the span from the first start to the last end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docs_block import write_block  # noqa: E402  (beside this script)

# The phases of outreach_daily, in run order, and the task ids each is made of.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ingest (import the portfolio)", ("ingest",)),
    ("recall placements", ("recall_placements",)),
    ("plan", ("plan_batches", "plan_batch")),
    ("dispatch", ("dispatch_batches_", "dispatch_")),
    ("close the day (print manifest, placement files)", ("close_",)),
    ("call-queue refresh, summary", ("refresh_call_queue", "summary")),
)


def phase_of(task_id: str) -> str:
    for name, prefixes in PHASES:
        for prefix in prefixes:
            if task_id == prefix or (prefix.endswith("_") and task_id.startswith(prefix)):
                return name
    return "other"


def phases(tasks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Task timings summed per phase: instances, task seconds, first start and last end."""
    out: dict[str, dict[str, Any]] = {}
    for task_id, t in tasks.items():
        p = out.setdefault(
            phase_of(task_id),
            {"instances": 0, "task_seconds": 0.0, "first_start": t["first_start"],
             "last_end": t["last_end"]},
        )  # fmt: skip
        p["instances"] += t["instances"]
        p["task_seconds"] += t["task_seconds"]
        p["first_start"] = min(p["first_start"], t["first_start"])
        p["last_end"] = max(p["last_end"], t["last_end"])
    order = [name for name, _ in PHASES] + ["other"]
    return [{"phase": name, **out[name]} for name in order if name in out]


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="celery-bench-") as tmp:
        figures_path = Path(tmp) / "figures.json"
        cmd = [
            sys.executable,
            str(ROOT / "scripts" / "celery_stack.py"),
            "--outbox",
            "--accounts",
            str(args.accounts),
            "--concurrency",
            str(args.concurrency),
            "--timeout",
            str(args.timeout),
            "--json-out",
            str(figures_path),
        ]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        if args.pg:
            cmd += ["--pg", args.pg]
        started = time.monotonic()
        result = subprocess.run(cmd, check=False)
        if result.returncode != 0 or not figures_path.exists():
            raise SystemExit(f"the Celery stack run failed (exit {result.returncode})")
        figures: dict[str, Any] = json.loads(figures_path.read_text())
        figures["bench_seconds"] = round(time.monotonic() - started, 1)
        # The raw figures first, so that nothing after an hour's run can lose them.
        print(json.dumps(figures, sort_keys=True), flush=True)
        return figures


def report(figures: dict[str, Any]) -> list[str]:
    sent = figures["sent"]
    total = sum(sent.values())
    lines = [
        f"Measured {dt.date.today()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}: {figures['accounts']:,} accounts, batch size "
        f"{figures['batch_size'] or 'default'}, one Celery worker with "
        f"{figures['concurrency']} slots, PostgreSQL and Redis on the same machine, every "
        f"channel to the outbox, one run (`python bench/celery_daily.py --write-docs`).",
        "",
        f"- **Run wall time** (trigger to success): {figures['run_seconds']:,.0f} s "
        f"({figures['run_seconds'] / 60:.1f} min), **{figures['task_instances']:,} task "
        f"instances**, state `{figures['state']}`.",
        f"- Sent: {total:,} contacts ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(sent.items()))
        + "); the outbox holds each exactly once.",
        f"- Whole script, including generating the portfolio, migrating and starting the "
        f"processes: {figures.get('bench_seconds', figures.get('stack_seconds', 0)):,.0f} s.",
        "",
        "| phase | task instances | summed task s | from s | to s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for p in phases(figures["tasks"]):
        lines.append(
            f"| {p['phase']} | {p['instances']:,} | {p['task_seconds']:,.0f} | "
            f"{p['first_start']:,.0f} | {p['last_end']:,.0f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=20_000, help="the DAG's batch_size")
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker slots")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument("--pg", help="PostgreSQL server URL (default: the stack script's)")
    parser.add_argument("--from-json", help="report a run's figures file instead of running")
    parser.add_argument("--json-out", help="also keep the figures here")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    if args.from_json:
        figures = json.loads(Path(args.from_json).read_text())
    else:
        figures = run(args)
    lines = report(figures)
    print("\n".join(lines), flush=True)
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2, sort_keys=True))
    if args.write_docs:
        write_block(f"celery-bench-{figures['accounts']}", lines, "The daily DAG through Celery")
    return 0


if __name__ == "__main__":
    sys.exit(main())
