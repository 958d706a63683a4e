"""``outreach payments post`` and ``reverse``: what ops do by hand when a payment arrived
outside the processor's webhook and the day's import, or was returned (docs/resolution.md)."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from outreach.entry.cli_common import date_arg, engine


def money_arg(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {value!r}") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise argparse.ArgumentTypeError(f"not an amount above 0 in cents: {value!r}")
    return amount


def cmd_payments_post(args: argparse.Namespace) -> int:
    from outreach.services import payments

    try:
        posted = payments.post(
            engine(), account_ref=args.account, payment_ref=args.payment_ref,
            amount=args.amount, paid_on=args.paid_on, source="ops", actor=args.by,
            as_of=args.as_of,
        )  # fmt: skip
    except payments.UnknownAccount:
        print(f"no account {args.account!r}", file=sys.stderr)
        return 2
    except payments.PaymentError as exc:  # conflict or a bad value: says which
        print(f"outreach payments post: {exc}", file=sys.stderr)
        return 1
    result = {"payment_ref": posted.payment_ref, "status": "posted" if posted.new else
              "duplicate", "allocations": posted.allocations}  # fmt: skip
    print(json.dumps(result))
    return 0


def cmd_payments_reverse(args: argparse.Namespace) -> int:
    from outreach.services import payments

    try:
        new = payments.reverse(engine(), payment_ref=args.payment_ref, reversed_on=args.on,
                               reason=args.reason, actor=args.by)  # fmt: skip
    except payments.PaymentNotFound:
        print(f"no payment {args.payment_ref!r}", file=sys.stderr)
        return 2
    except payments.PaymentError as exc:
        print(f"outreach payments reverse: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"payment_ref": args.payment_ref,
                      "status": "reversed" if new else "duplicate"}))  # fmt: skip
    return 0


def add_payments(sub: Any) -> None:
    p = sub.add_parser("payments", help="post or reverse a payment by hand (ops)")
    psub = p.add_subparsers(dest="payments_command", required=True)
    post = psub.add_parser("post", help="post a payment to an account, allocate it, settle")
    post.add_argument("account", help="the account reference (account_ref)")
    post.add_argument("--payment-ref", required=True, help="the payment's unique id")
    post.add_argument("--amount", type=money_arg, required=True)
    post.add_argument("--paid-on", type=date_arg, required=True)
    post.add_argument("--as-of", type=date_arg, help="the day settled (default: today, UTC)")
    post.add_argument("--by", required=True, help="who posts it")
    post.set_defaults(func=cmd_payments_post)
    rev = psub.add_parser("reverse", help="reverse a payment (returned, charged back)")
    rev.add_argument("payment_ref")
    rev.add_argument("--on", type=date_arg, required=True, help="the day it was reversed")
    rev.add_argument("--reason", required=True, help="a code: R01, chargeback, nsf, ...")
    rev.add_argument("--by", required=True, help="who reverses it")
    rev.set_defaults(func=cmd_payments_reverse)
