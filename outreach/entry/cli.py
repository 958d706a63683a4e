"""The ``outreach`` command: generate, import, check config, plan, dispatch, explain, summarise."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from outreach import settings
from outreach.kernel.clock import utcnow


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromisoformat(str(value))
    return value.isoformat() + "Z"


def _engine():  # type: ignore[no-untyped-def]
    from outreach.storage.db import get_engine, migrate

    migrate()
    return get_engine()


def _ladder(path: str | None):  # type: ignore[no-untyped-def]
    """The ladder a command was given, else the one in force (the approved version, or the
    configured file before any approval)."""
    from outreach.planning.ladder import load_ladder
    from outreach.planning.ladder_versions import ladder_in_force

    return load_ladder(Path(path)) if path else ladder_in_force(engine=_engine())


def cmd_generate(args: argparse.Namespace) -> int:
    from outreach.portfolio.generator import generate

    report = generate(args.accounts, args.seed, Path(args.out), args.as_of)
    print(report)
    return 0


# Exit codes of ``outreach import`` (README, docs/import-format.md); 2 is argparse's usage error.
IMPORT_OK, IMPORT_REJECTS, IMPORT_UNREADABLE, IMPORT_INTERRUPTED = 0, 3, 4, 5


def cmd_import(args: argparse.Namespace) -> int:
    from outreach.portfolio.importer import ImportFileError, ImportInterruptedError, import_file

    try:
        report = import_file(
            Path(args.file),
            engine=_engine(),
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


def cmd_config_check(args: argparse.Namespace) -> int:
    from outreach.planning.ladder import check_ladder_text, ladder_version

    if args.all:
        return _config_check_all(Path(args.file) if args.file else None)
    if not args.file:
        print("outreach config check: give a ladder FILE, or --all", file=sys.stderr)
        return 2
    path = Path(args.file)
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    model, errors = check_ladder_text(source)
    for err in errors:
        print(f"{path}: {err}", file=sys.stderr)
    if model is None:
        print(f"{path}: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{path}: OK, version {ladder_version(model)}, {len(model.stages)} stages")
    return 0


def _config_check_all(ladder_file: Path | None) -> int:
    """Validate every config file and the environment together, as a run does before acting
    (the ladder: FILE, else the configured ladder file); print each problem with its file and
    YAML path."""
    from outreach.kernel.policy_settings import policy_path
    from outreach.services.config import ConfigInvalid, config_files, load_config
    from policies.packs import validate_packs

    ladder_file = ladder_file or settings.ladder_path()
    problems = [f"rule packs: {problem}" for problem in validate_packs()]
    try:
        load_config(ladder_file=ladder_file)
    except ConfigInvalid as exc:
        problems.extend(exc.errors)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} error(s)", file=sys.stderr)
        return 1
    for path in config_files(ladder_file):
        absent = " (absent: defaults)" if path == policy_path() and not path.is_file() else ""
        print(f"{path}: OK{absent}")
    print("environment: OK")
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    """Validate the rule packs and config/policy.yaml; list the packs in force on the date."""
    from outreach.kernel.policy_settings import PolicySettingsError, policy_settings
    from policies.packs import all_packs, validate_packs

    problems = validate_packs()
    try:
        chosen = policy_settings()
    except PolicySettingsError as exc:
        problems.append(str(exc))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"role: {chosen.role} ({chosen.source})")
    for pack in all_packs():
        state = "in force" if pack.in_force(args.as_of) else "not in force"
        print(f"  {pack.label:<24} {state} on {args.as_of}: {pack.title}")
    return 0


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


PLAN_JSON_QUERY = text(
    "SELECT a.account_ref, c.stage, c.action, c.channel, d.verdict, d.reasons, d.window_start, "
    "d.window_end, d.defer_until, c.key, c.slot, c.contact_point_id, d.config_version, "
    "d.pack_versions, d.evidence FROM policy_decision d JOIN contact c ON c.key = d.contact_key "
    "JOIN account a ON a.id = d.account_id WHERE d.phase = 'plan' AND d.as_of = :day "
    "ORDER BY a.account_ref, c.stage, c.action"
)


def cmd_plan(args: argparse.Namespace) -> int:
    from outreach.planning.planner import PlanCounts, iter_plan, plan_parallel
    from outreach.services.config import load_config

    engine = _engine()
    # The whole configuration, before anything is planned.
    ladder = load_config(
        engine=engine, ladder_file=Path(args.ladder) if args.ladder else None
    ).ladder
    total = PlanCounts()
    batches = (iter_plan(engine, ladder, args.as_of, args.batch_size) if args.workers == 1 else
               plan_parallel(settings.database_url(), ladder, args.as_of, args.batch_size,
                             args.workers))
    for counts in batches:
        total.add(counts)
    if args.json:
        with engine.connect() as conn:
            for r in conn.execute(PLAN_JSON_QUERY, {"day": args.as_of}):
                evidence = r[14] if isinstance(r[14], dict) else json.loads(r[14] or "{}")
                print(
                    json.dumps(
                        {
                            "account_id": r[0],
                            "stage": r[1],
                            "action": r[2],
                            "channel": r[3],
                            "verdict": r[4],
                            "reasons": r[5].split() if r[5] else [],
                            "window_start": _iso(r[6]),
                            "window_end": _iso(r[7]),
                            "defer_until": _iso(r[8]),
                            "key": r[9],
                            "slot": r[10],
                            "contact_point_id": r[11],
                            "ladder_version": r[12],
                            "pack_versions": r[13],
                            "evidence": evidence,
                            # Why a step out of the stage's order: the earlier required step
                            # the account lacked (null for a step of its own stage).
                            "catch_up": (evidence.get("ladder.catch_up") or {}).get("facts"),
                        },
                        ensure_ascii=False,
                    )
                )
    else:
        print(f"planned {args.as_of} with ladder {ladder.version}: {total.as_dict()}")
    return 0


def cmd_dispatch(args: argparse.Namespace) -> int:
    from contact_channels.base import CHANNEL_KINDS
    from outreach.dispatch.dispatcher import dispatch_range, dispatch_ranges
    from outreach.services.config import load_config

    engine = _engine()
    # The whole configuration, every channel's included, before any channel dispatches.
    load_config(engine=engine)
    for channel in args.channel or CHANNEL_KINDS:
        totals: dict[str, int] = {}
        for lo, hi in dispatch_ranges(engine, args.as_of, channel, args.batch_size):
            counts = dispatch_range(engine, args.as_of, channel, lo, hi, clock=args.clock)
            for k, v in counts.as_dict().items():
                totals[k] = totals.get(k, 0) + v
        print(f"{channel}: {totals or 'nothing planned'}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from outreach.kernel.facts import load_accounts
    from outreach.planning.planner import (
        explain_account,
        plan_cutoff,
        plan_step_hook,
        prime_household,
    )

    engine = _engine()
    ladder = _ladder(args.ladder)
    with engine.connect() as conn:
        account_id = conn.execute(
            text("SELECT id FROM account WHERE account_ref = :r"), {"r": args.account}
        ).scalar()
        if account_id is None:
            print(f"no account {args.account!r}", file=sys.stderr)
            return 2
        accounts = load_accounts(
            conn, account_id, account_id, day=args.as_of, cutoff=plan_cutoff(args.as_of)
        )
        from outreach.kernel.policy_settings import policy_settings
        from policies.packs import assert_valid

        assert_valid()
        settings = policy_settings()
        hook = plan_step_hook(engine, args.as_of)
        # What the plan judged for the person's other accounts first (outreach.planning.household).
        prime_household(
            conn, ladder, accounts, account_id, args.as_of, role=settings.role,
            enabled=settings.householding, step_hook=hook,
        )  # fmt: skip
    explanation = explain_account(
        ladder, accounts[account_id], args.as_of, role=settings.role, step_hook=hook
    )
    if args.json:
        print(json.dumps(explanation, indent=2, ensure_ascii=False))
    else:
        print(format_explanation(explanation))
    return 0


def format_explanation(e: dict[str, Any]) -> str:
    f = e["facts"]
    lines = [
        f"Account {e['account_id']} as of {e['as_of']} (ladder {e['ladder_version']}, "
        f"packs {e['pack_versions']})",
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
    return "\n".join(lines)


def cmd_summary(args: argparse.Namespace) -> int:
    from outreach.operations.reporting import day_summary, format_summary

    summary = day_summary(_engine(), args.as_of)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def cmd_config_propose(args: argparse.Namespace) -> int:
    from outreach.planning.ladder_versions import VersionError, propose

    _engine()
    try:
        version = propose(Path(args.file), args.by)
    except VersionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"proposed ladder version {version}; a second person approves it with: "
          f"outreach config approve {version} --by NAME")  # fmt: skip
    return 0


def cmd_config_approve(args: argparse.Namespace) -> int:
    from outreach.planning.ladder_versions import VersionError, approve

    _engine()
    try:
        record = approve(args.version, args.by)
    except VersionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"ladder version {record.version} is active (proposed by {record.proposed_by}, "
          f"approved by {record.approved_by})")  # fmt: skip
    return 0


def cmd_config_versions(args: argparse.Namespace) -> int:
    from outreach.planning.ladder_versions import history, ladder_in_force

    engine = _engine()
    records = history(engine=engine)
    in_force = ladder_in_force(engine=engine)
    print(f"in force: {in_force.version} ({in_force.source})")
    for r in records:
        approved = f", approved by {r.approved_by} {r.approved_at:%Y-%m-%d %H:%M}" if r.approved_by else ""
        print(f"  {r.version} {r.state:<8} proposed by {r.proposed_by} "
              f"{r.proposed_at:%Y-%m-%d %H:%M}{approved}")  # fmt: skip
    return 0


def _print_counts(counts: dict[str, Any]) -> int:
    print(json.dumps(counts, indent=2, sort_keys=True, default=str))
    return 0


def cmd_letters_close(args: argparse.Namespace) -> int:
    from outreach.media.letters.batch import close_print_batch

    return _print_counts(close_print_batch(_engine(), args.as_of, args.drop))


def _unreadable(command: str, path: Path | str, exc: BaseException) -> int:
    """One line naming the file and why it cannot be read (never a row's values), exit 4 as
    ``outreach import`` does."""
    from outreach.portfolio.importer import ImportFileError

    if isinstance(exc, ImportFileError):  # its text names the file already
        problem = str(exc)
    elif isinstance(exc, OSError):
        problem = f"{Path(path).name}: cannot open: {exc.strerror or type(exc).__name__}"
    elif isinstance(exc, UnicodeDecodeError):
        problem = (f"{Path(path).name}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                   f"at offset {exc.start})")  # fmt: skip
    else:
        problem = f"{Path(path).name}: not a readable CSV ({exc})"
    print(f"outreach {command}: {problem}; nothing was imported", file=sys.stderr)
    return IMPORT_UNREADABLE


def _unreadable_file() -> tuple[type[BaseException], ...]:
    """What the returned-mail and agency-returns readers raise for a file they cannot read."""
    from outreach.portfolio.importer import ImportFileError

    return (ImportFileError, OSError, UnicodeDecodeError, csv.Error)


def cmd_letters_returned(args: argparse.Namespace) -> int:
    from outreach.media.letters.returned import import_returned_mail

    try:
        counts = import_returned_mail(_engine(), Path(args.file), utcnow())
    except _unreadable_file() as exc:
        return _unreadable("letters returned", args.file, exc)
    _print_counts(counts)
    return 1 if counts["rejected"] and not args.allow_rejects else 0


def cmd_agencies_check(args: argparse.Namespace) -> int:
    from outreach.media.agency.config import agency_config_path, check_agency_config_text

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
    from outreach.media.agency.returns import import_agency_returns

    try:
        counts = import_agency_returns(_engine(), args.agency, args.file, utcnow())
    except _unreadable_file() as exc:
        return _unreadable("agencies returns", args.file, exc)
    _print_counts(counts)
    return 1 if counts["rejected"] and not args.allow_rejects else 0


def cmd_agencies_recall(args: argparse.Namespace) -> int:
    from outreach.media.agency.files import recall_placements

    return _print_counts(recall_placements(_engine(), args.as_of))


def cmd_agencies_files(args: argparse.Namespace) -> int:
    from outreach.media.agency.files import write_placement_files

    return _print_counts(write_placement_files(_engine(), args.as_of))


def cmd_calls_refresh(args: argparse.Namespace) -> int:
    from outreach.media.calls.queue import refresh_call_queue

    return _print_counts(refresh_call_queue(_engine(), args.as_of, utcnow()))



def cmd_db_upgrade(args: argparse.Namespace) -> int:
    _engine()
    print(f"database at head: {settings.database_url().split('@')[-1]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="outreach", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    today = utcnow().date()

    g = sub.add_parser("generate", help="write a synthetic portfolio in the import format")
    g.add_argument("--accounts", type=int, required=True)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--out", required=True)
    g.add_argument("--as-of", type=_date, default=today)
    g.set_defaults(func=cmd_generate)

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

    c = sub.add_parser("config", help="check the configuration and escalation ladders")
    csub = c.add_subparsers(dest="config_command", required=True)
    cc = csub.add_parser(
        "check", help="validate a ladder file, or (--all) every config file; exit 1 on errors"
    )
    cc.add_argument("file", nargs="?", help="a ladder file")
    cc.add_argument(
        "--all",
        action="store_true",
        help="validate channels.yaml, policy.yaml, agencies.yaml, the ladder (FILE or the "
        "configured one) and the OUTREACH_* environment together, as a run does",
    )
    cc.set_defaults(func=cmd_config_check)
    from outreach.operations.ladder_diff import add_parser as add_diff_parser

    add_diff_parser(csub)
    cp = csub.add_parser("propose", help="store a checked ladder as a version to approve")
    cp.add_argument("file")
    cp.add_argument("--by", required=True, help="who proposes it")
    cp.set_defaults(func=cmd_config_propose)
    ca = csub.add_parser("approve", help="make a proposed version active (a second person)")
    ca.add_argument("version")
    ca.add_argument("--by", required=True, help="who approves it (not its proposer)")
    ca.set_defaults(func=cmd_config_approve)
    cv = csub.add_parser("versions", help="the ladder in force and every version on record")
    cv.set_defaults(func=cmd_config_versions)

    pc = sub.add_parser("policy", help="check the rule packs and policy settings")
    pcsub = pc.add_subparsers(dest="policy_command", required=True)
    pcc = pcsub.add_parser("check", help="validate packs and config/policy.yaml; exit 1 on errors")
    pcc.add_argument("--as-of", type=_date, default=today)
    pcc.set_defaults(func=cmd_policy_check)

    sc = sub.add_parser("scenario", help="run compliance scenario files end to end")
    sc.add_argument("files", nargs="+", help="scenario JSON files (docs/plan-and-explain.md)")
    sc.set_defaults(func=cmd_scenario)

    pl = sub.add_parser("plan", help="plan the day: stages, due actions, gate verdicts")
    pl.add_argument("--as-of", type=_date, required=True)
    pl.add_argument("--json", action="store_true", help="print one decision per line")
    pl.add_argument("--batch-size", type=int, default=10000)
    pl.add_argument("--ladder")
    pl.add_argument("--workers", type=int, default=1, help="planning processes (default 1)")
    pl.set_defaults(func=cmd_plan)

    d = sub.add_parser("dispatch", help="send what is due (exactly once)")
    d.add_argument("--as-of", type=_date, required=True)
    d.add_argument("--channel", action="append", help="repeatable; default every channel")
    d.add_argument("--clock", choices=("wall", "logical"), default="wall")
    d.add_argument("--batch-size", type=int, default=5000)
    d.set_defaults(func=cmd_dispatch)

    e = sub.add_parser("explain", help="every gate's verdict for one account and the facts used")
    e.add_argument("account", help="the account reference (account_ref)")
    e.add_argument("--as-of", type=_date, required=True)
    e.add_argument("--json", action="store_true")
    e.add_argument("--ladder")
    e.set_defaults(func=cmd_explain)

    s = sub.add_parser("summary", help="the day's figures")
    s.add_argument("--as-of", type=_date, required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_summary)

    lt = sub.add_parser("letters", help="print batches and returned mail")
    ltsub = lt.add_subparsers(dest="letters_command", required=True)
    ltc = ltsub.add_parser("close", help="write the day's print manifest for the mail house")
    ltc.add_argument("--as-of", type=_date, required=True)
    ltc.add_argument("--drop", help="the drop location URL (default: channels.yaml letter.drop)")
    ltc.set_defaults(func=cmd_letters_close)
    ltr = ltsub.add_parser("returned", help="import the mail house's returned-mail CSV")
    ltr.add_argument("file")
    ltr.add_argument("--allow-rejects", action="store_true")
    ltr.set_defaults(func=cmd_letters_returned)

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
        agx.add_argument("--as-of", type=_date, required=True)
        agx.set_defaults(func=func)

    cl = sub.add_parser("calls", help="the agent call queue")
    clsub = cl.add_subparsers(dest="calls_command", required=True)
    clr = clsub.add_parser("refresh", help="expire, requeue and re-judge queued calls now")
    clr.add_argument("--as-of", type=_date, required=True)
    clr.set_defaults(func=cmd_calls_refresh)

    db = sub.add_parser("db", help="application database")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="create or migrate the schema")
    up.set_defaults(func=cmd_db_upgrade)
    return p


def main(argv: list[str] | None = None) -> int:
    from outreach.planning.ladder import LadderError
    from outreach.services.config import ConfigInvalid

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigInvalid, LadderError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
