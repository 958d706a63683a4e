"""``outreach promises add`` and ``outreach promises list``: record a promise to pay for an
account, list an account's promises (docs/resolution.md, "Promises to pay")."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from outreach.entry.cli_common import date_arg, engine


def _amount(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {value!r}") from None


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def cmd_promise_add(args: argparse.Namespace) -> int:
    from outreach.services.promises import PromiseRefused, make_promise

    try:
        made = make_promise(args.account, args.amount, args.due_on, args.source,
                            args.actor or _who(), as_of=args.as_of, engine=engine())  # fmt: skip
    except PromiseRefused as exc:
        print(f"outreach promises add: refused ({exc.code}): {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps({"promise_ref": made.ref, "status": made.status, "pauses": made.pauses,
                      "reason": made.reason, "pause_until": str(made.pause_until),
                      "created": made.created}))  # fmt: skip
    return 0


def _shown(value: Any) -> Any:
    return value if isinstance(value, bool | int | None) else str(value)


def cmd_promise_list(args: argparse.Namespace) -> int:
    from outreach.services.promises import UnknownAccount, list_promises

    try:
        rows = list_promises(args.account, engine=engine())
    except UnknownAccount:
        print(f"no account {args.account!r}", file=sys.stderr)
        return 2
    for row in rows:
        shown = {k: _shown(v) for k, v in row.items()}
        if args.json:
            print(json.dumps(shown))
        else:
            print(f"{shown['promise_ref']}: {shown['amount']} due {shown['due_on']}, "
                  f"{shown['status']} (paid {shown['paid_amount']}, "
                  f"{'pauses until ' + shown['pause_until'] if row['pauses'] else 'no pause'})")
    return 0


def add_promises(sub: Any) -> None:
    pr = sub.add_parser("promises", help="promises to pay: record, list")
    prsub = pr.add_subparsers(dest="promises_command", required=True)
    add = prsub.add_parser("add", help="record a promise to pay for an account")
    add.add_argument("account", help="the account reference (account_ref)")
    add.add_argument("--amount", type=_amount, required=True)
    add.add_argument("--due-on", type=date_arg, required=True)
    add.add_argument("--as-of", type=date_arg, help="the day it is made (default today)")
    add.add_argument("--source", choices=("console", "agent", "agency"), default="console")
    add.add_argument("--actor", help="who recorded it (default: the user running the command)")
    add.set_defaults(func=cmd_promise_add)
    ls = prsub.add_parser("list", help="an account's promises, newest due first")
    ls.add_argument("account", help="the account reference (account_ref)")
    ls.add_argument("--json", action="store_true", help="one promise a line")
    ls.set_defaults(func=cmd_promise_list)
