"""The portfolio simulator's engine: the real daily pipeline, day after day, on a database of its
own, with simulated consumers answering what it sends.

A simulation generates a portfolio (``outreach.portfolio.generator``, the run's seed), imports it,
draws a hidden consumer for each account (``outreach.simulation.behaviour``), and then, for each
day with the clock set to that day: settles, scores (when the score step exists), plans and
dispatches every channel as ``outreach_daily`` does on the logical clock (or runs the DAG itself,
``through_airflow``); then the people play: agents work the call queue through the agents' use
cases, consumers answer each contact sent that day, pay what they promised and their instalments
when due, and some pay unprompted. Everything a consumer does goes through the service a real
consumer's action goes through, so the next day's gates see it. docs/simulation.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import DateTime, Engine, bindparam, text

from outreach import settings
from outreach.kernel import clock
from outreach.kernel.identity import demo_identity
from outreach.operations.reporting import resolution_counts
from outreach.portfolio.generator import generate
from outreach.services import calls as call_service
from outreach.services import daily, self_service
from outreach.services import disputes as dispute_service
from outreach.services import payments as payment_service
from outreach.simulation import behaviour, store
from outreach.simulation.store import Truth
from outreach.storage.db import engine_for

__all__ = ["SimResult", "SimulationError", "simulate"]

AGENT = "sim-agent"
CENT = Decimal("0.01")
# The day's instants at which agents take calls: every half hour, so that every call window
# (UTC, per the consumer's zone) is walked whatever the zone.
CALL_ROUNDS = tuple(dt.timedelta(minutes=m) for m in range(0, 24 * 60, 30))
# When the consumers' own actions of a day are stamped: the evening, after the day's sends.
PLAY_AT = dt.time(20, 0)
PLAN_AT = dt.time(6, 0)
# What a call's answer becomes as a disposition, the first kind present winning.
CALL_DISPOSITIONS = (
    ("stop", "cease_request"),
    ("dispute", "dispute"),
    ("hardship", "hardship"),
    ("promise", "promise_to_pay"),
    ("wrong_party", "third_party"),
    ("answer", "right_party_conversation"),
    ("accept_offer", "right_party_conversation"),
    ("pay", "right_party_conversation"),
)
# Who posts a payment a consumer makes after a contact on a channel: the processor's webhook
# (the self-service link, a bank transfer), or the agency collecting for us.
PAYMENT_SOURCE = {"agency": ("agency", "agency")}
DEFAULT_PAYMENT_SOURCE = ("webhook", "processor")


class SimulationError(RuntimeError):
    """A simulation that cannot run (its database is the application's, a DAG run failed)."""


@dataclass(frozen=True)
class SimResult:
    """What a simulation did: where its database is, the days run and their counts (no personal
    data: counts, channel names and amounts per currency), and the truth of each account."""

    database_url: str
    outbox_url: str
    workdir: Path
    start: dt.date
    days: int
    accounts: int
    seed: int
    seconds: float
    per_day: list[dict[str, Any]]
    truth: Mapping[int, Truth]
    timings: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The whole run's counts: sent by channel, calls by disposition, consumer responses by
        kind, payments and the amount collected per currency, promises made, kept and broken."""
        sent: Counter[str] = Counter()
        dispositions: Counter[str] = Counter()
        responses: Counter[str] = Counter()
        promises: Counter[str] = Counter()
        collected: dict[str, Decimal] = {}
        payments = 0
        for day in self.per_day:
            sent.update(day["sent"])
            dispositions.update(day["calls"])
            responses.update(day["responses"])
            promises.update(day["promises"])
            payments += day["payments"]
            for currency, amount in day["collected"].items():
                collected[currency] = collected.get(currency, Decimal(0)) + Decimal(amount)
        paid = sum(1 for t in self.truth.values() if t.paid_within_horizon)
        return {
            "accounts": self.accounts,
            "days": self.days,
            "start": self.start.isoformat(),
            "seed": self.seed,
            "sent": dict(sorted(sent.items())),
            "calls": dict(sorted(dispositions.items())),
            "responses": dict(sorted(responses.items())),
            "payments": payments,
            "collected": {c: f"{a:.2f}" for c, a in sorted(collected.items())},
            "promises": {k: promises.get(k, 0) for k in ("made", "kept", "partly_kept", "broken")},
            "paid_within_horizon": paid,
            "seconds": round(self.seconds, 1),
            "database_url": self.database_url,
            "workdir": str(self.workdir),
        }


@dataclass
class _Run:
    """One simulation's state between days: the consumers, what each still owes as far as the
    simulation has paid, what falls on later days, what was asked once already."""

    engine: Engine
    model: ModuleType
    params: Any
    seed: int
    start: dt.date
    horizon_end: dt.date
    consumers: dict[int, Any]
    refs: dict[int, str]
    currencies: dict[int, str]
    zones: dict[int, ZoneInfo | None]
    owed: dict[int, Decimal]
    first_paid: dict[int, dt.date] = field(default_factory=dict)
    later: dict[dt.date, list[tuple[int, int, Any, str]]] = field(default_factory=dict)
    asked_promises: set[int] = field(default_factory=set)
    asked_instalments: set[int] = field(default_factory=set)
    payment_seq: Counter[tuple[int, dt.date]] = field(default_factory=Counter)
    recent: dict[int, int] = field(default_factory=dict)
    sequence: int = 0

    def schedule(self, account_id: int, response: Any, channel: str, day: dt.date) -> None:
        """Keep a response for its day (never before ``day``), in the order it was given."""
        when = max(response.day, day)
        self.sequence += 1
        self.later.setdefault(when, []).append((account_id, self.sequence, response, channel))


def simulate(
    accounts: int,
    days: int,
    seed: int,
    start: dt.date,
    *,
    workdir: Path,
    ladder: Path | None = None,
    experiments: Path | None = None,
    through_airflow: bool = False,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
    model: ModuleType | None = None,
    params: Any = None,
) -> SimResult:
    """Simulate ``accounts`` generated accounts (seed ``seed``) over ``days`` days from
    ``start``, in ``workdir`` (its database, outbox and drops; wiped first). ``ladder`` and
    ``experiments`` replace the ladder and experiments files; ``through_airflow`` runs each day
    as a real DAG run of ``outreach_daily``. ``progress(day_index, counts)`` is called after
    each day. The same arguments give the same counts and the same amounts collected."""
    if accounts < 1 or days < 1:
        raise ValueError("a simulation needs at least one account and one day")
    began = time.monotonic()
    workdir = Path(workdir).resolve()
    model = model or behaviour
    params = params if params is not None else model.load_params()
    env = _environment(workdir, ladder, experiments)
    if env["OUTREACH_DATABASE_URL"] == settings.database_url():
        raise SimulationError("the simulation's database would be the application's own")
    if workdir in (settings.data_dir().resolve(), settings.PROJECT_ROOT.resolve()):
        # A simulation wipes its workdir's inbox and drops: never the application's.
        raise SimulationError("the simulation's workdir would be the application's data dir")
    _wipe(workdir)
    per_day: list[dict[str, Any]] = []
    timings: list[dict[str, float]] = []
    with _environ(env):
        engine = engine_for(env["OUTREACH_DATABASE_URL"])
        try:
            with clock.use(dt.datetime.combine(start, PLAN_AT)):
                daily.setup_database()
                store.create(engine)
                generate(accounts, seed=seed, out=workdir / "inbox" / "portfolio.jsonl",
                         as_of=start)  # fmt: skip
                if not through_airflow:
                    daily.ingest()
            airflow = _Airflow(workdir, env) if through_airflow else None
            run: _Run | None = None
            for index in range(days):
                day = start + dt.timedelta(days=index)
                timing: dict[str, float] = {}
                marks = time.monotonic()
                planned = airflow.run_day(day) if airflow else _run_day(day)
                timing["pipeline"] = time.monotonic() - marks
                if run is None:
                    run = _start_run(engine, model, params, seed, start)
                marks = time.monotonic()
                counts = _play_day(run, day)
                timing["people"] = time.monotonic() - marks
                counts = {"day": day.isoformat(), "planned": planned, **counts,
                          **_ledger_counts(engine, day)}  # fmt: skip
                per_day.append(counts)
                timings.append(timing)
                if progress is not None:
                    progress(index, counts)
            assert run is not None
            truth = _truth(run)
            with engine.begin() as conn:
                store.write_truth(conn, truth.values())
        finally:
            engine.dispose()
    return SimResult(
        database_url=env["OUTREACH_DATABASE_URL"], outbox_url=env["OUTREACH_OUTBOX_URL"],
        workdir=workdir, start=start, days=days, accounts=accounts, seed=seed,
        seconds=time.monotonic() - began, per_day=per_day, truth=truth, timings=timings,
    )  # fmt: skip


# --- the environment -------------------------------------------------------------------------


def _environment(workdir: Path, ladder: Path | None, experiments: Path | None) -> dict[str, str]:
    """The simulation's settings: its own data dir, database and outbox under ``workdir``; the
    demo's identity unless one is set (reserved names, never a real firm's)."""
    env = {
        settings.DATA_DIR.name: str(workdir),
        settings.DATABASE_URL.name: f"sqlite:///{workdir / 'outreach.db'}",
        settings.OUTBOX_URL.name: f"sqlite:///{workdir / 'outbox.db'}",
        **demo_identity(),
    }
    if ladder is not None:
        env[settings.LADDER.name] = str(Path(ladder).resolve())
    if experiments is not None:
        env[settings.EXPERIMENTS.name] = str(Path(experiments).resolve())
    return env


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    """The block runs with ``env`` set in the process (the settings read it at each call); the
    previous values come back afterwards."""
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _wipe(workdir: Path) -> None:
    """A simulation starts from nothing: its database, outbox, inbox and drops are removed."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("outreach.db", "outbox.db"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (workdir / f"{name}{suffix}").unlink(missing_ok=True)
    for folder in ("inbox", "rejects", "drop"):
        shutil.rmtree(workdir / folder, ignore_errors=True)


