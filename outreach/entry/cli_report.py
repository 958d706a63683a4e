"""``outreach report``: the KPI report over a period as a self-contained HTML page with SVG
charts, or its numbers as JSON or CSV (docs/reports.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from outreach.entry.cli_common import date_arg, engine


def cmd_report(args: argparse.Namespace) -> int:
    from outreach.services.reports import check_period, write_report

    try:
        check_period(args.date_from, args.date_to)
    except ValueError as exc:
        print(f"outreach report: {exc}", file=sys.stderr)
        return 2
    out = None if args.out in (None, "-") else Path(args.out)
    if out is None and args.format == "html":
        print("outreach report: --out FILE.html is needed for the HTML report", file=sys.stderr)
        return 2
    data, summary = write_report(engine(), args.date_from, args.date_to, out,
                                 fmt=args.format, lang=args.lang)  # fmt: skip
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        print(f"report {summary['from']}..{summary['to']} ({args.format}, {summary['groups']} "
              f"groups) written to {out}")  # fmt: skip
    return 0


def add_report(sub: Any) -> None:
    from outreach.services.reports import FORMATS, LANGS

    rp = sub.add_parser("report", help="KPI report over a period: HTML with charts, JSON, CSV")
    rp.add_argument("--from", dest="date_from", type=date_arg, required=True,
                    help="first day of the period (YYYY-MM-DD)")  # fmt: skip
    rp.add_argument("--to", dest="date_to", type=date_arg, required=True,
                    help="last day of the period, included (YYYY-MM-DD)")  # fmt: skip
    rp.add_argument("--out", help="the file to write (json and csv: stdout when omitted or -)")
    rp.add_argument("--format", choices=FORMATS, default="html")
    rp.add_argument("--lang", choices=LANGS, default="en", help="labels in English or Chinese")
    rp.set_defaults(func=cmd_report)
