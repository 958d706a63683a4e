"""``outreach score``: train the propensity-to-pay score, list and show its versions, make one
the active model (outreach.services.scores, docs/model-card.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from outreach.entry.cli_common import date_arg, engine


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _calibration(metrics: dict[str, Any]) -> None:
    print("calibration (held-out accounts in 10 groups by predicted probability):")
    print(f"  {'group':>5}  {'count':>7}  {'predicted':>9}  {'observed':>8}")
    for row in metrics.get("calibration") or []:
        print(f"  {row['bin']:>5}  {row['count']:>7}  {row['predicted']:>9.4f}  "
              f"{row['observed']:>8.4f}")  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    from outreach.services.scores import TrainingRefused, train

    try:
        result = train(args.as_of, window_days=args.window_days, by=args.by, engine=engine())
    except TrainingRefused as exc:
        print(f"outreach score train: {exc}")
        return 3
    if args.json:
        _print(result)
        return 0
    m = result["metrics"]
    print(f"score model {result['version']} ({result['label']}), as-of days "
          f"{result['window_from']} .. {result['window_to']}")  # fmt: skip
    print(f"  trained on {m['train_rows']} rows, held out {m['rows']} rows "
          f"({m['positives']} paid, base rate {m['base_rate']})")  # fmt: skip
    print(f"  held-out AUC {m['auc']}  Brier {m['brier']}  (fitted rows' AUC {m['train_auc']})")
    _calibration(m)
    print(f"activate it with: outreach score activate {result['version']} --by NAME")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from outreach.services.scores import list_models

    rows = list_models(engine=engine())
    if args.json:
        _print(rows)
        return 0
    if not rows:
        print("no score models: outreach score train")
        return 0
    for r in rows:
        print(
            f"{r['version']}  {r['state']:<8} {r['label']}  trained {r['trained_at']} by "
            f"{r['trained_by']}  window {r['window_from']}..{r['window_to']}  AUC {r['auc']}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from outreach.services.scores import show

    try:
        model = show(args.version, engine=engine())
    except LookupError as exc:
        print(f"outreach score show: {exc}")
        return 3
    if args.json:
        _print(model)
        return 0
    print(f"score model {model['version']} ({model['state']}, {model['label']}), trained "
          f"{model['trained_at']} by {model['trained_by']}, as-of days {model['window_from']}.."
          f"{model['window_to']}")  # fmt: skip
    print(f"intercept {model['intercept']}")
    for f in model["features"]:
        mono = f" ({f['monotone']})" if f["monotone"] else ""
        print(
            f"{f['name']}{mono}: " + ", ".join(f"{b['bin']}: {b['points']:+.3f}" for b in f["bins"])
        )
    m = model["metrics"]
    print(f"held-out AUC {m.get('auc')}  Brier {m.get('brier')}  rows {m.get('rows')}")
    _calibration(m)
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    from outreach.services.scores import activate

    try:
        result = activate(args.version, by=args.by, engine=engine())
    except LookupError as exc:
        print(f"outreach score activate: {exc}")
        return 3
    print(
        f"score model {result['version']} is active (activated by {result['activated_by']}"
        + (f"; {result['retired']} retired)" if result["retired"] else ")")
    )
    return 0


def add_score(sub: Any) -> None:
    sc = sub.add_parser("score", help="the propensity-to-pay score: train, list, show, activate")
    ssub = sc.add_subparsers(dest="score_command", required=True)
    tr = ssub.add_parser("train", help="train a version on the history up to a day")
    tr.add_argument("--as-of", type=date_arg, default=None, help="training day (default today)")
    tr.add_argument(
        "--window-days",
        type=int,
        default=None,
        help="days of as-of history (default: training.window_days)",
    )
    tr.add_argument("--by", default="system", help="who trains it (recorded)")
    tr.add_argument("--json", action="store_true")
    tr.set_defaults(func=cmd_train)
    ls = ssub.add_parser("list", help="every version, newest first")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    sh = ssub.add_parser("show", help="a version's features, bins, points, metrics, calibration")
    sh.add_argument("version")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_show)
    ac = ssub.add_parser("activate", help="make a version the one active model")
    ac.add_argument("version")
    ac.add_argument("--by", required=True, help="who activates it (recorded)")
    ac.set_defaults(func=cmd_activate)