# --- the pipeline ----------------------------------------------------------------------------


def _run_day(day: dt.date) -> dict[str, int]:
    """The day as ``outreach_daily`` runs it on the logical clock, in this process: recall
    placements, settle, score (when the step exists), plan in batches, dispatch and close each
    channel. Returns the plan's counts."""
    with clock.use(dt.datetime.combine(day, PLAN_AT)):
        daily.recall_placements(day)
        daily.settle(day, clock="logical")
        score = getattr(daily, "score", None)
        if callable(score):
            score(day)
        planned: Counter[str] = Counter()
        for batch in daily.plan_batches(day, 5000):
            planned.update(daily.plan_batch(day, batch["lo"], batch["hi"]))
        for channel in daily.channel_kinds():
            for batch in daily.dispatch_batches(day, channel, 5000):
                daily.dispatch_batch(day, channel, batch["lo"], batch["hi"], clock="logical")
            if channel in daily.closing_kinds("batch"):
                daily.close_day(day, channel)
    return dict(sorted(planned.items()))


class _Airflow:
    """Each day a real DAG run of ``outreach_daily`` (``dag.test`` in a child process, as
    ``scripts/airflow_local.py`` runs it) against a local Airflow home in the workdir."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        path = settings.PROJECT_ROOT / "scripts" / "airflow_local.py"
        spec = importlib.util.spec_from_file_location("outreach_sim_airflow_local", path)
        if spec is None or spec.loader is None:
            raise SimulationError(f"cannot load {path}")
        self.runner = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.runner)
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
        base.update(env)
        home = workdir / "airflow"
        shutil.rmtree(home, ignore_errors=True)
        self.env: dict[str, str] = self.runner.airflow_env(home, base=base)
        self.log_path = workdir / "airflow.log"
        with self.log_path.open("w") as log:
            self.runner.bootstrap(self.env, log)

    def run_day(self, day: dt.date) -> dict[str, int]:
        logical_date = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)
        with self.log_path.open("a") as log:
            result = self.runner.run_dag(
                self.env, "outreach_daily", logical_date, {"clock": "logical"}, log=log
            )
        if result.get("state") != "success":
            raise SimulationError(
                f"outreach_daily for {day} did not succeed ({result.get('state')}); "
                f"see {self.log_path}"
            )
        return {"task_instances": int(result.get("task_instances", 0))}


# --- the people ------------------------------------------------------------------------------

_PROFILES = text(
    "SELECT a.id, a.account_ref, a.balance, a.amount_past_due, a.due_date, a.currency, "
    "a.product, a.jurisdiction_country, a.jurisdiction_region, a.segment, p.time_zones, "
    "(SELECT s.monthly_income FROM stated_means s WHERE s.account_id = a.id "
    " ORDER BY s.stated_on DESC, s.id DESC LIMIT 1) AS income, "
    "(SELECT c.cause FROM delinquency_cause c WHERE c.account_id = a.id "
    " ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1) AS cause "
    "FROM account a JOIN person p ON p.id = a.person_id ORDER BY a.id"
)


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def _zone(names: str | None) -> ZoneInfo | None:
    for name in (names or "").split():
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return None


def _start_run(engine: Engine, model: ModuleType, params: Any, seed: int, start: dt.date) -> _Run:
    """The portfolio as imported, as the behavioural model's profiles, and a consumer drawn for
    each account."""
    profile_fields = {f.name for f in fields(model.Profile)}
    profiles = []
    refs: dict[int, str] = {}
    currencies: dict[int, str] = {}
    zones: dict[int, ZoneInfo | None] = {}
    owed: dict[int, Decimal] = {}
    with engine.connect() as conn:
        for r in conn.execute(_PROFILES):
            account_id = int(r.id)
            due = r.due_date if isinstance(r.due_date, dt.date) or r.due_date is None else (
                dt.date.fromisoformat(str(r.due_date)))  # fmt: skip
            facts = {
                "account_id": account_id,
                "balance": _money(r.balance),
                "past_due": _money(r.amount_past_due),
                "dpd": max(0, (start - due).days) if due else 0,
                "income": _money(r.income) if r.income is not None else None,
                "product": str(r.product),
                "country": str(r.jurisdiction_country),
                "region": r.jurisdiction_region,
                "state": r.jurisdiction_region,
                "jurisdiction": f"{r.jurisdiction_country}-{r.jurisdiction_region}"
                if r.jurisdiction_region else str(r.jurisdiction_country),
                "cause": r.cause,
                "segment": r.segment,
                "currency": str(r.currency),
            }  # fmt: skip
            profiles.append(
                model.Profile(**{k: v for k, v in facts.items() if k in profile_fields})
            )
            refs[account_id] = str(r.account_ref)
            currencies[account_id] = str(r.currency)
            zones[account_id] = _zone(r.time_zones)
            owed[account_id] = _money(r.balance)
    consumers = dict(model.draw(profiles, params, seed))
    horizon = int(getattr(params, "horizon_days", 90))
    return _Run(engine=engine, model=model, params=params, seed=seed, start=start,
                horizon_end=start + dt.timedelta(days=horizon), consumers=consumers, refs=refs,
                currencies=currencies, zones=zones, owed=owed)  # fmt: skip


def _local_hour(run: _Run, account_id: int, at: dt.datetime | None) -> int | None:
    zone = run.zones.get(account_id)
    if at is None or zone is None:
        return None
    return at.replace(tzinfo=dt.UTC).astimezone(zone).hour


def _play_day(run: _Run, day: dt.date) -> dict[str, Any]:
    """The people's day: agents work the call queue, consumers answer what was sent, pay what
    falls due and what they pay unprompted. Returns the day's counts."""
    dispositions: Counter[str] = Counter()
    responses: Counter[str] = Counter()
    with run.engine.connect() as conn:
        run.recent = {int(a): int(n) for a, n in conn.execute(
            _RECENT, {"since": day - dt.timedelta(days=7), "day": day})}  # fmt: skip
    _work_calls(run, day, dispositions, responses)
    _answer_sent(run, day, responses)
    at = dt.datetime.combine(day, PLAY_AT)
    with clock.use(at):
        _self_cures(run, day)
        _promises_and_instalments(run, day)
        collected, payments = _act(run, day, responses)
    return {
        "calls": dict(sorted(dispositions.items())),
        "responses": dict(sorted(responses.items())),
        "payments": payments,
        "collected": {c: f"{a:.2f}" for c, a in sorted(collected.items())},
    }


