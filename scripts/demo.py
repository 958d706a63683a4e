"""``make demo``: outreach for a generated 10,000-account portfolio, end to end, and the
resolution loop over two days.

Sets up a local Airflow (SQLite, LocalExecutor) under ``data/airflow`` and the application's
SQLite databases under ``data/``, wipes the previous demo's application data, generates a
portfolio into the inbox (with promises to pay, arrangements, stated means, causes, partial and
returned payments), runs ``outreach_daily`` for today with ``clock=logical`` (the outbox walks
the day's send windows) and prints the day's summary. Then, as a payment processor would, it
posts payments for some of the promises and instalments falling due over the next days (and
returns one), runs ``outreach_daily`` for the later day and prints its summary and what the loop
did in between: promises kept, partly kept and broken, instalments paid and missed, plans broken
and settlements completed. Airflow's own output goes to ``data/demo.log``. Exits non-zero if a
DAG run does not succeed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import airflow_local  # noqa: E402  (sibling script)
from sqlalchemy import text  # noqa: E402

REPO = airflow_local.REPO
DATA = REPO / "data"
AIRFLOW_HOME = DATA / "airflow"
LOG = DATA / "demo.log"
ACCOUNTS = 10_000
SEED = 7
# The simulation after the daily runs (docs/simulation.md): the demo's generator and seed, two
# ladder arms (config/experiments-demo.yaml), SIM_DAYS days. A simulated day of the real pipeline
# costs about a second per hundred accounts on this kind of machine (agents' calls one at a
# time, letters rendered one by one), so the demo simulates SIM_ACCOUNTS of them, not 10,000.
SIM_ACCOUNTS = 500
SIM_DAYS = 60
SIM_DIR = DATA / "simulation"
EXPERIMENTS_DEMO = REPO / "config" / "experiments-demo.yaml"
# The later day: a week on, past the grace days of the promises falling due in the first days.
DAYS_BETWEEN = 7
CENT = Decimal("0.01")


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _app_env() -> dict[str, str]:
    """The application's settings for the demo: SQLite under data/, default ladder and config."""
    from outreach.kernel.identity import demo_identity

    return {
        "OUTREACH_DATA_DIR": str(DATA),
        "OUTREACH_DATABASE_URL": f"sqlite:///{DATA / 'outreach.db'}",
        "OUTREACH_OUTBOX_URL": f"sqlite:///{DATA / 'outbox.db'}",
        # Who is writing: the demo's own identity, marked as such (a real deployment must set
        # its own; without one, dispatch refuses to start). Reserved names: never a real firm.
        **demo_identity(),
    }


