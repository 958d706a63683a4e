"""Benchmark: the score's AUC against the best achievable, on a simulated portfolio.

    python bench/score_auc.py [--accounts 10000] [--days 90] [--seed 7] [--start 2026-01-05]
                              [--workdir DIR] [--write-docs]

1. Simulates the portfolio (``outreach.simulation.engine.simulate``): the real daily pipeline,
   with consumers whose hidden true probability of paying within the horizon from the start
   (``p_true``) the simulator keeps.
2. Splits the accounts by the score's hash of the account id: the held-out cohort (the
   ``training.holdout_share`` of config/score.yaml) is never seen in training.
3. Trains the scorecard on the other accounts' history: every ``step`` days from the start to
   the last day whose label the simulation observed (as-of day + horizon within the run).
4. Scores the held-out cohort as of the start day and measures, on the label the simulation
   observed (paid something in the horizon days after the start day), the model's AUC and the
   AUC of ``p_true`` (the best any model could do on that data); prints both, the gap, the
   Brier scores and the model's calibration.

With ``--write-docs`` the figures go into docs/model-card.md between the ``score-auc`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from docs_block import write_block  # noqa: E402  (beside this script)

MODEL_CARD = ROOT / "docs" / "model-card.md"


def measure(accounts: int, days: int, seed: int, start: dt.date, workdir: Path,
            step: int = 7) -> dict[str, Any]:  # fmt: skip
    from outreach.simulation.behaviour import load_params
    from outreach.simulation.engine import simulate

    from outreach.measurement import scorecard
    from outreach.measurement.features import feature_rows, label_rows
    from outreach.measurement.score_config import score_config
    from outreach.measurement.score_training import held_out, train_on, training_set
    from outreach.storage.db import make_engine

    params = load_params()
    horizon = int(params.horizon_days)
    base = score_config()
    cfg = base.model_copy(update={"label": base.label.model_copy(update={"horizon_days": horizon})})
    last = start + dt.timedelta(days=days - 1 - horizon)
    if last < start:
        raise SystemExit(f"--days must exceed the horizon ({horizon} days) to observe a label")

    began = time.monotonic()
    result = simulate(accounts, days, seed, start, workdir=workdir)
    simulated = time.monotonic() - began

    began = time.monotonic()
    engine = make_engine(result.database_url)
    as_of = [start + dt.timedelta(days=k) for k in range(0, (last - start).days + 1, step)]
    with engine.connect() as conn:
        data = training_set(conn, cfg, as_of)
        model, fitted = train_on(cfg, data)
        trained = time.monotonic() - began
        share = cfg.training.holdout_share
        cohort = [r for r in feature_rows(conn, start)
                  if r["snapshot"] and held_out(r["account_id"], share)]  # fmt: skip
        labels = {r["account_id"]: r["label"] for r in label_rows(conn, start, horizon)}
    engine.dispose()
    observed = [labels[r["account_id"]] for r in cohort]
    predicted = scorecard.probabilities(model, cohort)
    truth = [float(result.truth[r["account_id"]].p_true) for r in cohort]
    sim_label = [int(result.truth[r["account_id"]].paid_within_horizon) for r in cohort]
    ours = scorecard.evaluate(predicted, observed)
    best = scorecard.evaluate(truth, observed)
    return {
        "accounts": accounts, "days": days, "seed": seed, "start": start.isoformat(),
        "horizon_days": horizon, "as_of_days": len(data.days),
        "train_rows": len(data.rows), "cohort": len(cohort),
        "cohort_base_rate": ours["base_rate"],
        "auc_model": ours["auc"], "auc_true": best["auc"],
        "gap": round(best["auc"] - ours["auc"], 4),
        "brier_model": ours["brier"], "brier_true": best["brier"],
        "auc_model_sim_label": scorecard.evaluate(predicted, sim_label)["auc"],
        "auc_true_sim_label": scorecard.evaluate(truth, sim_label)["auc"],
        "held_out_rows_all_days_auc": fitted["auc"], "train_auc": fitted["train_auc"],
        "merges": model["merges"], "calibration": ours["calibration"],
        "seconds_simulate": round(simulated, 1), "seconds_train": round(trained, 1),
        "database_url": result.database_url,
    }  # fmt: skip


def docs_lines(m: dict[str, Any]) -> list[str]:
    lines = [
        f"Measured {dt.date.today().isoformat()} on {platform.machine()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}) with "
        f"`python bench/score_auc.py --accounts {m['accounts']} --days {m['days']} "
        f"--seed {m['seed']} --start {m['start']}`:",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| accounts simulated, days | {m['accounts']}, {m['days']} |",
        f"| training rows (accounts not held out x {m['as_of_days']} as-of days) | "
        f"{m['train_rows']} |",
        f"| held-out cohort scored at the start day | {m['cohort']} accounts, "
        f"{m['cohort_base_rate']:.1%} paid within {m['horizon_days']} days |",
        f"| AUC of the model | **{m['auc_model']:.4f}** |",
        f"| AUC of the simulator's true probabilities (the best achievable) | "
        f"**{m['auc_true']:.4f}** |",
        f"| gap (target: at most 0.03) | **{m['gap']:.4f}** |",
        f"| Brier score: model, true probabilities | {m['brier_model']:.4f}, "
        f"{m['brier_true']:.4f} |",
        f"| on the simulator's own label (start day included): model, truth | "
        f"{m['auc_model_sim_label']:.4f}, {m['auc_true_sim_label']:.4f} |",
        f"| bins merged for monotonicity | {m['merges']} |",
        f"| time: simulation, training | {m['seconds_simulate']} s, {m['seconds_train']} s |",
        "",
        "Calibration on the held-out cohort (10 groups of equal size by predicted probability):",
        "",
        "| group | accounts | mean predicted | observed rate |",
        "| --- | --- | --- | --- |",
    ]  # fmt: skip
    lines += [f"| {g['bin']} | {g['count']} | {g['predicted']:.3f} | {g['observed']:.3f} |"
              for g in m["calibration"]]  # fmt: skip
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--accounts", type=int, default=10_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 1, 5))
    p.add_argument("--step", type=int, default=7, help="days between training as-of days")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--write-docs", action="store_true")
    args = p.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="score-auc-"))
    m = measure(args.accounts, args.days, args.seed, args.start, workdir, args.step)
    print(json.dumps(m, indent=2))
    if args.write_docs:
        write_block("score-auc", docs_lines(m), "Measured on a simulated portfolio", MODEL_CARD)
    return 0 if m["gap"] <= 0.03 else 1


if __name__ == "__main__":
    raise SystemExit(main())
