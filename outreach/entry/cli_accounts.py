"""``outreach generate``, ``import``, ``plan``, ``dispatch``, ``explain`` and ``summary``: the
portfolio in, the day planned and sent, one account explained, the day's figures."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from outreach.entry.cli_common import (
    IMPORT_INTERRUPTED,
    IMPORT_OK,
    IMPORT_REJECTS,
    IMPORT_UNREADABLE,
    date_arg,
    engine,
)


def cmd_generate(args: argparse.Namespace) -> int:
    from outreach.services.accounts import generate

    report = generate(args.accounts, args.seed, Path(args.out), args.as_of)
    print(report)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from outreach.services.accounts import ImportFileError, ImportInterruptedError, import_file

    try:
        report = import_file(
            Path(args.file),
            engine=engine(),
            rejects_path=Path(args.rejects) if args.rejects else None,
        )
    except ImportFileError as exc:  # names the file and the reason; nothing was written
        print(f"outreach import: {exc}", file=sys.stderr)
        return IMPORT_UNREADABLE
    except ImportInterruptedError as exc:  # names the line it stopped after; no row values
        print(f"outreach import: {exc}", file=sys.stderr)
        return IMPORT_INTERRUPTED
    print(report)
    return IMPORT_OK if report.rejected == 0 or args.allow_rejects else IMPORT_REJECTS


def cmd_plan(args: argparse.Namespace) -> int:
    from outreach.services.config import load_config
    from outreach.services.plans import plan_day
    from outreach.services.reports import plan_decisions

    db = engine()
    # The whole configuration, before anything is planned.
    ladder = load_config(
        engine=db, ladder_file=Path(args.ladder) if args.ladder else None
    ).ladder
    total = plan_day(db, ladder, args.as_of, args.batch_size, args.workers)
    if args.json:
        for record in plan_decisions(db, args.as_of):
            print(json.dumps(record, ensure_ascii=False))
    else:
        print(f"planned {args.as_of} with ladder {ladder.version}: {total.as_dict()}")
    return 0


def cmd_dispatch(args: argparse.Namespace) -> int:
    from outreach.services.config import load_config
    from outreach.services.daily import channel_kinds
    from outreach.services.plans import dispatch_channel

    db = engine()
    # The whole configuration, every channel's included, before any channel dispatches.
    load_config(engine=db)
    for channel in args.channel or channel_kinds():
        totals = dispatch_channel(db, args.as_of, channel, args.batch_size, args.clock)
        print(f"{channel}: {totals or 'nothing planned'}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from outreach.services.accounts import explain
    from outreach.services.ladders import command_ladder

    db = engine()
    ladder = command_ladder(Path(args.ladder) if args.ladder else None, engine)
    explanation = explain(db, ladder, args.account, args.as_of)
    if explanation is None:
        print(f"no account {args.account!r}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(explanation, indent=2, ensure_ascii=False))
    else:
        print(format_explanation(explanation))
    return 0


def format_explanation(e: dict[str, Any]) -> str:
    f = e["facts"]
    lines = [
        f"Account {e['account_id']} as of {e['as_of']} (ladder {e['ladder_version']}, "
        f"packs {e['pack_versions']})"
        + (f"; experiment arm {e['experiment_arm']}" if e.get("experiment_arm") else ""),
        f"  jurisdiction {f['country']}/{f['region']}/{f['city'] or '-'}, {f['product']}, "
        f"as {f['role']}; {f['days_past_due']} days past due, past due {f['past_due']}, "
        f"balance {f['balance']}",
        f"  holds: {', '.join(f['holds']) or 'none'}; opt-outs: {', '.join(f['opt_outs']) or 'none'}",
        f"  address zones: {', '.join(f['address_zones']) or 'unknown'}; stated inconvenient: "
        f"{f['inconvenient_times'] or 'none'}",
        f"  contacts in 31 days: {len(f['history_31d'])} "
        f"({', '.join(sorted({h['channel'] for h in f['history_31d']})) or 'none'}); "
        f"last conversation: {f['last_conversation'] or 'none'}",
        f"  initial communication: {f['initial_communication'] or 'none'}; validation notice: "
        f"{f['validation_notice_sent'] or 'not sent'}; time-barred from: "
        f"{f['limitation_date'] or '-'}; SCRA check: {f['scra_checked_on'] or 'none'}",
        f"  stage: {e['stage'] or 'none (' + e.get('why_no_stage', '') + ')'}",
    ]
    lines.extend(format_score(e.get("score")))
    if e.get("catch_up"):
        lines.append(f"  catch-up: {e['catch_up']['why']}")
    for skipped in e.get("actions_not_applicable", ()):
        lines.append(f"  - {skipped['action']} via {skipped['channel']}: not planned, "
                     f"{skipped['why']}")
    for a in e["actions"]:
        c = a["cadence"]
        head = (
            f"  - {a['action']} via {a['channel']}, {a['purpose']} (every {c['every_days']} days, "
            f"{c['times_so_far']}/{c['max_times']} so far)"
        )
        if not a["due"]:
            lines.append(f"{head}: not due, {a['why']}")
            continue
        d = a["decision"]
        when = (
            f" window {d['window_start']} to {d['window_end']}"
            if d["verdict"] == "send"
            else f" until {d['defer_until']}"
            if d["verdict"] == "defer"
            else ""
        )
        lines.append(f"{head}: {d['verdict'].upper()}{when} {' '.join(d['reasons'])}".rstrip())
        for cand in a.get("candidates", [{"contact_point_id": None, **d}]):
            lines.append(f"      contact point {cand['contact_point_id']}: {cand['verdict']}")
            for r in cand["rules"]:
                lines.append(
                    f"        {r['outcome']:<5} {r['rule']} [{r['pack']}] "
                    f"({r['citation']}) {json.dumps(r['facts'], ensure_ascii=False)}"
                )
    lines.extend(format_arrangement(e.get("arrangement")))
    events = e.get("resolution_events") or []
    if events:
        lines.append("  resolution events:")
        for ev in events:
            lines.append(f"    {ev['occurred_at']} {ev['subject']} {ev['subject_ref'] or '-'}: "
                         f"{ev['from_state'] or '-'} -> {ev['to_state']} by {ev['actor']} "
                         f"({ev['reason']})")  # fmt: skip
    loop = e.get("resolution_actions")
    if loop:
        lines.append(f"  loop: promise {loop['promise']}, arrangement {loop['arrangement']}, "
                     f"hardship {'yes' if loop['hardship'] else 'no'}")  # fmt: skip
        for a in loop["actions"]:
            head = f"  - {a['action']} via {a['channel']}, {a['purpose']} ({a['anchor']})"
            if not a["due"]:
                lines.append(f"{head}: not due, {a['why']}")
                continue
            d = a["decision"]
            lines.append(f"{head} for {a['for']}: {d['verdict'].upper()} "
                         f"{' '.join(d['reasons'])}".rstrip())  # fmt: skip
    return "\n".join(lines)


def format_score(score: dict[str, Any] | None) -> list[str]:
    """The score's lines of ``outreach explain``: band, score, model, the top factors."""
    if score is None:
        return ["  score: none (no active score model, or the account is not scored)"]
    lines = [f"  score {score['score']}, band {score['band']} (model {score['model_version']}, "
             f"scored {score['as_of']})"]  # fmt: skip
    for f in score["factors"]:
        lines.append(f"    {float(f['points']):+.3f} {f['label_en'] or f['feature']}"
                     f" = {f['value'] if f['value'] is not None else 'missing'}")  # fmt: skip
    return lines