def _wipe_app_data() -> None:
    """Start each demo clean: app DB, outbox, inbox, rejects and drop files (Airflow's run
    history stays)."""
    for name in ("outreach.db", "outbox.db"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (DATA / f"{name}{suffix}").unlink(missing_ok=True)
    for directory in ("inbox", "rejects", "drop"):
        shutil.rmtree(DATA / directory, ignore_errors=True)


def _print_summary(as_of: dt.date) -> None:
    cli = Path(sys.executable).parent / "outreach"
    if cli.exists():
        result = subprocess.run(
            [str(cli), "summary", "--as-of", as_of.isoformat()],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            print(result.stdout.rstrip())
            return
        with LOG.open("a") as log:
            log.write(f"\n`outreach summary` failed ({result.returncode}):\n{result.stderr}\n")
    from outreach.services import daily as service

    summary = service.summary(as_of)
    try:
        from outreach.operations.reporting import format_summary

        print(format_summary(summary))
    except (ImportError, KeyError):
        print(json.dumps(summary, indent=2, sort_keys=True, default=str))


def _example_accounts(as_of: dt.date) -> dict[str, str]:
    """One account that was contacted and one a gate blocked, to try ``outreach explain`` on."""
    from sqlalchemy import text

    from outreach.storage.db import get_engine

    # The blocked example had nothing sent that day, so explain shows only what stopped it.
    query = text(
        "SELECT a.account_ref FROM contact c JOIN account a ON a.id = c.account_id "
        "WHERE c.plan_date = :day AND c.state = :state AND c.reasons LIKE :reason "
        "AND (:state = 'sent' OR NOT EXISTS (SELECT 1 FROM contact s WHERE "
        "s.account_id = c.account_id AND s.plan_date = :day AND s.state = 'sent')) "
        "ORDER BY a.id LIMIT 1"
    )
    examples: dict[str, str] = {}
    with get_engine().connect() as conn:
        for label, state, reason in (
            ("contacted", "sent", "%"),
            ("blocked", "suppressed", "core.%"),
        ):
            ref = conn.execute(query, {"day": as_of, "state": state, "reason": reason}).scalar()
            if ref:
                examples[label] = str(ref)
    return examples


def _run_day(env: dict[str, str], day: dt.date, log: Any) -> bool:
    """One run of outreach_daily for ``day`` on the logical clock; False (and why) if it fails."""
    _step(f"Running outreach_daily for {day} (clock=logical) ...")
    logical_date = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)
    run_started = time.monotonic()
    result: dict[str, Any] = airflow_local.run_dag(
        env, "outreach_daily", logical_date, {"clock": "logical"}, log=log
    )
    run_seconds = time.monotonic() - run_started
    if result.get("state") != "success":
        print(f"\nDAG run did not succeed: {result.get('state')} {result.get('error', '')}")
        for task_id, states in sorted(result.get("tasks", {}).items()):
            if set(states) - {"success", "skipped"}:
                print(f"  {task_id}: {states}")
        print(f"The task logs and tracebacks are in {LOG}")
        return False
    print(
        f"    run {result['run_id']}: success, {result['task_instances']} task instances "
        f"in {run_seconds:.0f} s\n"
    )
    return True


# What falls due between the days and is unpaid, oldest first: open promises (their date
# before the later day) and the unpaid instalments of active plans and settlements.
_PROMISES_DUE = text(
    "SELECT p.promise_ref, a.account_ref, a.currency, p.amount, p.paid_amount, p.due_on "
    "FROM promise p JOIN account a ON a.id = p.account_id WHERE p.status = 'open' "
    "AND p.due_on < :later ORDER BY p.due_on, p.promise_ref"
)
_INSTALMENTS_DUE = text(
    "SELECT r.arrangement_ref, i.seq, a.account_ref, a.currency, i.amount, i.paid_amount, "
    "i.due_on, r.kind FROM arrangement_instalment i JOIN arrangement r ON r.id = i.arrangement_id "
    "JOIN account a ON a.id = r.account_id WHERE r.state = 'active' "
    "AND i.state IN ('due', 'partly_paid') AND i.due_on > :day AND i.due_on < :later "
    "ORDER BY i.due_on, r.arrangement_ref, i.seq"
)


def _pay_between_days(day: dt.date, later: dt.date) -> dict[str, int]:
    """Post what a payment processor would between the days, each on its day, through the
    webhook's use case (``outreach.services.payments.apply_processor_event``: posted, allocated
    oldest due first, the account settled at once). Of the promises falling due, six in ten are
    paid in full on their date, two in part, two not at all; three instalments in four are paid
    on their date; the first promise paid in full comes back two days later (insufficient
    funds). Deterministic: the same portfolio, the same payments."""
    from outreach.kernel.clock import on_day, utcnow
    from outreach.services.payments import apply_processor_event
    from outreach.storage.db import get_engine

    engine = get_engine()
    with engine.connect() as conn:
        promises = conn.execute(_PROMISES_DUE, {"later": later}).all()
        instalments = conn.execute(_INSTALMENTS_DUE, {"day": day, "later": later}).all()
    counts = dict.fromkeys(("promise_full", "promise_part", "promise_unpaid", "instalment_paid",
                            "instalment_unpaid", "settlement_paid", "returned"), 0)  # fmt: skip
    payments: list[tuple[dt.date, dict[str, str]]] = []
    paid_in_full: list[dict[str, str]] = []
    for i, (ref, account_ref, currency, amount, paid, due_on) in enumerate(promises):
        owed = _money(amount) - _money(paid)
        share = (Decimal(1), Decimal(1), Decimal(1), Decimal(1), Decimal(1), Decimal(1),
                 Decimal("0.5"), Decimal("0.5"), Decimal(0), Decimal(0))[i % 10]  # fmt: skip
        kind = "promise_full" if share == 1 else "promise_part" if share else "promise_unpaid"
        counts[kind] += 1
        if share:
            paid_on = max(_as_date(due_on), day + dt.timedelta(days=1))
            payments.append((paid_on, _event(f"DEMO-{ref}", account_ref, currency,
                                             (owed * share).quantize(CENT), paid_on)))
            if share == 1:
                paid_in_full.append(payments[-1][1])
    for i, (ref, seq, account_ref, currency, amount, paid, due_on, kind) in enumerate(
        instalments
    ):
        settlement = kind == "settlement"
        if i % 4 == 3:
            counts["instalment_unpaid"] += 1
            continue
        counts["settlement_paid" if settlement else "instalment_paid"] += 1
        owed = _money(amount) - _money(paid)
        payments.append((_as_date(due_on), _event(f"DEMO-{ref}-{seq}", account_ref, currency,
                                                  owed, _as_date(due_on))))  # fmt: skip
    if paid_in_full:
        returned = paid_in_full[0]
        back_on = dt.date.fromisoformat(returned["paid_on"]) + dt.timedelta(days=2)
        if back_on < later:
            payments.append((back_on, {"event": "payment.reversed",
                                       "payment_id": returned["payment_id"],
                                       "reversed_on": back_on.isoformat(),
                                       "reason": "insufficient_funds"}))  # fmt: skip
            counts["returned"] = 1
    for paid_on, event in sorted(payments, key=lambda p: p[0]):
        with on_day(paid_on):
            apply_processor_event(engine, event, utcnow())
    return counts



def _event(payment_id: str, account_ref: str, currency: str, amount: Decimal,
           paid_on: dt.date) -> dict[str, str]:  # fmt: skip
    return {"event": "payment.posted", "payment_id": payment_id, "account_ref": account_ref,
            "currency": currency, "amount": f"{amount:.2f}", "paid_on": paid_on.isoformat()}  # fmt: skip


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _print_payments(counts: dict[str, int]) -> None:
    posted = (counts["promise_full"] + counts["promise_part"] + counts["instalment_paid"]
              + counts["settlement_paid"])  # fmt: skip
    print(
        f"    {posted} payments posted (as the processor's webhook would) and "
        f"{counts['returned']} returned:\n"
        f"    promises falling due: {counts['promise_full']} paid in full, "
        f"{counts['promise_part']} in part, {counts['promise_unpaid']} not paid\n"
        f"    instalments falling due: {counts['instalment_paid']} paid, "
        f"{counts['instalment_unpaid']} not paid; settlements paid: {counts['settlement_paid']}\n"
    )


def _print_loop(first: dt.date, last: dt.date) -> None:
    """What the resolution loop did from ``first`` to ``last``: the days' resolution events
    (outreach summary's "Resolution loop"), added up."""
    from outreach.operations.reporting import resolution_counts
    from outreach.storage.db import get_engine

    totals: dict[str, dict[str, int]] = {}
    with get_engine().connect() as conn:
        day = first
        while day <= last:
            for subject, states in resolution_counts(conn, day).items():
                for state, n in states.items():
                    totals.setdefault(subject, {})[state] = totals.get(subject, {}).get(
                        state, 0) + n  # fmt: skip
            day += dt.timedelta(days=1)
    print(f"\nThe resolution loop from {first} to {last} (the days' changes, added up):")
    for subject, states in totals.items():
        print(f"  {subject:<14} " + ", ".join(
            f"{state.replace('_', ' ')} {n:,}" for state, n in sorted(states.items())))  # fmt: skip


def _loop_examples() -> dict[str, str]:
    """Accounts whose promise was kept, broken and reopened, and whose plan missed an
    instalment, to try ``outreach explain`` on."""
    from outreach.storage.db import get_engine

    queries = {
        "promise kept": "SELECT a.account_ref FROM promise p JOIN account a ON a.id = "
        "p.account_id WHERE p.status = 'kept' ORDER BY a.id LIMIT 1",
        "promise broken": "SELECT a.account_ref FROM promise p JOIN account a ON a.id = "
        "p.account_id WHERE p.status = 'broken' ORDER BY a.id LIMIT 1",
        "instalment missed": "SELECT a.account_ref FROM arrangement r JOIN account a ON a.id = "
        "r.account_id WHERE r.missed > 0 ORDER BY a.id LIMIT 1",
    }
    examples: dict[str, str] = {}
    with get_engine().connect() as conn:
        for label, sql in queries.items():
            ref = conn.execute(text(sql)).scalar()
            if ref:
                examples[label] = str(ref)
    return examples


def _outreach(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """An ``outreach`` command in a child process, with ``env`` over this one's."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "outreach"), *args],
        env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip


def _json_of(output: str) -> Any:
    """The JSON document a command printed. Airflow's logging may print a warning line to stdout
    first when its settings are in the environment: the document starts at the first line that
    opens one."""
    lines = output.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(("{", "[")))
    return json.loads("".join(lines[start:]))


def _simulate(start: dt.date, log: Any) -> dict[str, Any] | None:
    """Sixty simulated days with two ladder arms on their own database, then the KPI report of
    the simulation (HTML, and JSON for the headline) and the experiment's results."""
    end = start + dt.timedelta(days=SIM_DAYS - 1)
    _step(
        f"Simulation: {SIM_ACCOUNTS:,} generated accounts (seed {SEED}), {SIM_DAYS} days from "
        f"{start}, two ladder arms ({EXPERIMENTS_DEMO.relative_to(REPO)}), in {SIM_DIR}"
    )
    sim = _outreach(
        ["simulate", "--accounts", str(SIM_ACCOUNTS), "--days", str(SIM_DAYS), "--seed",
         str(SEED), "--start", start.isoformat(), "--workdir", str(SIM_DIR), "--experiments",
         str(EXPERIMENTS_DEMO), "--json"],
        {},
    )  # fmt: skip
    log.write(sim.stderr)
    if sim.returncode != 0:
        print(f"\nThe simulation failed (exit {sim.returncode}); its output is in {LOG}")
        return None
    summary = _json_of(sim.stdout)
    env = {
        "OUTREACH_DATABASE_URL": summary["database_url"],
        "OUTREACH_DATA_DIR": str(SIM_DIR),
        "OUTREACH_EXPERIMENTS": str(EXPERIMENTS_DEMO),
    }
    html = SIM_DIR / "kpi-report.html"
    period = ["--from", start.isoformat(), "--to", end.isoformat()]
    report = _outreach(["report", *period, "--out", str(html)], env)
    numbers = _outreach(["report", *period, "--format", "json"], env)
    results = _outreach(["experiments", "results", "early-offer", *period, "--json"], env)
    for done in (report, numbers, results):
        log.write(done.stderr)
        if done.returncode != 0:
            print(f"\n{' '.join(done.args[1:3])} failed (exit {done.returncode}); see {LOG}")
            return None
    return {"summary": summary, "html": html, "kpis": _json_of(numbers.stdout),
            "results": _json_of(results.stdout)}  # fmt: skip


def _rate(value: Any) -> str:
    return "n/a" if value is None else f"{float(value) * 100:.1f}%"


def _print_simulation(sim: dict[str, Any]) -> None:
    summary, kpis, results = sim["summary"], sim["kpis"], sim["results"]
    collected = ", ".join(f"{c} {v}" for c, v in sorted((kpis.get("collected") or {}).items()))
    print(
        f"\nThe simulation's headline ({kpis['from']} to {kpis['to']}, "
        f"{summary['seconds']:.0f} s):\n"
        f"  collected {collected or 'nothing'}; recovery rate {_rate(kpis.get('recovery_rate'))}\n"
        f"  right-party contact rate {_rate(kpis.get('right_party_contact_rate'))}, "
        f"promise rate {_rate(kpis.get('promise_rate'))}, "
        f"promise-kept rate {_rate(kpis.get('promise_kept_rate'))}, "
        f"cure rate {_rate(kpis.get('cure_rate'))}"
    )
    print("  by arm (95% intervals; the challenger against the champion):")
    for arm in results.get("arms", []):
        print(f"    {_arm_line(arm)}")


def _arm_line(arm: dict[str, Any]) -> str:
    def interval(metric: str) -> str:
        found = arm.get(metric) or {}
        if found.get("value") is None:
            return f"{metric.replace('_', ' ')} n/a"
        return (f"{metric.replace('_', ' ')} {_rate(found['value'])} "
                f"[{_rate(found.get('low'))}, {_rate(found.get('high'))}]")  # fmt: skip

    test = (arm.get("tests") or {}).get("recovery_rate") or {}
    verdict = "" if test.get("p") is None else f"; recovery p = {test['p']:.3f}"
    return (f"{arm['arm']:<10} {arm['currency']} {arm.get('accounts', 0):>4} accounts: "
            + ", ".join(interval(m) for m in ("recovery_rate", "contact_rate",
                                               "promise_kept_rate"))
            + verdict)  # fmt: skip


def main() -> int:
    started = time.monotonic()
    os.environ.update(_app_env())
    env = airflow_local.airflow_env(AIRFLOW_HOME)
    os.environ.update(env)
    DATA.mkdir(parents=True, exist_ok=True)
    today = dt.datetime.now(dt.UTC).date()

    with LOG.open("w") as log:
        _step(f"Airflow: metadata DB, pools, DAGs in {AIRFLOW_HOME} (output in {LOG})")
        airflow_local.bootstrap(env, log)

        _step("Application database: fresh schema in data/outreach.db, empty outbox")
        _wipe_app_data()
        from outreach.portfolio.generator import generate
        from outreach.services import daily as service

        service.setup_database()

        inbox = DATA / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        _step(f"Portfolio: {ACCOUNTS:,} generated accounts (seed {SEED}) into {inbox}")
        generate(ACCOUNTS, seed=SEED, out=inbox / "portfolio.jsonl", as_of=today)

        if not _run_day(env, today, log):
            return 1
        _print_summary(today)

        later = today + dt.timedelta(days=DAYS_BETWEEN)
        _step(f"Between the days: the payment processor's payments up to {later}")
        _print_payments(_pay_between_days(today, later))
        if not _run_day(env, later, log):
            return 1
        _print_summary(later)
        _print_loop(today + dt.timedelta(days=1), later)

        simulation = _simulate(today, log)
        if simulation is None:
            return 1
        _print_simulation(simulation)

    examples = {label: (ref, today) for label, ref in _example_accounts(today).items()}
    examples.update({label: (ref, later) for label, ref in _loop_examples().items()})
    explain = "".join(
        f"\n                              outreach explain {ref} --as-of {day}   ({label})"
        for label, (ref, day) in examples.items()
    )
    print(
        f"""
Where to look next (commands are in {Path(sys.executable).parent}):
  outbox (what was "sent"):   {DATA / "outbox.db"}
  letters and print manifest: {DATA / "drop" / "mailhouse" / today.isoformat()}
  agent call queue:           table call_task in {DATA / "outreach.db"} (docs/call-queue.md)
  why an account was (not) contacted:
                              outreach explain ACCOUNT --as-of {today}{explain}
  the day's counts again:     outreach summary --as-of {today}   (and --as-of {later})
  Airflow set-up, run and task logs (dag.test runs the tasks in this process):
                              {LOG}
  Airflow home (metadata DB): {AIRFLOW_HOME}
  the simulation's KPI report (open it in a browser; offline):
                              {simulation["html"]}
  the simulation's database:  {simulation["summary"]["database_url"]}

Demo finished in {time.monotonic() - started:.0f} s."""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