_CALL_DUE = text(
    "SELECT 1 FROM call_task WHERE state = 'queued' AND due_start <= :now AND due_end > :now "
    "LIMIT 1"
).bindparams(bindparam("now", type_=DateTime))  # stored as the ORM stores instants


def _work_calls(run: _Run, day: dt.date, dispositions: Counter[str],
                responses: Counter[str]) -> None:  # fmt: skip
    """Agents take the queue's calls as their windows open, every half hour through the day;
    the consumer's answer (the behavioural model) decides the disposition recorded."""
    midnight = dt.datetime.combine(day, dt.time())
    for offset in CALL_ROUNDS:
        now = midnight + offset
        # A round with no call in its window asks nothing of the queue (a claim loads the
        # rules in force before it looks).
        with run.engine.connect() as conn:
            if conn.execute(_CALL_DUE, {"now": now}).first() is None:
                continue
        with clock.use(now):
            while True:
                task = call_service.claim_next(run.engine, AGENT, now)
                if task is None:
                    break
                answers = _respond(run, task.account_id, "call", task.action, task.stage, day,
                                   now, False)  # fmt: skip
                responses.update(a.kind for a in answers)
                disposition = _record_call(run, task.key, task.account_id, answers, day, now)
                dispositions[disposition] += 1
                # What is not the call's disposition (a payment, an offer taken through the
                # link the agent sends) is the consumer's own action.
                for answer in answers:
                    if answer.kind in ("pay", "accept_offer") or answer.day > day:
                        run.schedule(task.account_id, answer, "call", day)