def format_arrangement(a: dict[str, Any] | None) -> list[str]:
    """The arrangement's lines of ``outreach explain``: terms, state, schedule."""
    if a is None:
        return ["  arrangement: none"]
    lines = [
        f"  arrangement {a['ref']}: {a['kind']} {a['term_months']}m, total {a['total']}, "
        f"{a['state']}{' (kept)' if a['state'] == 'active' and a['kept'] else ''}, missed "
        f"{a['missed']}, kept in a row {a['kept_streak']}"
        + (f", band {a['band']}" if a["band"] else "")
        + (f", ended {a['ended_on']}" if a["ended_on"] else ""),
    ]
    for i in a["schedule"]:
        lines.append(f"    #{i['seq']} due {i['due_on']} amount {i['amount']} paid {i['paid']} "
                     f"{i['state']}")  # fmt: skip
    return lines


def cmd_summary(args: argparse.Namespace) -> int:
    from outreach.services.reports import day_summary, format_summary

    summary = day_summary(engine(), args.as_of)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


# --- the commands' arguments (``outreach.entry.cli.build_parser`` adds them in its order) -------


def add_generate(sub: Any, today: Any) -> None:
    g = sub.add_parser("generate", help="write a synthetic portfolio in the import format")
    g.add_argument("--accounts", type=int, required=True)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--out", required=True)
    g.add_argument("--as-of", type=date_arg, default=today)
    g.set_defaults(func=cmd_generate)


def add_import(sub: Any) -> None:
    i = sub.add_parser(
        "import",
        help="import a CSV or JSONL portfolio file",
        description="Import a portfolio file. Exit codes: 0 imported, every row accepted; "
        "3 imported, some rows rejected (see the rejects file); 4 the file cannot be read "
        "(nothing imported); 5 the import stopped part-way (import the file again to finish); "
        "2 usage error.",
    )
    i.add_argument("file")
    i.add_argument("--rejects", help="where to write rejected rows (default under data/rejects)")
    i.add_argument(
        "--allow-rejects", action="store_true", help="exit 0 (not 3) when some rows were rejected"
    )
    i.set_defaults(func=cmd_import)


def add_plan(sub: Any) -> None:
    pl = sub.add_parser("plan", help="plan the day: stages, due actions, gate verdicts")
    pl.add_argument("--as-of", type=date_arg, required=True)
    pl.add_argument("--json", action="store_true", help="print one decision per line")
    pl.add_argument("--batch-size", type=int, default=10000)
    pl.add_argument("--ladder")
    pl.add_argument("--workers", type=int, default=1, help="planning processes (default 1)")
    pl.set_defaults(func=cmd_plan)


def add_dispatch(sub: Any) -> None:
    d = sub.add_parser("dispatch", help="send what is due (exactly once)")
    d.add_argument("--as-of", type=date_arg, required=True)
    d.add_argument("--channel", action="append", help="repeatable; default every channel")
    d.add_argument("--clock", choices=("wall", "logical"), default="wall")
    d.add_argument("--batch-size", type=int, default=5000)
    d.set_defaults(func=cmd_dispatch)


def add_explain(sub: Any) -> None:
    e = sub.add_parser("explain", help="every gate's verdict for one account and the facts used")
    e.add_argument("account", help="the account reference (account_ref)")
    e.add_argument("--as-of", type=date_arg, required=True)
    e.add_argument("--json", action="store_true")
    e.add_argument("--ladder")
    e.set_defaults(func=cmd_explain)


def add_summary(sub: Any) -> None:
    s = sub.add_parser("summary", help="the day's figures")
    s.add_argument("--as-of", type=date_arg, required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_summary)
