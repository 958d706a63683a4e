"""The ``outreach`` command: generate, import, check config, plan, dispatch, explain, summarise."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from outreach import settings
from outreach.entry.cli_accounts import (
    add_dispatch,
    add_explain,
    add_generate,
    add_import,
    add_plan,
    add_summary,
)
from outreach.entry.cli_arrangements import add_arrangements
from outreach.entry.cli_common import engine, run
from outreach.entry.cli_config import add_config, add_policy
from outreach.entry.cli_disputes import add_disputes
from outreach.entry.cli_experiments import add_experiments
from outreach.entry.cli_media import add_agencies, add_calls, add_letters
from outreach.entry.cli_payments import add_payments
from outreach.entry.cli_promises import add_promises
from outreach.entry.cli_report import add_report
from outreach.entry.cli_score import add_score
from outreach.entry.cli_simulate import add_simulate
from outreach.kernel.clock import utcnow


def cmd_scenario(args: argparse.Namespace) -> int:
    """Run compliance scenario files end to end (import, plan --json, explain) in a scratch
    directory; print each one's mismatches; exit 1 if any scenario fails."""
    from outreach.entry.scenarios import ScenarioError, run_scenario

    failed = 0
    for name in args.files:
        try:
            result = run_scenario(Path(name))
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        print(f"{'ok  ' if result.ok else 'FAIL'} {name}: {result.name}")
        for mismatch in result.mismatches:
            print(f"     {mismatch}")
        failed += not result.ok
    print(f"{len(args.files) - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    engine()
    print(f"database at head: {settings.database_url().split('@')[-1]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="outreach", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    today = utcnow().date()

    add_generate(sub, today)
    add_import(sub)
    add_config(sub)
    add_policy(sub, today)

    sc = sub.add_parser("scenario", help="run compliance scenario files end to end")
    sc.add_argument("files", nargs="+", help="scenario JSON files (docs/plan-and-explain.md)")
    sc.set_defaults(func=cmd_scenario)

    add_plan(sub)
    add_dispatch(sub)
    add_explain(sub)
    add_summary(sub)
    add_letters(sub)
    add_agencies(sub)
    add_calls(sub)
    add_promises(sub)
    add_disputes(sub)
    add_arrangements(sub)
    add_payments(sub)
    add_experiments(sub)
    add_report(sub)
    add_score(sub)
    add_simulate(sub)

    db = sub.add_parser("db", help="application database")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="create or migrate the schema")
    up.set_defaults(func=cmd_db_upgrade)
    return p


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
