"""Several dispatchers on the same batch at once, on the real PostgreSQL, as separate processes.

This is what Airflow does when a task is cleared while its old worker still runs: two (or three)
``dispatch_range`` calls over the same account range start together. Each child process builds
its own engine and its own Twilio channel pointed at one fake Twilio in the parent, and appends
every key it hands to the channel to its own file before the SDK call, so a duplicate shows up
twice in the files and twice in the fake's ``accepted_keys()`` (an outbox keyed by the ledger key
would hide it). Assertions are scoped to the accounts each test creates: other tests share the
scratch database.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, text

from contact_channels.base import Channel, OutboundMessage, SendResult
from contact_channels.registry import build_channel
from contact_channels.retry import RetryPolicy
from fakes.http import Fault
from fakes.twilio_server import FakeTwilio
from outreach.dispatch.dispatcher import dispatch_range
from outreach.dispatch.sending import CLAIM_CHUNK
from outreach.kernel.ledger import claim
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import plan_range
from outreach.settings import PROJECT_ROOT
from outreach.storage.db import make_engine
from tests import factories as f

pytestmark = pytest.mark.postgres

DAY = dt.date(2026, 11, 23)
AT = dt.datetime(2026, 11, 23, 15)  # 10:00 in New York: every SMS window is open
ACCOUNTS = 200
FAST = RetryPolicy(max_attempts=3, initial_wait=0.0, max_wait=1.0, jitter=0.0, max_total=5.0)
SPAWN = multiprocessing.get_context("spawn")
START_TIMEOUT = 120.0  # a spawned child imports Airflow and the SDKs before it is ready
RUN_TIMEOUT = 180.0


class RecordingChannel:
    """Wraps a channel and appends each key it is asked to send to a file, before the send:
    the raw count of send calls, which no idempotent backend can hide."""

    def __init__(self, inner: Channel, record: Path) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.backend = inner.backend
        self._record = record.open("a", encoding="utf-8")
        self._lock = threading.Lock()  # the dispatcher sends from several threads

    def send(self, message: OutboundMessage) -> SendResult:
        with self._lock:
            self._record.write(message.key + "\n")
            self._record.flush()
        return self.inner.send(message)

    def lookup(self, key: str) -> SendResult | None:
        return self.inner.lookup(key)

    def close(self) -> None:
        self._record.close()
        self.inner.close()


def dispatcher_process(
    url: str,
    env: dict[str, str],
    lo: int,
    hi: int,
    now_iso: str,
    record: str,
    outbox: str,
    ready: Event,
    go: Event,
) -> None:
    """One dispatcher, as an Airflow worker would run it: its own engine and channel."""
    os.environ.update(env)
    for name in ("outreach", "contact_channels"):  # a line per send would flood the test output
        logging.getLogger(name).setLevel(logging.WARNING)
    engine = make_engine(url)
    inner = build_channel("sms", {"backend": "auto"}, outbox_url=outbox, retry_policy=FAST)
    assert inner.backend == "twilio", inner.backend
    channel = RecordingChannel(inner, Path(record))
    at = dt.datetime.fromisoformat(now_iso)
    with engine.connect():  # the first connection is made before the start, not after
        pass
    ready.set()
    if not go.wait(START_TIMEOUT):
        raise RuntimeError("never told to start")
    try:
        dispatch_range(engine, DAY, "sms", lo, hi, clock="wall", channel_impl=channel,
                       now=lambda: at)
    finally:
        channel.close()
        engine.dispose()


def claimer_process(url: str, keys: list[str], record: str, ready: Event, go: Event) -> None:
    """Claim ``keys`` chunk by chunk as fast as possible, writing down what each claim won."""
    engine = make_engine(url)
    with engine.connect():
        pass
    ready.set()
    go.wait(START_TIMEOUT)
    with open(record, "a", encoding="utf-8") as out:
        for i in range(0, len(keys), CLAIM_CHUNK):
            won = claim(engine, keys[i : i + CLAIM_CHUNK], uuid.uuid4().hex, AT)
            out.writelines(k + "\n" for k in sorted(won))
    engine.dispose()


# --- set-up ---------------------------------------------------------------------------------


def _skip_used_refs(engine: Engine) -> None:
    """The factories number people and accounts from 1 in each process; a scratch database
    reused across runs already holds those refs, so move the counter past them."""
    with engine.connect() as conn:
        refs = conn.execute(text("SELECT account_ref FROM account")).scalars().all()
    used = max((int(r[1:]) for r in refs if r[1:].isdigit()), default=0)
    while next(f._refs) < used:
        pass


@pytest.fixture
def batch(postgres_url: str) -> Iterator[dict[str, Any]]:
    """ACCOUNTS accounts, each with one SMS planned for DAY; removed again at the end."""
    engine = f.database(postgres_url)
    _skip_used_refs(engine)
    ids, phones = [], {}
    for i in range(ACCOUNTS):
        phone = f"+1646555{i:04d}"
        made = f.add_account(engine, as_of=DAY, dpd=3, emails=[],
                             phones=[{"value": phone, "zones": "America/New_York"}])
        ids.append(made["account_id"])
        phones[made["account_id"]] = phone
    lo, hi = min(ids), max(ids)
    plan_range(engine, load_ladder(PROJECT_ROOT / "config/ladders/default.yaml"), DAY, lo, hi)
    keys = set(_ledger(engine, ids))
    assert len(keys) == ACCOUNTS, "each account has one SMS planned"
    assert set(_ledger(engine, ids).values()) == {"planned"}
    yield {"engine": engine, "ids": ids, "lo": lo, "hi": hi, "keys": keys, "phones": phones}
    _delete_accounts(engine, ids)
    engine.dispose()


def _ledger(engine: Engine, ids: list[int]) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(
            text("SELECT key, state FROM contact WHERE channel = 'sms' AND plan_date = :d "
                 "AND account_id IN :ids").bindparams(bindparam("ids", expanding=True)),
            {"d": DAY, "ids": ids}).all())


def _delete_accounts(engine: Engine, ids: list[int]) -> None:
    """Remove this test's rows, children first, so the shared database stays small."""
    with engine.begin() as conn:
        person_ids = conn.execute(
            text("SELECT person_id FROM account WHERE id IN :ids").bindparams(
                bindparam("ids", expanding=True)), {"ids": ids}).scalars().all()
        tables = conn.execute(text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name = 'account_id' AND table_name <> 'account'")).scalars().all()
        for table in tables:
            conn.execute(text(f'DELETE FROM "{table}" WHERE account_id IN :ids').bindparams(
                bindparam("ids", expanding=True)), {"ids": ids})
        conn.execute(text("DELETE FROM account WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)), {"ids": ids})
        person_tables = conn.execute(text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name = 'person_id' AND table_name NOT IN ('account', 'person')")
        ).scalars().all()
        for table in person_tables:
            conn.execute(text(f'DELETE FROM "{table}" WHERE person_id IN :ids').bindparams(
                bindparam("ids", expanding=True)), {"ids": person_ids})
        conn.execute(text("DELETE FROM person WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)), {"ids": person_ids})


@pytest.fixture
def twilio(batch: dict[str, Any]) -> Iterator[FakeTwilio]:
    """A fake Twilio in this process whose every reply is slow, so that the dispatchers'
    groups are at the provider at the same time."""
    with FakeTwilio() as fake:
        for phone in batch["phones"].values():
            fake.fail_destination(phone, Fault.slow(0.05))
        yield fake


_runs = itertools.count()


def _start(n: int, postgres_url: str, batch: dict[str, Any], fake: FakeTwilio, tmp: Path,
           *, now: dt.datetime = AT, lease: str = "300") -> tuple[list[Any], list[Path], Event]:
    """Start ``n`` dispatcher processes on the batch, held at the line until ``go`` is set."""
    env = {"AIRFLOW_CONN_TWILIO_DEFAULT": fake.airflow_conn_json(timeout=5.0),
           "OUTREACH_SENDING_LEASE_SECONDS": lease}
    go = SPAWN.Event()
    procs, records, readies = [], [], []
    for _ in range(n):
        record = tmp / f"sends-{next(_runs)}.txt"  # one file per process ever started
        record.touch()
        ready = SPAWN.Event()
        proc = SPAWN.Process(target=dispatcher_process, args=(
            postgres_url, env, batch["lo"], batch["hi"], now.isoformat(), str(record),
            f"sqlite:///{record.with_suffix('.db')}", ready, go))
        proc.start()
        procs.append(proc)
        records.append(record)
        readies.append(ready)
    for ready in readies:
        assert ready.wait(START_TIMEOUT), "a dispatcher never got ready"
    return procs, records, go


def _join(procs: list[Any]) -> None:
    for proc in procs:
        proc.join(RUN_TIMEOUT)
        if proc.is_alive():
            proc.kill()
            proc.join()
            pytest.fail("a dispatcher did not finish in time")


def _calls(records: list[Path]) -> Counter[str]:
    calls: Counter[str] = Counter()
    for record in records:
        calls.update(line for line in record.read_text().splitlines() if line)
    return calls


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("dispatchers", [2, 3])
def test_dispatchers_started_together_send_each_contact_exactly_once(
        dispatchers: int, postgres_url: str, batch: dict[str, Any], twilio: FakeTwilio,
        tmp_path: Path) -> None:
    procs, records, go = _start(dispatchers, postgres_url, batch, twilio, tmp_path)
    go.set()
    _join(procs)
    assert [p.exitcode for p in procs] == [0] * dispatchers

    keys = batch["keys"]
    calls = _calls(records)
    accepted = Counter(k for k in twilio.accepted_keys() if k in keys)
    assert [k for k, n in calls.items() if n > 1] == []  # no contact handed to a channel twice
    assert [k for k, n in accepted.items() if n > 1] == []  # nor taken by Twilio twice
    assert set(accepted) == keys  # none lost
    assert set(_ledger(batch["engine"], batch["ids"]).values()) == {"sent"}  # none left sending
    # The work really was shared: more than one dispatcher sent.
    assert sum(1 for r in records if r.read_text().strip()) >= 2


def test_dispatcher_killed_mid_batch_leaves_its_claims_uncertain_and_nothing_twice(
        postgres_url: str, batch: dict[str, Any], twilio: FakeTwilio, tmp_path: Path) -> None:
    engine, ids, keys = batch["engine"], batch["ids"], batch["keys"]
    for phone in batch["phones"].values():
        twilio.fail_destination(phone, Fault.slow(0.4))  # slow enough to kill mid-batch
    procs, records, go = _start(2, postgres_url, batch, twilio, tmp_path, lease="5")
    victim, survivor = procs
    go.set()
    deadline = dt.datetime.now() + dt.timedelta(seconds=RUN_TIMEOUT)
    while len(records[0].read_text().splitlines()) < 10:  # the victim has sends in flight
        assert victim.is_alive() and dt.datetime.now() < deadline
        time.sleep(0.01)
    victim.kill()
    victim.join()
    assert victim.exitcode == -9
    _join([survivor])
    assert survivor.exitcode == 0

    left = _ledger(engine, ids)
    in_doubt = {k for k, s in left.items() if s == "sending"}
    assert in_doubt, "the killed dispatcher left its claims sending"
    # Nobody may take those over while the lease runs: a dispatcher at the same instant sends
    # nothing more and leaves them alone.
    procs, early, go = _start(1, postgres_url, batch, twilio, tmp_path, lease="5")
    go.set()
    _join(procs)
    assert _calls(early) == Counter()
    assert {k for k, s in _ledger(engine, ids).items() if s == "sending"} == in_doubt

    # After the lease, a rerun finds the dead worker's claims and marks them uncertain.
    later = AT + dt.timedelta(seconds=30)
    procs, rerun, go = _start(1, postgres_url, batch, twilio, tmp_path, now=later, lease="5")
    go.set()
    _join(procs)
    assert procs[0].exitcode == 0
    assert _calls(rerun) == Counter()  # nothing resent, the uncertain ones included

    final = _ledger(engine, ids)
    assert {k for k, s in final.items() if s == "uncertain"} == in_doubt
    assert {k for k, s in final.items() if s == "sent"} == keys - in_doubt
    calls = _calls(records)
    accepted = Counter(k for k in twilio.accepted_keys() if k in keys)
    assert [k for k, n in calls.items() if n > 1] == []
    assert [k for k, n in accepted.items() if n > 1] == []
    assert keys - in_doubt <= set(accepted)  # every contact sent is at the provider, once


def test_racing_claims_on_the_same_keys_never_give_one_contact_to_two_claimers(
        postgres_url: str, batch: dict[str, Any], tmp_path: Path) -> None:
    """The claim alone, without the sending around it, hammered by four processes at once:
    two walk the keys forwards and two backwards, half a chunk apart, so every chunk is fought
    over by claims of other, overlapping key lists in another order (a deadlock between them
    would fail a claimer)."""
    keys = sorted(batch["keys"])
    shifted = keys[CLAIM_CHUNK // 2 :] + keys[: CLAIM_CHUNK // 2]
    orders = [keys, keys[::-1], shifted, shifted[::-1]]
    go = SPAWN.Event()
    procs, records, readies = [], [], []
    for order in orders:
        record = tmp_path / f"claims-{next(_runs)}.txt"
        ready = SPAWN.Event()
        proc = SPAWN.Process(target=claimer_process,
                             args=(postgres_url, order, str(record), ready, go))
        proc.start()
        procs.append(proc)
        records.append(record)
        readies.append(ready)
    for ready in readies:
        assert ready.wait(START_TIMEOUT)
    go.set()
    _join(procs)
    assert [p.exitcode for p in procs] == [0] * len(orders)
    won = _calls(records)
    assert [k for k, n in won.items() if n > 1] == []  # no contact won twice
    assert set(won) == set(keys)  # and every one won by someone
    assert sum(1 for r in records if r.read_text().strip()) >= 2  # the race was real
    with batch["engine"].connect() as conn:
        attempts = conn.execute(
            text("SELECT attempts, count(*) FROM contact WHERE key IN :keys GROUP BY attempts")
            .bindparams(bindparam("keys", expanding=True)), {"keys": keys}).all()
    assert attempts == [(1, len(keys))]  # a lost race does not count as an attempt
