"""``outreach arrangements``: the offers an account may take, accepting one, a second person's
approval, cancelling, stated means, the day's arrangement file (outreach.services.arrangements)."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from outreach.entry.cli_common import date_arg, engine, print_counts

TABLE = ("kind", "term_months", "instalment_amount", "total", "first_due_on", "needs_approval",
         "band", "discount", "affordable")  # fmt: skip


def money_arg(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal amount: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise argparse.ArgumentTypeError(f"not an amount of money: {value!r}")
    return amount


def _print_offers(offers: list[Any], as_json: bool) -> None:
    from outreach.services.arrangements import offer_json

    rows = [offer_json(o) for o in offers]
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        print("no offers")
        return
    cells = [["#", *TABLE]] + [[str(i), *(str(o[c]) for c in TABLE)] for i, o in enumerate(rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    for line in cells:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def cmd_offers(args: argparse.Namespace) -> int:
    from outreach.services.arrangements import offers

    _print_offers(offers(args.account, args.as_of, engine=engine()), args.json)
    return 0


def _choice(args: argparse.Namespace) -> int | dict[str, Any]:
    if args.offer is not None:
        return int(args.offer)
    if args.kind is None or args.term is None:
        raise ValueError("name the offer: --offer N, or --kind and --term (and --band)")
    return {"kind": args.kind, "term_months": args.term, "band": args.band}


def cmd_accept(args: argparse.Namespace) -> int:
    from outreach.services.arrangements import accept

    ref = accept(args.account, _choice(args), args.via, args.actor, args.as_of, engine=engine())
    print(ref)
    return 0


def cmd_offer(args: argparse.Namespace) -> int:
    from outreach.services.arrangements import make_offer

    print(make_offer(args.account, _choice(args), args.via, args.actor, args.as_of,
                     engine=engine()))  # fmt: skip
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from outreach.services.arrangements import approve

    approve(args.ref, args.approver, args.as_of, engine=engine())
    print(f"{args.ref}: approved by {args.approver}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from outreach.services.arrangements import cancel

    cancel(args.ref, args.actor, args.reason, args.as_of, engine=engine())
    print(f"{args.ref}: cancelled")
    return 0


def cmd_means(args: argparse.Namespace) -> int:
    from outreach.services.arrangements import state_means

    offers = state_means(args.account, args.income, args.expenses, args.source, args.actor,
                         args.as_of, engine=engine())  # fmt: skip
    _print_offers(offers, args.json)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from outreach.services.arrangements import write_arrangement_file

    return print_counts(write_arrangement_file(engine(), args.as_of))


def add_arrangements(sub: Any) -> None:
    ar = sub.add_parser("arrangements", help="repayment arrangements: offers, accept, approve")
    arsub = ar.add_subparsers(dest="arrangements_command", required=True)
    o = arsub.add_parser("offers", help="the offers an account may take on a day")
    o.add_argument("account", help="the account reference (account_ref)")
    o.add_argument("--as-of", type=date_arg, required=True)
    o.add_argument("--json", action="store_true", help="one offer a line")
    o.set_defaults(func=cmd_offers)
    for name, func, what, vias in (
        ("accept", cmd_accept, "accept one of the day's offers",
         ("agent", "console", "self_service")),
        ("offer", cmd_offer, "record that an offer was made",
         ("letter", "sms", "email", "agent", "console", "self_service")),
    ):  # fmt: skip
        a = arsub.add_parser(name, help=what)
        a.add_argument("account")
        a.add_argument("--offer", type=int, help="its number in `arrangements offers`")
        a.add_argument("--kind", choices=("instalment", "settlement"))
        a.add_argument("--term", type=int, help="months")
        a.add_argument("--band")
        a.add_argument("--via", choices=vias, default="agent")
        a.add_argument("--actor", required=True, help="who records it")
        a.add_argument("--as-of", type=date_arg, required=True)
        a.set_defaults(func=func)
    ap = arsub.add_parser("approve", help="a second person approves a pending arrangement")
    ap.add_argument("ref")
    ap.add_argument("--approver", required=True)
    ap.add_argument("--as-of", type=date_arg, required=True)
    ap.set_defaults(func=cmd_approve)
    c = arsub.add_parser("cancel", help="cancel an arrangement")
    c.add_argument("ref")
    c.add_argument("--actor", required=True)
    c.add_argument("--reason", required=True, help="a code or short text (no personal data)")
    c.add_argument("--as-of", type=date_arg, required=True)
    c.set_defaults(func=cmd_cancel)
    m = arsub.add_parser("means", help="record stated monthly income and expenses")
    m.add_argument("account")
    m.add_argument("--income", type=money_arg, required=True)
    m.add_argument("--expenses", type=money_arg, required=True)
    m.add_argument("--source", default="agent", choices=("agent", "console", "self_service"))
    m.add_argument("--actor", required=True)
    m.add_argument("--as-of", type=date_arg, required=True)
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_means)
    e = arsub.add_parser("export", help="write the day's arrangement file")
    e.add_argument("--as-of", type=date_arg, required=True)
    e.set_defaults(func=cmd_export)
