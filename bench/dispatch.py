"""Benchmark: sustained SMS and email dispatch through the real Twilio and SendGrid SDKs.

    python bench/dispatch.py [--accounts 60000] [--rate 200] [--repeat 3] [--write-docs]

A generated portfolio is imported and planned once (cached under data/bench/). Each run starts
from a copy of that planned ledger, starts the fake providers in their own processes on
127.0.0.1 (so their HTTP work does not share our interpreter), and dispatches one channel with
``--workers`` processes, each taking every n-th dispatch range as mapped Airflow tasks would,
through the real SDKs over HTTP. The dispatch is the production path: claim, re-read the facts,
judge at the send instant, render, send, record.

Two modes per channel:
- ``limited``: ``rate_limit: {per_second: RATE, store: file}`` shared by the workers, and the
  fake provider answering 429 above RATE * 1.05 a second, so a 429 means our limiter let too
  much through. The rate is in the provider's unit: SMS segments for Twilio (an SMS takes one
  token per segment), emails for SendGrid. Reported: the median rate over the run's whole
  seconds, in messages and in those units, and the 429s.
- ``unlimited``: no limiter; the fake never refuses.

Exactly once is checked on every run: the fake's accepted ledger keys are distinct and as many
as the ledger's sent rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docs_block import write_block  # noqa: E402  (beside this script)

AS_OF = dt.date(2026, 11, 23)
AT = "2026-11-23T17:00:00"  # 12:00 in New York, 09:00 in Los Angeles: most US windows open
PROVIDERS = {"sms": ("twilio", "fakes.twilio_server"), "email": ("sendgrid", "fakes.sendgrid_server")}


def _plan_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_plan", ROOT / "bench" / "plan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(accounts: int, workdir: Path) -> Path:
    """The portfolio imported and planned for AS_OF, once; returns the database file."""
    planned = workdir / f"dispatch-{accounts}.db"
    done = workdir / f"dispatch-{accounts}.ready"
    if done.exists() and planned.exists():
        return planned
    imported = _plan_module().prepare(accounts, workdir)
    shutil.copyfile(imported, planned)
    from outreach.planning.ladder import load_ladder
    from outreach.planning.planner import iter_plan
    from outreach.settings import ladder_path
    from outreach.storage.db import make_engine

    engine = make_engine(f"sqlite:///{planned}")
    t0 = time.perf_counter()
    for _ in iter_plan(engine, load_ladder(ladder_path()), AS_OF, 10_000):
        pass
    engine.dispose()
    print(f"  planned {accounts:,} accounts in {time.perf_counter() - t0:.1f}s", flush=True)
    done.write_text("ok")
    return planned


def start_fake(module: str, max_rate: float | None) -> tuple[subprocess.Popen[str], str, str]:
    """A fake provider in its own process; returns it, its base URL and the connection JSON."""
    cmd = [sys.executable, "-m", module]
    if max_rate is not None:
        cmd += ["--max-rate", str(max_rate)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    base_url = proc.stdout.readline().split(" on ")[-1].strip()
    conn = proc.stdout.readline().split("=", 1)[1].strip().strip("'")
    return proc, base_url, conn


def fake_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url}/_fake/stats", timeout=30) as reply:
        return json.loads(reply.read())  # type: ignore[no-any-return]


WORKER = """
import datetime as dt, json, sys, time
from outreach.storage.db import make_engine
from outreach.dispatch.dispatcher import dispatch_range, dispatch_ranges
db, channel, index, workers, concurrency = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
deadline = time.perf_counter() + float(sys.argv[6])
engine = make_engine(f"sqlite:///{db}")
day = dt.date.fromisoformat(sys.argv[7])
at = dt.datetime.fromisoformat(sys.argv[8])
ranges = dispatch_ranges(engine, day, channel, 250)[index::workers]
start = time.perf_counter()
totals = {}
for lo, hi in ranges:
    if time.perf_counter() > deadline:
        break
    counts = dispatch_range(engine, day, channel, lo, hi, clock="wall", now=lambda: at,
                            concurrency=concurrency).as_dict()
    totals = {k: totals.get(k, 0) + v for k, v in counts.items()}
