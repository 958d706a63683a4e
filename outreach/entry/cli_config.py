"""``outreach config`` (check, diff, propose, approve, versions) and ``outreach policy check``:
the configuration and the escalation ladders checked, compared and approved by two people."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outreach import settings
from outreach.entry.cli_common import date_arg, engine

if TYPE_CHECKING:
    from outreach.services.ladders import Ladder


def cmd_config_check(args: argparse.Namespace) -> int:
    from outreach.services.ladders import check_ladder_text, ladder_version

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
    loop = f", {len(model.resolution_actions)} resolution actions" if model.resolution_actions else ""
    print(f"{path}: OK, version {ladder_version(model)}, {len(model.stages)} stages{loop}")
    return 0


def _config_check_all(ladder_file: Path | None) -> int:
    """Validate every config file and the environment together, as a run does before acting
    (the ladder: FILE, else the configured ladder file); print each problem with its file and
    YAML path."""
    from outreach.services.config import ConfigInvalid, config_files, load_config
    from outreach.services.config import rule_pack_problems as validate_packs

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
        absent = " (absent: defaults)" if not path.is_file() else ""
        print(f"{path}: OK{absent}")
    print("environment: OK")
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    """Validate the rule packs and config/policy.yaml; list the packs in force on the date."""
    from outreach.kernel.policy_settings import PolicySettingsError, policy_settings
    from outreach.services.config import rule_pack_problems as validate_packs
    from outreach.services.config import rule_packs as all_packs

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


def cmd_config_propose(args: argparse.Namespace) -> int:
    from outreach.services.ladders import VersionError, propose

    engine()
    try:
        version = propose(Path(args.file), args.by)
    except VersionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"proposed ladder version {version}; a second person approves it with: "
          f"outreach config approve {version} --by NAME")  # fmt: skip
    return 0


def cmd_config_approve(args: argparse.Namespace) -> int:
    from outreach.services.ladders import VersionError, approve

    engine()
    try:
        record = approve(args.version, args.by)
    except VersionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"ladder version {record.version} is active (proposed by {record.proposed_by}, "
          f"approved by {record.approved_by})")  # fmt: skip
    return 0


def cmd_config_versions(args: argparse.Namespace) -> int:
    from outreach.services.ladders import history, ladder_in_force

    db = engine()
    records = history(engine=db)
    in_force = ladder_in_force(engine=db)
    print(f"in force: {in_force.version} ({in_force.source})")
    for r in records:
        approved = f", approved by {r.approved_by} {r.approved_at:%Y-%m-%d %H:%M}" if r.approved_by else ""
        print(f"  {r.version} {r.state:<8} proposed by {r.proposed_by} "
              f"{r.proposed_at:%Y-%m-%d %H:%M}{approved}")  # fmt: skip
    return 0


def _load_both(paths: tuple[str, str]) -> tuple[Ladder, Ladder] | None:
    """Both ladders, or None after printing every error of each (path: YAML path: message),
    as ``outreach config check`` prints them."""
    from outreach.services.ladders import LadderError, load_ladder

    loaded: list[Ladder] = []
    failed = False
    for name in paths:
        try:
            loaded.append(load_ladder(Path(name)))
        except LadderError as exc:
            failed = True
            for err in exc.errors:
                print(f"{name}: {err}", file=sys.stderr)
            print(f"{name}: {len(exc.errors)} error(s)", file=sys.stderr)
    if failed:
        return None
    return loaded[0], loaded[1]


def cmd_config_diff(args: argparse.Namespace) -> int:
    """Validate both ladders (exit 1 on any error), then print the diff; exit 0."""
    ladders = _load_both((args.old, args.new))
    if ladders is None:
        return 1
    from outreach.services.ladders import diff_files, format_diff

    # engine(): the schema brought to head, as every command does; the ledger is not written.
    out = diff_files(engine(), ladders[0], ladders[1], args.as_of, args.batch_size)
    print(json.dumps(out, indent=2, ensure_ascii=False) if args.json else format_diff(out))
    return 0


def add_diff_parser(csub: Any) -> None:
    """Add ``diff`` to the ``config`` subcommands (``csub``: their argparse subparsers)."""
    p = csub.add_parser(
        "diff", help="what switching from ladder OLD to NEW would change on a day (no writes)"
    )
    p.add_argument("old", help="the ladder in force (YAML file)")
    p.add_argument("new", help="the candidate ladder (YAML file)")
    p.add_argument("--as-of", type=date_arg, required=True, help="the day to plan (YYYY-MM-DD)")
    p.add_argument("--json", action="store_true", help="print the diff as one JSON document")
    p.add_argument("--batch-size", type=int, default=10000, help="accounts per batch")
    p.set_defaults(func=cmd_config_diff)


def add_config(sub: Any) -> None:
    """``outreach config``: check, diff, propose, approve, versions."""
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


def add_policy(sub: Any, today: Any) -> None:
    """``outreach policy check``."""
    pc = sub.add_parser("policy", help="check the rule packs and policy settings")
    pcsub = pc.add_subparsers(dest="policy_command", required=True)
    pcc = pcsub.add_parser("check", help="validate packs and config/policy.yaml; exit 1 on errors")
    pcc.add_argument("--as-of", type=date_arg, default=today)
    pcc.set_defaults(func=cmd_policy_check)
