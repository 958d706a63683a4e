"""``outreach disputes``, ``hardship`` and ``causes``: record a dispute (its verification task),
a hardship pause, the cause of delinquency, for one account (docs/resolution.md)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from outreach.entry.cli_common import date_arg, engine, print_counts


def _unknown(exc: LookupError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def cmd_disputes_open(args: argparse.Namespace) -> int:
    from outreach.services import disputes

    try:
        out = disputes.dispute(engine(), args.account, source="cli", actor=args.actor,
                               as_of=args.as_of)  # fmt: skip
    except disputes.UnknownAccount as exc:
        return _unknown(exc)
    return print_counts(out)


def cmd_hardship(args: argparse.Namespace) -> int:
    from outreach.services import disputes

    try:
        out = disputes.hardship(engine(), args.account, source="cli", actor=args.actor,
                                as_of=args.as_of)  # fmt: skip
    except disputes.UnknownAccount as exc:
        return _unknown(exc)
    return print_counts(out)


def cmd_causes(args: argparse.Namespace) -> int:
    from outreach.services import disputes

    try:
        out = disputes.cause(engine(), args.account, args.cause, source="cli", actor=args.actor)
    except disputes.UnknownAccount as exc:
        return _unknown(exc)
    return print_counts(out)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def add_disputes(sub: Any) -> None:
    def common(p: argparse.ArgumentParser, *, day: bool = True) -> None:
        p.add_argument("account", help="the account's ref")
        p.add_argument("--actor", default=_who(), help="who records it (default: your login)")
        if day:
            p.add_argument("--as-of", type=date_arg, help="the day it takes effect (default: "
                           "today, UTC)")  # fmt: skip

    dp = sub.add_parser("disputes", help="disputes and their verification")
    dpsub = dp.add_subparsers(dest="disputes_command", required=True)
    dpo = dpsub.add_parser("open", help="record a dispute: collection stops until the "
                           "verification letter is sent")  # fmt: skip
    common(dpo)
    dpo.set_defaults(func=cmd_disputes_open)
    hs = sub.add_parser("hardship", help="pause automated collection (hardship.pause_days)")
    common(hs)
    hs.set_defaults(func=cmd_hardship)
    cs = sub.add_parser("causes", help="record the cause of delinquency")
    common(cs, day=False)
    cs.add_argument("--cause", required=True, help="job_loss, illness, over_indebtedness, "
                    "forgot, disputes_debt, fraud, unwilling or other")  # fmt: skip
    cs.set_defaults(func=cmd_causes)