def _record_call(run: _Run, key: str, account_id: int, answers: list[Any], day: dt.date,
                 now: dt.datetime) -> str:  # fmt: skip
    kinds = {a.kind for a in answers if a.day <= day}
    disposition = next((d for kind, d in CALL_DISPOSITIONS if kind in kinds), "no_answer")
    amount = due = None
    if disposition == "promise_to_pay":
        promised = next(a for a in answers if a.kind == "promise")
        amount, due = _promise_terms(run, account_id, promised, day)
    try:
        call_service.record_disposition(run.engine, key, AGENT, disposition, now,
                                        promise_amount=amount, promise_date=due)  # fmt: skip
    except call_service.DispositionError:
        # A promise the limits refuse (too many open, too far ahead): the conversation
        # happened all the same.
        disposition = "right_party_conversation"
        call_service.record_disposition(run.engine, key, AGENT, disposition, now)
    return disposition


def _promise_terms(run: _Run, account_id: int, promised: Any, day: dt.date
                   ) -> tuple[Decimal, dt.date]:  # fmt: skip
    """A promise's amount (what is still owed when the model names none) and its date (a week
    on when it names none; never in the past)."""
    amount = _money(promised.amount) if promised.amount else run.owed.get(account_id, CENT)
    due = promised.promise_due or day + dt.timedelta(days=7)
    return max(amount, CENT), max(due, day)