print(json.dumps({"seconds": time.perf_counter() - start, **totals}))
"""


def run_once(
    planned: Path, channel: str, *, rate: float | None, workers: int, concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    provider, module = PROVIDERS[channel]
    scratch = Path(tempfile.mkdtemp(prefix="dispatch-bench-", dir=planned.parent))
    try:
        db = scratch / "app.db"
        shutil.copyfile(planned, db)
        from outreach.storage.db import migrate

        migrate(f"sqlite:///{db}")  # a cached portfolio may predate the latest revision
        config = scratch / "config"
        shutil.copytree(ROOT / "config", config)
        section: dict[str, Any] = {"backend": provider, "concurrency": concurrency}
        if rate is not None:
            section["rate_limit"] = {"per_second": rate, "burst": max(1, int(rate / 10)),
                                     "store": "file"}
        (config / "channels.yaml").write_text(json.dumps({channel: section}))
        # The provider's own limit sits 5% above ours: only our limiter's fault can reach it.
        fake, base_url, conn = start_fake(module, rate * 1.05 if rate is not None else None)
        from outreach.kernel.identity import demo_identity

        env = {**os.environ, **demo_identity(), "OUTREACH_CONFIG_DIR": str(config),
               "OUTREACH_DATA_DIR": str(scratch),
               f"AIRFLOW_CONN_{provider.upper()}_DEFAULT": conn, "PYTHONPATH": str(ROOT)}
        try:
            started = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(db), channel, str(i),
                                       str(workers), str(concurrency), str(seconds),
                                       AS_OF.isoformat(), AT],
                                      cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for i in range(workers)]
            done = [p.communicate() for p in procs]
            outs = [out for out, _ in done]
            wall = time.perf_counter() - started
            if any(p.returncode for p in procs):
                tail = "\n".join(err.strip().splitlines()[-1] for _, err in done if err.strip())
                raise RuntimeError(f"a dispatch worker failed: {tail}")
            counts = [json.loads(o.strip().splitlines()[-1]) for o in outs]
            stats = fake_stats(base_url)
        finally:
            fake.send_signal(signal.SIGINT)
            try:
                fake.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # Its figures are read already; a shutdown stuck on a keep-alive socket must
                # not fail the run.
                fake.kill()
                fake.wait()
        with sqlite3.connect(db) as con:
            sent = con.execute("SELECT COUNT(*) FROM contact WHERE channel = ? AND state = 'sent'",
                               (channel,)).fetchone()[0]
        if not stats["accepted"] == stats["distinct_keys"] == sent:
            raise RuntimeError(f"exactly once broken: {stats['accepted']} accepted, "
                               f"{stats['distinct_keys']} distinct, {sent} sent in the ledger")
        per_second = stats["accepted_per_second"]
        whole = per_second[1:-1] or per_second  # the first and last seconds are partial
        # The sustained rate: each whole second while both workers were still sending (a
        # worker past its deadline finishes its last range alone).
        held = max(1, int(min(c["seconds"] for c in counts)) - 1)
        whole = whole[:held]
        units = stats["accepted_units_per_second"]
        whole_units = (units[1:-1] or units)[:held]
        return {"channel": channel, "mode": "limited" if rate else "unlimited", "rate": rate,
                "sent": sent, "seconds": round(wall, 1), "per_second": round(sent / wall),
                "median_second": statistics.median(whole) if whole else 0,
                "median_units_second": statistics.median(whole_units) if whole_units else 0,
                "min_second": min(whole) if whole else 0, "held_seconds": len(whole),
                "rate_limited_429": stats["rate_limited"], "requests": stats["requests"],
                "max_in_flight": stats["max_in_flight"],
                "suppressed": sum(c["suppressed"] for c in counts),
                "deferred": sum(c["deferred"] for c in counts)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--accounts", type=int, default=160_000)
    p.add_argument("--seconds", type=float, default=60.0,
                   help="each worker starts no new dispatch range after this")
    p.add_argument("--rate", type=float, default=200.0,
                   help="the limited mode's rate a second: SMS segments, emails")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="dispatch processes per channel")
    p.add_argument("--concurrency", type=int, default=16, help="sender threads per process")
    p.add_argument("--channels", nargs="+", default=["sms", "email"], choices=sorted(PROVIDERS))
    p.add_argument("--modes", nargs="+", default=["limited", "unlimited"],
                   choices=["limited", "unlimited"])
    p.add_argument("--write-docs", action="store_true",
                   help="write the figures into docs/performance.md")
    args = p.parse_args()
    workdir = ROOT / "data" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    planned = prepare(args.accounts, workdir)
    results = []
    for channel in args.channels:
        for mode in args.modes:
            rate = args.rate if mode == "limited" else None
            runs = [run_once(planned, channel, rate=rate, workers=args.workers,
                             concurrency=args.concurrency, seconds=args.seconds)
                    for _ in range(args.repeat)]
            for r in runs:
                print(json.dumps(r), flush=True)
            results.append(summarize(runs))
    if args.write_docs:
        write_docs(results, args)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of the docs table from the runs of a channel and mode."""
    return {**runs[0], "median": statistics.median(r["median_second"] for r in runs),
            "runs": [r["median_second"] for r in runs],
            "units": statistics.median(r["median_units_second"] for r in runs),
            "wall": statistics.median(r["per_second"] for r in runs),
            "rate_limited_429": sum(r["rate_limited_429"] for r in runs),
            "held_seconds": min(r["held_seconds"] for r in runs),
            "min_second": min(r["min_second"] for r in runs)}


def write_docs(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    table = [
             f"Measured {dt.date.today()} on {platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, SQLite, {args.accounts:,} accounts, "
             f"{args.workers} dispatch processes x {args.concurrency} sender threads, median of "
             f"{args.repeat} runs (`python bench/dispatch.py --write-docs`).", "",
             "| channel | mode | sent per run | median msg/s (whole seconds) | runs | "
             "median segments or emails/s | slowest second | whole seconds | "
             "msg/s over the wall time | 429s (all runs) | requests per run |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        mode = f"limited to {r['rate']:g}/s" if r["rate"] else "unlimited"
        table.append(f"| {r['channel']} | {mode} | {r['sent']:,} | {r['median']:,} | "
                     f"{', '.join(f'{x:,}' for x in r['runs'])} | {r['units']:,} | "
                     f"{r['min_second']:,} | "
                     f"{r['held_seconds']} | {r['wall']:,} | {r['rate_limited_429']} | "
                     f"{r['requests']:,} |")
    write_block("dispatch-bench", table, "Dispatch")


if __name__ == "__main__":
    main()
