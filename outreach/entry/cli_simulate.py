"""``outreach simulate``: run the real daily pipeline day after day on a simulated portfolio, in
a database of its own (docs/simulation.md), and print what it did: counts and amounts per
currency, never personal data."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from outreach import settings
from outreach.entry.cli_common import date_arg


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value!r}")
    return number


def _workdir(args: argparse.Namespace) -> Path:
    """``--workdir``, or ``simulations/<accounts>x<days>-seed<seed>`` under the data dir: a
    database of its own, never the application's."""
    if args.workdir is not None:
        return Path(args.workdir)
    name = f"{args.accounts}x{args.days}-seed{args.seed}"
    return settings.data_dir() / "simulations" / name


def _quiet() -> None:
    """The pipeline logs each message it sends; a simulation sends thousands a day. Its own
    summary says what happened; warnings and errors still show."""
    for name in ("outreach", "contact_channels", "policies"):
        logging.getLogger(name).setLevel(logging.WARNING)


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as text: counts and amounts per currency (no personal data)."""
    lines = [
        f"Simulated {summary['accounts']:,} accounts over {summary['days']} days from "
        f"{summary['start']} (seed {summary['seed']}) in {summary['seconds']:.0f} s",
        "  sent:      " + (", ".join(f"{c} {n:,}" for c, n in summary["sent"].items()) or "none"),
        "  calls:     " + (", ".join(f"{d} {n:,}" for d, n in summary["calls"].items()) or "none"),
        "  responses: "
        + (", ".join(f"{k} {n:,}" for k, n in summary["responses"].items()) or "none"),
        f"  payments:  {summary['payments']:,}; collected "
        + (", ".join(f"{c} {a}" for c, a in summary["collected"].items()) or "nothing"),
        "  promises:  "
        + ", ".join(
            f"{k.replace('_', ' ')} {n:,}" for k, n in summary["promises"].items()
        ),  # fmt: skip
        f"  accounts paying within the model's horizon: {summary['paid_within_horizon']:,}",
        f"  database:  {summary['database_url']}",
    ]
    return "\n".join(lines)


def cmd_simulate(args: argparse.Namespace) -> int:
    from outreach.simulation.engine import SimulationError, simulate

    _quiet()
    bar: AbstractContextManager[Any] = nullcontext()
    advance = None
    if not args.json and sys.stderr.isatty():
        from rich.progress import Progress

        progress = Progress(transient=True)
        task = progress.add_task("simulating", total=args.days)
        bar = progress

        def advance(index: int, counts: dict[str, Any]) -> None:
            progress.update(task, advance=1, description=f"day {counts['day']}")

    elif not args.json:

        def advance(index: int, counts: dict[str, Any]) -> None:
            sent = sum(counts["sent"].values())
            print(f"day {counts['day']}: sent {sent:,}, payments {counts['payments']:,}",
                  file=sys.stderr, flush=True)  # fmt: skip

    try:
        with bar:
            result = simulate(
                args.accounts, args.days, args.seed, args.start, workdir=_workdir(args),
                ladder=args.ladder, experiments=args.experiments,
                through_airflow=args.through_airflow, progress=advance,
            )  # fmt: skip
    except SimulationError as exc:
        print(f"outreach simulate: {exc}", file=sys.stderr)
        return 1
    summary = result.summary()
    print(json.dumps(summary, indent=2, sort_keys=True) if args.json else format_summary(summary))
    return 0


def add_simulate(sub: Any) -> None:
    today = dt.datetime.now(dt.UTC).date()
    sim = sub.add_parser(
        "simulate",
        help="run the daily pipeline day after day on a simulated portfolio (its own database)",
    )
    sim.add_argument("--accounts", type=_positive, default=1000, help="accounts (default 1000)")
    sim.add_argument("--days", type=_positive, default=30, help="days to run (default 30)")
    sim.add_argument("--seed", type=int, default=1, help="the seed (same seed, same result)")
    sim.add_argument("--start", type=date_arg, default=today, help="the first day (YYYY-MM-DD)")
    sim.add_argument("--workdir", type=Path,
                     help="where its database, outbox and drops go (default: "
                          "<data dir>/simulations/<accounts>x<days>-seed<seed>; wiped first)")  # fmt: skip
    sim.add_argument("--ladder", type=Path, help="a ladder file to run with instead")
    sim.add_argument("--experiments", type=Path, help="an experiments file to run with")
    sim.add_argument("--through-airflow", action="store_true",
                     help="run each day as a real DAG run of outreach_daily (slow; small sizes)")  # fmt: skip
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim.set_defaults(func=cmd_simulate)