# How many contacts each account had sent in the 7 days before the day (the model's fatigue).
_RECENT = text(
    "SELECT account_id, COUNT(*) FROM contact WHERE state = 'sent' AND plan_date >= :since "
    "AND plan_date < :day GROUP BY account_id"
)
_SENT = text(
    "SELECT key, account_id, channel, stage, action, template, sent_at FROM contact "
    "WHERE plan_date = :day AND state = 'sent' AND channel <> 'call' ORDER BY account_id, key"
)


def _answer_sent(run: _Run, day: dt.date, responses: Counter[str]) -> None:
    """Each consumer's answers to what was sent to them that day (texts, emails, letters,
    placements, legal referrals), read from the ledger; kept for the day each happens."""
    with run.engine.connect() as conn:
        sent = conn.execute(_SENT, {"day": day}).all()
    for row in sent:
        account_id = int(row.account_id)
        offer = "offer" in f"{row.action} {row.template or ''}"
        sent_at = row.sent_at if isinstance(row.sent_at, dt.datetime) or row.sent_at is None else (
            dt.datetime.fromisoformat(str(row.sent_at)))  # fmt: skip
        answers = _respond(run, account_id, str(row.channel), str(row.action), str(row.stage),
                           day, sent_at, offer)  # fmt: skip
        for answer in answers:
            responses[answer.kind] += 1
            run.schedule(account_id, answer, str(row.channel), day)


