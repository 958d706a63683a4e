"""``outreach letters``, ``agencies`` and ``calls``: print batches and returned mail, agency
placements, recalls and returns, the agent call queue's upkeep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from outreach.entry.cli_common import date_arg, engine, print_counts, unreadable, unreadable_file
from outreach.kernel.clock import utcnow


def cmd_letters_close(args: argparse.Namespace) -> int:
    from outreach.services.letters import close_print_batch

    return print_counts(close_print_batch(engine(), args.as_of, args.drop))


def cmd_letters_returned(args: argparse.Namespace) -> int:
    from outreach.services.letters import import_returned_mail

    try:
        counts = import_returned_mail(engine(), Path(args.file), utcnow())
    except unreadable_file() as exc:
        return unreadable("letters returned", args.file, exc)
    print_counts(counts)
    return 1 if counts["rejected"] and not args.allow_rejects else 0


def cmd_agencies_check(args: argparse.Namespace) -> int:
    from outreach.services.agency import agency_config_path, check_agency_config_text

    path = Path(args.file) if args.file else agency_config_path()
    config, errors = check_agency_config_text(path.read_text(encoding="utf-8"))
    for error in errors:
        print(f"{path}: {error}", file=sys.stderr)
    if config is None or errors:
        print(f"{path}: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{path}: OK, {len(config.agencies)} agencies, {len(config.law_firms)} law firms")
    return 0


def cmd_agencies_returns(args: argparse.Namespace) -> int:
    from outreach.services.agency import import_agency_returns

    try:
        counts = import_agency_returns(engine(), args.agency, args.file, utcnow())
    except unreadable_file() as exc:
        return unreadable("agencies returns", args.file, exc)
    print_counts(counts)
    return 1 if counts["rejected"] and not args.allow_rejects else 0


def cmd_agencies_recall(args: argparse.Namespace) -> int:
    from outreach.services.agency import recall_placements

    return print_counts(recall_placements(engine(), args.as_of))


def cmd_agencies_files(args: argparse.Namespace) -> int:
    from outreach.services.agency import write_placement_files

    return print_counts(write_placement_files(engine(), args.as_of))


def cmd_calls_refresh(args: argparse.Namespace) -> int:
    from outreach.services.calls import refresh_call_queue

    return print_counts(refresh_call_queue(engine(), args.as_of, utcnow()))


# --- the commands' arguments ---------------------------------------------------------------


def add_letters(sub: Any) -> None:
    lt = sub.add_parser("letters", help="print batches and returned mail")
    ltsub = lt.add_subparsers(dest="letters_command", required=True)
    ltc = ltsub.add_parser("close", help="write the day's print manifest for the mail house")
    ltc.add_argument("--as-of", type=date_arg, required=True)
    ltc.add_argument("--drop", help="the drop location URL (default: channels.yaml letter.drop)")
    ltc.set_defaults(func=cmd_letters_close)
    ltr = ltsub.add_parser("returned", help="import the mail house's returned-mail CSV")
    ltr.add_argument("file")
    ltr.add_argument("--allow-rejects", action="store_true")
    ltr.set_defaults(func=cmd_letters_returned)


def add_agencies(sub: Any) -> None:
    ag = sub.add_parser("agencies", help="agency placements, recalls, returns")
    agsub = ag.add_subparsers(dest="agencies_command", required=True)
    agc = agsub.add_parser("check", help="validate config/agencies.yaml; exit 1 on errors")
    agc.add_argument("file", nargs="?")
    agc.set_defaults(func=cmd_agencies_check)
    agr = agsub.add_parser("returns", help="import an agency's returns CSV")
    agr.add_argument("agency")
    agr.add_argument("file")
    agr.add_argument("--allow-rejects", action="store_true")
    agr.set_defaults(func=cmd_agencies_returns)
    for name, func, what in (
        ("recall", cmd_agencies_recall, "recall what is due back and write recall files"),
        ("files", cmd_agencies_files, "write the day's placement file per agency"),
    ):
        agx = agsub.add_parser(name, help=what)
        agx.add_argument("--as-of", type=date_arg, required=True)
        agx.set_defaults(func=func)


def add_calls(sub: Any) -> None:
    cl = sub.add_parser("calls", help="the agent call queue")
    clsub = cl.add_subparsers(dest="calls_command", required=True)
    clr = clsub.add_parser("refresh", help="expire, requeue and re-judge queued calls now")
    clr.add_argument("--as-of", type=date_arg, required=True)
    clr.set_defaults(func=cmd_calls_refresh)
