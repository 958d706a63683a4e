"""``outreach experiments`` (check, list, results, sample-size, promote): champion-challenger
experiments of config/experiments.yaml (docs/experiments.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from outreach.entry.cli_common import date_arg, engine


def cmd_check(args: argparse.Namespace) -> int:
    from outreach.services.experiments import check

    problems = check(Path(args.file) if args.file else None, engine=engine())
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} error(s)", file=sys.stderr)
        return 1
    print("experiments: OK")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from outreach.services.experiments import overview

    found = overview(engine=engine())
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for exp in found:
        print(f"{exp['id']}: {exp['status']} ({exp['start'] or '-'}..{exp['end'] or '-'}), "
              f"{exp['accounts']} accounts, champion {exp['champion']}")  # fmt: skip
        for arm in exp["arms"]:
            print(f"  {arm['name']}: share {arm['share']:g}, ladder {arm['ladder']}, "
                  f"{arm['accounts']} accounts")  # fmt: skip
    return 0


def _pct(interval: dict[str, Any]) -> str:
    value, low, high = interval["value"], interval["low"], interval["high"]
    if value is None:
        return "-"
    if low is None or high is None:
        return f"{value:.1%}"
    return f"{value:.1%} [{low:.1%}, {high:.1%}]"


def cmd_results(args: argparse.Namespace) -> int:
    from outreach.services.experiments import ExperimentError, results

    try:
        found = results(args.experiment, date_from=args.date_from, date_to=args.date_to,
                        engine=engine())  # fmt: skip
    except ExperimentError as exc:
        print(f"outreach experiments results: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"{found['experiment']} from {found['from']} to {found['to']}: "
          f"{found['accounts']} accounts; champion {found['champion']}")  # fmt: skip
    for arm in found["arms"]:
        print(f"  {arm['arm']} ({arm['currency']}, {arm['accounts']} accounts): "
              f"recovery {_pct(arm['recovery_rate'])}, contact {_pct(arm['contact_rate'])}, "
              f"promise kept {_pct(arm['promise_kept_rate'])}")  # fmt: skip
        for metric, test in arm["tests"].items():
            if test.get("p") is None:
                continue
            verdict = "significant" if test["significant"] else "not significant"
            print(f"    vs {found['champion']}: {metric} p = {test['p']:.4f} ({verdict})")
    return 0


def cmd_sample_size(args: argparse.Namespace) -> int:
    from outreach.services.experiments import ExperimentError, sample_size

    try:
        found = sample_size(args.experiment, uplift=args.uplift, engine=engine())
    except ExperimentError as exc:
        print(f"outreach experiments sample-size: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(found, indent=2))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from outreach.services.experiments import ExperimentError, promote
    from outreach.services.ladders import LadderError

    try:
        found = promote(args.experiment, args.arm, args.by, engine=engine())
    except (ExperimentError, LadderError) as exc:
        print(f"outreach experiments promote: {exc}", file=sys.stderr)
        return 2
    print(f"proposed arm {found['arm']}'s ladder as version {found['version']}; a second person "
          f"approves it with: {found['approve_with']}")  # fmt: skip
    return 0


def add_experiments(sub: Any) -> None:
    ex = sub.add_parser("experiments", help="champion-challenger experiments")
    exsub = ex.add_subparsers(dest="experiments_command", required=True)
    ck = exsub.add_parser("check", help="validate config/experiments.yaml and each arm's ladder")
    ck.add_argument("file", nargs="?", help="an experiments file (default: the configured one)")
    ck.set_defaults(func=cmd_check)
    ls = exsub.add_parser("list", help="experiments, arms, shares and accounts per arm")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    rs = exsub.add_parser("results", help="per-arm results with 95%% intervals and tests")
    rs.add_argument("experiment")
    rs.add_argument("--from", dest="date_from", type=date_arg)
    rs.add_argument("--to", dest="date_to", type=date_arg)
    rs.add_argument("--json", action="store_true")
    rs.set_defaults(func=cmd_results)
    ss = exsub.add_parser("sample-size", help="accounts per arm to detect an uplift")
    ss.add_argument("experiment")
    ss.add_argument("--uplift", type=float, default=0.05)
    ss.set_defaults(func=cmd_sample_size)
    pr = exsub.add_parser("promote", help="propose the winner arm's ladder (two-person approval)")
    pr.add_argument("experiment")
    pr.add_argument("arm")
    pr.add_argument("--by", required=True, help="who proposes it")
    pr.set_defaults(func=cmd_promote)