def _respond(run: _Run, account_id: int, channel: str, kind: str, stage: str, day: dt.date,
             at: dt.datetime | None, offer: bool) -> list[Any]:  # fmt: skip
    """The consumer's answers to one contact (the model's ``respond``: the same answer whatever
    order the contacts are taken in)."""
    consumer = run.consumers.get(account_id)
    if consumer is None:
        return []
    contact = run.model.Contact(account_id=account_id, channel=channel, kind=kind, day=day,
                                local_hour=_local_hour(run, account_id, at), offer=offer,
                                stage=stage, recent_contacts=run.recent.get(account_id, 0))  # fmt: skip
    return list(run.model.respond(consumer, contact, run.params, run.seed))


def _self_cures(run: _Run, day: dt.date) -> None:
    """Consumers who pay unprompted that day (the model's self-cure)."""
    for account_id in sorted(run.consumers):
        if run.owed.get(account_id, Decimal(0)) <= 0:
            continue
        cure = run.model.self_cure(run.consumers[account_id], day, run.params, run.seed)
        if cure is not None:
            run.schedule(account_id, cure, "self_cure", day)


_OPEN_PROMISES = text(
    "SELECT id, account_id, amount, paid_amount, due_on FROM promise WHERE status = 'open' "
    "ORDER BY id"
)
_DUE_INSTALMENTS = text(
    "SELECT i.id, r.account_id, i.amount, i.paid_amount, i.due_on FROM arrangement_instalment i "
    "JOIN arrangement r ON r.id = i.arrangement_id WHERE r.state = 'active' "
    "AND i.state IN ('due', 'partly_paid') AND i.due_on <= :day ORDER BY i.id"
)


@dataclass(frozen=True)
class _Payment:
    """A payment the model decided (a promise's or an instalment's), as a response would."""

    kind: str
    day: dt.date
    amount: Decimal


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _promises_and_instalments(run: _Run, day: dt.date) -> None:
    """What the consumer pays on each open promise (asked once, when first seen) and on each
    instalment once it falls due (asked once): kept for the day it is paid."""
    with run.engine.connect() as conn:
        promises = conn.execute(_OPEN_PROMISES).all()
        instalments = conn.execute(_DUE_INSTALMENTS, {"day": day}).all()
    for row in promises:
        if row.id in run.asked_promises or int(row.account_id) not in run.consumers:
            continue
        run.asked_promises.add(int(row.id))
        owed = _money(row.amount) - _money(row.paid_amount)
        paid = run.model.promise_payment(run.consumers[int(row.account_id)], owed,
                                         _as_date(row.due_on), run.params, run.seed)  # fmt: skip
        if paid is not None:
            run.schedule(int(row.account_id), _Payment("pay", paid[1], paid[0]), "promise", day)
    for row in instalments:
        if row.id in run.asked_instalments or int(row.account_id) not in run.consumers:
            continue
        run.asked_instalments.add(int(row.id))
        owed = _money(row.amount) - _money(row.paid_amount)
        paid = run.model.instalment_payment(run.consumers[int(row.account_id)], owed,
                                            _as_date(row.due_on), run.params, run.seed)  # fmt: skip
        if paid is not None:
            run.schedule(int(row.account_id), _Payment("pay", paid[1], paid[0]), "instalment",
                         day)  # fmt: skip


def _act(run: _Run, day: dt.date, responses: Counter[str]) -> tuple[dict[str, Decimal], int]:
    """Everything the consumers do on ``day``, in account order: each through the service a
    real consumer's action goes through (the self-service page's use cases, the processor's
    payment posting). Returns the amounts collected per currency and the payments posted."""
    due = sorted(run.later.pop(day, []), key=lambda item: (item[0], item[1]))
    collected: dict[str, Decimal] = {}
    payments = 0
    for account_id, _, response, channel in due:
        if response.kind == "pay":
            amount = _pay(run, account_id, response.amount, day, channel)
            if amount:
                currency = run.currencies[account_id]
                collected[currency] = collected.get(currency, Decimal(0)) + amount
                payments += 1
        else:
            _answer(run, account_id, response, day)
    return collected, payments


def _answer(run: _Run, account_id: int, response: Any, day: dt.date) -> None:
    engine = run.engine
    kind = response.kind
    if kind == "stop":
        self_service.stop_messages(account_id, day, engine=engine)
    elif kind == "dispute":
        self_service.dispute(account_id, day, engine=engine)
    elif kind == "hardship":
        dispute_service.hardship(engine, run.refs[account_id], source=self_service.SOURCE,
                                 actor=self_service.ACTOR, as_of=day)  # fmt: skip
    elif kind == "promise":
        amount, due = _promise_terms(run, account_id, response, day)
        self_service.promise(account_id, amount, due, day, engine=engine)
    elif kind == "accept_offer":
        offers = self_service.offers(account_id, day, engine=engine)
        chosen = next((o for o in offers if not o["needs_approval"]), offers[0] if offers else None)
        if chosen is not None:
            self_service.accept(account_id, chosen["terms"], day, engine=engine)


def _pay(run: _Run, account_id: int, amount: Any, day: dt.date, channel: str) -> Decimal:
    """Post a payment (never more than the simulation says is still owed) through the payments
    use case, as the processor's webhook or the agency would; returns the amount posted."""
    owed = run.owed.get(account_id, Decimal(0))
    value = min(_money(amount), owed) if amount is not None else owed
    if value <= 0:
        return Decimal(0)
    source, actor = PAYMENT_SOURCE.get(channel, DEFAULT_PAYMENT_SOURCE)
    run.payment_seq[(account_id, day)] += 1
    ref = f"SIM{run.seed}-{account_id}-{day:%Y%m%d}-{run.payment_seq[(account_id, day)]}"
    payment_service.post(
        run.engine, account_ref=run.refs[account_id], payment_ref=ref, amount=value, paid_on=day,
        source=source, actor=actor, currency=run.currencies[account_id],
        received_at=clock.utcnow(), as_of=day,
    )  # fmt: skip
    run.owed[account_id] = owed - value
    run.first_paid.setdefault(account_id, day)
    return value


# --- counts and truth ------------------------------------------------------------------------

_SENT_BY_CHANNEL = text(
    "SELECT channel, COUNT(*) FROM contact WHERE plan_date = :day AND state = 'sent' "
    "GROUP BY channel ORDER BY channel"
)


def _ledger_counts(engine: Engine, day: dt.date) -> dict[str, Any]:
    """The day's sends by channel and the promises made, kept and broken, from the ledger."""
    with engine.connect() as conn:
        sent = {str(c): int(n) for c, n in conn.execute(_SENT_BY_CHANNEL, {"day": day})}
        resolution = resolution_counts(conn, day)
    promise = resolution.get("promise", {})
    return {
        "sent": sent,
        "promises": {
            "made": promise.get("open", 0),
            "kept": promise.get("kept", 0),
            "partly_kept": promise.get("partly_kept", 0),
            "broken": promise.get("broken", 0),
        },  # fmt: skip
    }


def _truth(run: _Run) -> dict[int, Truth]:
    truth = {}
    for account_id, consumer in sorted(run.consumers.items()):
        first = run.first_paid.get(account_id)
        truth[account_id] = Truth(
            account_id=account_id, p_true=float(consumer.p_true),
            ability=float(consumer.ability), willingness=float(consumer.willingness),
            paid_within_horizon=first is not None and first < run.horizon_end,
            first_paid_on=first,
        )  # fmt: skip
    return truth
