"""The agent call queue on a real database: dispatch queues calls, agents claim them through the
gate, dispositions update the task, the ledger, the contact history and the account at once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from contact_channels.base import OutboundMessage, PermanentError
from outreach.dispatch.dispatcher import DispatchCounts, dispatch_range
from outreach.entry.agent_api import build_router
from outreach.media.calls import dispositions as qd
from outreach.media.calls import hooks as qh
from outreach.media.calls import queue as q
from outreach.media.calls import upkeep as qu
from outreach.media.calls.channel import AgentQueueChannel
from outreach.planning.kinds import build_channel
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from outreach.storage.db import make_engine
from tests import factories as f

DAY = dt.date(2026, 11, 23)  # a Monday; New York's window is 13:00-02:00 UTC
AT = dt.datetime(2026, 11, 23, 14, 0)  # 09:00 in New York
WINDOW = (dt.datetime(2026, 11, 23, 13, 0), dt.datetime(2026, 11, 24, 2, 0))
LADDER = load_ladder(PROJECT_ROOT / "config" / "ladders" / "default.yaml")
NOTICE_SENT = DAY - dt.timedelta(days=21)  # validation notice out: calls are allowed
TABLES = ("call_task", "contact", "contact_event", "account_hold", "promise", "contact_point",
          "policy_decision", "opt_out")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test on SQLite, and on PostgreSQL (a scratch schema) when
    ``OUTREACH_TEST_POSTGRES_URL`` is set: the claim's row locking is what production runs."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    pg_url: str = request.getfixturevalue("postgres_url")
    scratch = make_engine(pg_url)
    with scratch.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    scratch.dispose()
    return pg_url


@pytest.fixture
def engine(url: str) -> Engine:
    return f.database(url)


@pytest.fixture
def dispatch(engine: Engine, url: str, tmp_path: Path) -> Callable[..., DispatchCounts]:
    """Plan ``day`` and dispatch its calls to the agent queue (logical clock)."""

    def run(day: dt.date = DAY) -> DispatchCounts:
        for _ in iter_plan(engine, LADDER, day, 1000):
            pass
        channel = build_channel("call", {"backend": "agent_queue"}, outbox_url=f"sqlite:///"
                                f"{tmp_path / 'outbox.db'}", state_dir=tmp_path, database_url=url)
        return dispatch_range(engine, day, "call", 0, 10**9, clock="logical", channel_impl=channel)

    return run


def caller(engine: Engine, **kw: Any) -> dict[str, Any]:
    """An account in the call stage (20 days past due) whose validation notice went out."""
    kw.setdefault("dpd", 20)
    return f.add_account(engine, as_of=DAY, validation_notice_sent_on=NOTICE_SENT, **kw)


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def task_of(engine: Engine, account_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        r = conn.execute(text("SELECT * FROM call_task WHERE account_id = :a"),
                         {"a": account_id}).one()
    return dict(r._mapping)


def snapshot(engine: Engine) -> dict[str, list[str]]:
    return {t: sorted(repr(r) for r in rows(engine, f"SELECT * FROM {t}")) for t in TABLES}


def claimed(engine: Engine, account: dict[str, Any], agent: str = "agent-1",
            at: dt.datetime = AT) -> q.ClaimedTask:
    task = q.claim_next(engine, agent, at)
    assert task is not None and task.account_id == account["account_id"]
    return task


# --- Queueing ---------------------------------------------------------------------------------


def test_planned_calls_become_queued_tasks_through_dispatch_and_a_rerun_writes_none(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    accounts = [caller(engine, balance=b) for b in ("1000.00", "4200.00")]
    first = dispatch()
    assert first.sent == 2
    ledger = {r[0]: r[1:] for r in rows(engine, "SELECT account_id, key, state, contact_point_id "
                                                "FROM contact WHERE channel = 'call'")}
    for acc, balance in zip(accounts, (1000, 4200), strict=True):
        task = task_of(engine, acc["account_id"])
        key, state, point = ledger[acc["account_id"]]
        assert (task["key"], task["state"], state) == (key, "queued", "sent")
        assert task["contact_point_id"] == point == acc["points"]["phone0"]
        assert (str(task["due_start"])[:19], str(task["due_end"])[:19]) == tuple(
            str(w) for w in WINDOW)
        assert task["priority"] == qh.call_priority(Decimal(balance), 20, 0, None)
    created = rows(engine, "SELECT key, created_at FROM call_task ORDER BY key")
    again = dispatch()  # the same day planned and dispatched again
    assert again.sent == 0 and again.due == 0
    assert rows(engine, "SELECT key, created_at FROM call_task ORDER BY key") == created


def test_queueing_the_same_key_twice_writes_one_task_and_lookup_is_authoritative(
        engine: Engine, url: str) -> None:
    acc = caller(engine)
    channel = AgentQueueChannel({}, database_url=url)
    message = OutboundMessage("k" * 32, "call", "+12125550100", "call", fields={
        "account_id": acc["account_id"], "contact_point_id": acc["points"]["phone0"],
        "priority": 7, "due_start": WINDOW[0], "due_end": WINDOW[1]})
    assert channel.lookup("k" * 32) is None
    first = channel.send(message)
    assert channel.send(message) == first == channel.lookup("k" * 32)
    assert rows(engine, "SELECT COUNT(*) FROM call_task") == [(1,)]
    with pytest.raises(PermanentError, match="priority"):
        channel.send(OutboundMessage("m" * 32, "call", "", "call",
                                     fields={"account_id": acc["account_id"],
                                             "due_start": WINDOW[0], "due_end": WINDOW[1]}))
    with pytest.raises(ValueError, match="application database"):
        AgentQueueChannel({}, database_url=None)


# --- Priority and claiming --------------------------------------------------------------------


def test_priority_grows_with_balance_days_past_due_broken_promises_and_segment() -> None:
    assert qh.call_priority(Decimal("1000.00"), 20, 0, None) == 10 + 40
    assert qh.call_priority(Decimal("1099.99"), 20, 0, "prime") == 10 + 40
    assert qh.call_priority(Decimal("1000.00"), 20, 1, "subprime") == 10 + 40 + 250 + 150
    # Each term is capped: 500 + 360 + 500 + 150.
    assert qh.call_priority(Decimal("10000000"), 999, 9, "subprime") == 1510
    assert qh.call_priority(Decimal("0"), -3, 0, "unknown") == 0


def test_agents_get_the_highest_priority_call_first(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    low = caller(engine, balance="1000.00")
    rich = caller(engine, balance="9000.00")
    late = caller(engine, balance="1000.00", dpd=45)
    promised = caller(engine, balance="1000.00")
    with engine.begin() as conn:  # promised 50 by three days ago, nothing paid since
        conn.execute(text(
            "INSERT INTO promise (account_id, ledger_key, amount, due_on, recorded_at, source, "
            "status) VALUES (:a, NULL, 50, :due, :made, 'agent', 'open')"),
            {"a": promised["account_id"], "due": DAY - dt.timedelta(days=3),
             "made": dt.datetime(2026, 11, 13, 15)})
    dispatch()
    order = [q.claim_next(engine, "agent-1", AT, max_open=5) for _ in range(5)]
    assert order[-1] is None
    assert [(t.account_id, t.priority) for t in order if t] == [
        (promised["account_id"], 10 + 40 + 250), (rich["account_id"], 90 + 40),
        (late["account_id"], 10 + 90), (low["account_id"], 10 + 40)]


def test_a_call_is_handed_out_only_inside_its_window(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    acc = caller(engine)
    dispatch()
    assert q.claim_next(engine, "agent-1", WINDOW[0] - dt.timedelta(minutes=1)) is None
    assert q.claim_next(engine, "agent-1", WINDOW[1]) is None
    task = q.claim_next(engine, "agent-1", WINDOW[0])
    assert task is not None and task.key == task_of(engine, acc["account_id"])["key"]
    assert (task.due_start, task.due_end) == WINDOW
    assert task_of(engine, acc["account_id"])["state"] == "claimed"


CHANGES: dict[str, tuple[Callable[[Engine, dict[str, Any]], None], str]] = {
    "paid_in_full": (lambda e, a: f.add_payment(e, a["account_id"], DAY, "100.00"),
                     "core.not_delinquent"),
    "disputed": (lambda e, a: f.add_hold(e, a["account_id"], "dispute", DAY),
                 "us_reg_f.dispute_in_validation_period"),
    "opted_out_of_calls": (lambda e, a: f.add_opt_out(e, a["person_id"], "call", "*",
                                                      AT - dt.timedelta(minutes=30)),
                           "core.opted_out"),
    "asked_to_cease": (lambda e, a: f.add_hold(e, a["account_id"], "cease_communication", DAY),
                       "us_reg_f.cease_communication"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_task_whose_account_changed_since_planning_is_withdrawn_at_claim_never_handed_out(
        engine: Engine, dispatch: Callable[..., DispatchCounts], change: str) -> None:
    changed = caller(engine, balance="9000.00")  # first in line
    other = caller(engine)
    dispatch()
    apply, code = CHANGES[change]
    apply(engine, changed)
    task = q.claim_next(engine, "agent-1", AT)
    assert task is not None and task.account_id == other["account_id"]
    withdrawn = task_of(engine, changed["account_id"])
    assert withdrawn["state"] == "withdrawn" and code in withdrawn["reasons"].split()
    assert withdrawn["agent"] is None  # it was never anyone's
    key = withdrawn["key"]
    decisions = rows(engine, "SELECT verdict, reasons, decided_at FROM policy_decision "
                             "WHERE contact_key = :k AND phase = 'send' ORDER BY id", k=key)
    assert decisions[0][0] == "send"  # the dispatcher's, when it queued the call
    assert decisions[-1][0] == "block" and code in decisions[-1][1].split()
    assert str(decisions[-1][2])[:19] == str(AT)
    # The call was never made: the ledger says so and no attempt is left in the history.
    assert rows(engine, "SELECT state, outcome FROM contact WHERE key = :k", k=key) == [
        ("sent", "withdrawn")]
    assert rows(engine, "SELECT COUNT(*) FROM contact_event WHERE ledger_key = :k", k=key) == [
        (0,)]
    assert q.claim_next(engine, "agent-2", AT) is None


def test_two_agents_claiming_at_once_never_get_the_same_task(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    for i in range(12):
        caller(engine, balance=f"{1000 + 100 * i}.00")
    dispatch()
    start = threading.Barrier(4)
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(agent: str) -> None:
        mine = got.setdefault(agent, [])
        try:
            start.wait()
            while (task := q.claim_next(engine, agent, AT, max_open=12)) is not None:
                mine.append(task.key)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"agent-{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    handed = [k for keys in got.values() for k in keys]
    assert len(handed) == 12 == len(set(handed))
    holders = dict(rows(engine, "SELECT key, agent FROM call_task"))
    assert all(holders[k] == agent for agent, keys in got.items() for k in keys)
    # One claim-time decision per task: no task was judged by two agents.
    judged = [r[0] for r in rows(engine, "SELECT contact_key, decided_at FROM policy_decision")
              if str(r[1])[:19] == str(AT)]
    assert len(judged) == 12 == len(set(judged))


def test_an_agent_holds_at_most_the_configured_number_of_open_tasks(
        engine: Engine, dispatch: Callable[..., DispatchCounts],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        caller(engine, balance=f"{1000 + 100 * i}.00")
    dispatch()
    first = q.claim_next(engine, "agent-1", AT)  # the default: one open call per agent
    assert first is not None
    before = snapshot(engine)
    with pytest.raises(q.TooManyOpenTasks) as refused:
        q.claim_next(engine, "agent-1", AT)
    assert refused.value.open_keys == [first.key] and refused.value.limit == 1
    assert snapshot(engine) == before  # nothing judged, nothing claimed
    assert q.claim_next(engine, "agent-2", AT) is not None  # another agent is not held up
    qd.record_disposition(engine, first.key, "agent-1", "no_answer", AT)
    second = q.claim_next(engine, "agent-1", AT)  # the call is closed: the next one
    assert second is not None and second.key != first.key
    monkeypatch.setenv("OUTREACH_CALL_MAX_OPEN_TASKS", "2")
    assert q.claim_next(engine, "agent-1", AT) is not None
    with pytest.raises(q.TooManyOpenTasks):
        q.claim_next(engine, "agent-1", AT)
    # A claim older than the lease no longer holds the agent (it may go to someone else).
    later = AT + q.claim_lease() + dt.timedelta(seconds=1)
    assert q.claim_next(engine, "agent-1", later, max_open=1) is None  # no other call left
    assert rows(engine, "SELECT agent, COUNT(*) FROM call_task WHERE state = 'claimed' "
                        "GROUP BY agent ORDER BY agent") == [("agent-1", 2), ("agent-2", 1)]


def test_one_agent_claiming_twice_at_once_gets_one_call(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    for i in range(6):
        caller(engine, balance=f"{1000 + 100 * i}.00")
    dispatch()
    for attempt in range(3):  # a race is a matter of luck: try it a few times
        start = threading.Barrier(2)
        got: list[str] = []
        refused: list[BaseException] = []

        def work(start: threading.Barrier, got: list[str], refused: list[BaseException]
                 ) -> None:  # fmt: skip
            start.wait()
            try:
                task = q.claim_next(engine, "agent-1", AT)
            except q.TooManyOpenTasks as exc:
                refused.append(exc)
            else:
                got.extend([task.key] if task else [])

        threads = [threading.Thread(target=work, args=(start, got, refused)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (len(got), len(refused)) == (1, 1), attempt
        assert rows(engine, "SELECT key FROM call_task WHERE state = 'claimed'") == [(got[0],)]
        qd.record_disposition(engine, got[0], "agent-1", "busy", AT)


# --- Dispositions -----------------------------------------------------------------------------

EXPECTED: dict[str, tuple[str, str | None, bool]] = {
    # disposition: (contact_event outcome, hold started today, number marked invalid)
    "right_party_conversation": ("conversation", None, False),
    "third_party": ("third_party", None, False),
    "no_answer": ("no_answer", None, False),
    "voicemail": ("voicemail", None, False),
    "busy": ("busy", None, False),
    "not_in_service": ("not_in_service", None, True),
    "wrong_number": ("wrong_number", None, True),
    "promise_to_pay": ("conversation", None, False),
    "dispute": ("conversation", "dispute", False),
    "refusal": ("conversation", None, False),
    "hardship": ("conversation", "hardship", False),
    "cease_request": ("conversation", "cease_communication", False),
}


@pytest.mark.parametrize("disposition", list(EXPECTED))
def test_each_disposition_updates_task_ledger_history_and_account_at_once(
        engine: Engine, dispatch: Callable[..., DispatchCounts], disposition: str) -> None:
    assert set(EXPECTED) == set(qd.DISPOSITIONS)
    acc = caller(engine)
    dispatch()
    task = claimed(engine, acc)
    done_at = AT + dt.timedelta(minutes=7)
    promise: dict[str, Any] = ({"promise_amount": Decimal("75.50"), "promise_date": DAY + dt.timedelta(days=5)}
               if disposition == "promise_to_pay" else {})
    result = qd.record_disposition(engine, task.key, "agent-1", disposition, done_at, **promise)
    outcome, hold, invalid = EXPECTED[disposition]
    assert result["status"] == "recorded" and result["event_outcome"] == outcome
    t = task_of(engine, acc["account_id"])
    assert (t["state"], t["disposition"], str(t["completed_at"])[:19]) == (
        "done", disposition, str(done_at))
    assert rows(engine, "SELECT state, outcome FROM contact WHERE key = :k", k=task.key) == [
        ("sent", disposition)]
    events = rows(engine, "SELECT channel, direction, outcome, source, occurred_at, "
                          "contact_point_id FROM contact_event WHERE ledger_key = :k", k=task.key)
    assert [e[:4] for e in events] == [("call", "outbound", outcome, "agent")]  # one per call
    assert str(events[0][4])[:19] == str(done_at) and events[0][5] == acc["points"]["phone0"]
    holds = [(k, str(d), src) for k, d, src in rows(
        engine, "SELECT kind, started_on, source FROM account_hold WHERE account_id = :a",
        a=acc["account_id"])]
    assert holds == ([(hold, str(DAY), "agent")] if hold else [])
    valid = rows(engine, "SELECT valid FROM contact_point WHERE id = :p", p=acc["points"]["phone0"])
    assert valid == [(0 if invalid else 1,)]
    promises = rows(engine, "SELECT amount, due_on, status, source FROM promise WHERE "
                            "ledger_key = :k", k=task.key)
    if disposition == "promise_to_pay":
        assert [(Decimal(str(p[0])), str(p[1]), p[2], p[3]) for p in promises] == [
            (Decimal("75.50"), str(DAY + dt.timedelta(days=5)), "open", "agent")]
    else:
        assert promises == []


def test_a_conversation_pauses_the_next_planned_call(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    acc = caller(engine)
    dispatch()
    task = claimed(engine, acc)
    qd.record_disposition(engine, task.key, "agent-1", "right_party_conversation", AT)
    later = DAY + dt.timedelta(days=2)  # the next call by the ladder's cadence (every 2 days)
    for _ in iter_plan(engine, LADDER, later, 1000):
        pass
    assert rows(engine, "SELECT state, reasons FROM contact WHERE channel = 'call' AND "
                        "plan_date = :d", d=later) == [
        ("deferred", "us_reg_f.call_after_conversation")]


@pytest.mark.parametrize(("disposition", "next_state"), [
    ("voicemail", "deferred"), ("no_answer", "deferred"), ("busy", "planned")])
def test_voicemail_and_no_answer_count_for_the_7_in_7_cap_and_busy_does_not(
        engine: Engine, dispatch: Callable[..., DispatchCounts], disposition: str,
        next_state: str) -> None:
    acc = caller(engine)
    # Six unanswered calls two and three days before (imported calls count toward the
    # ladder's every_days, so none yesterday: the seventh is due today).
    for i in range(6):
        f.add_call(engine, acc["account_id"], dt.datetime(2026, 11, 20 + i % 2, 15 + i // 2))
    dispatch()
    task = claimed(engine, acc)  # the seventh
    qd.record_disposition(engine, task.key, "agent-1", disposition, AT)
    later = DAY + dt.timedelta(days=2)
    for _ in iter_plan(engine, LADDER, later, 1000):
        pass
    planned = rows(engine, "SELECT state, reasons FROM contact WHERE channel = 'call' AND "
                           "plan_date = :d", d=later)
    assert planned == [(next_state, "us_reg_f.call_frequency_7in7" if next_state == "deferred"
                        else "")]


def test_bad_dispositions_are_refused_and_change_nothing(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    mine, waiting = caller(engine, balance="9000.00"), caller(engine)
    dispatch()
    task = claimed(engine, mine)
    queued_key = task_of(engine, waiting["account_id"])["key"]
    before = snapshot(engine)
    bad: list[tuple[dict[str, Any], int, str]] = [
        ({"disposition": "hung_up"}, 422, "unknown_disposition"),
        ({"disposition": "promise_to_pay", "promise_date": DAY}, 422, "promise_incomplete"),
        ({"disposition": "promise_to_pay", "promise_amount": "10"}, 422, "promise_incomplete"),
        ({"disposition": "promise_to_pay", "promise_amount": "-5", "promise_date": DAY}, 422,
         "promise_amount"),
        ({"disposition": "promise_to_pay", "promise_amount": "5",
          "promise_date": DAY - dt.timedelta(days=1)}, 422, "promise_date"),
        ({"disposition": "no_answer", "promise_amount": "5"}, 422, "unexpected_promise"),
        ({"disposition": "no_answer", "agent": "agent-2"}, 409, "not_your_task"),
        ({"disposition": "no_answer", "key": queued_key}, 409, "not_your_task"),
        ({"disposition": "no_answer", "key": "0" * 32}, 404, "not_found"),
    ]
    for args, status, code in bad:
        args = {"key": task.key, "agent": "agent-1", **args}
        with pytest.raises(qd.DispositionError) as err:
            qd.record_disposition(engine, args.pop("key"), args.pop("agent"),
                                 args.pop("disposition"), AT, **args)
        assert (err.value.status, err.value.code) == (status, code), args
        assert snapshot(engine) == before
    qd.record_disposition(engine, task.key, "agent-1", "no_answer", AT)
    after = snapshot(engine)
    with pytest.raises(qd.DispositionError) as err:
        qd.record_disposition(engine, task.key, "agent-1", "busy", AT)
    assert (err.value.status, err.value.code) == (409, "already_done")
    assert snapshot(engine) == after


def test_a_replayed_disposition_changes_nothing(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    acc = caller(engine)
    dispatch()
    task = claimed(engine, acc)
    terms: dict[str, Any] = {"promise_amount": "120.00", "promise_date": DAY + dt.timedelta(days=3)}
    first = qd.record_disposition(engine, task.key, "agent-1", "promise_to_pay", AT, **terms)
    after = snapshot(engine)
    later = AT + dt.timedelta(minutes=5)
    again = qd.record_disposition(engine, task.key, "agent-1", "promise_to_pay", later, **terms)
    assert (first["status"], again["status"]) == ("recorded", "already_recorded")
    assert snapshot(engine) == after
    with pytest.raises(qd.DispositionError, match="another promise"):
        qd.record_disposition(engine, task.key, "agent-1", "promise_to_pay", later,
                             promise_amount="99.00", promise_date=DAY + dt.timedelta(days=3))
    assert snapshot(engine) == after


# --- Leases, expiry, refresh ------------------------------------------------------------------


def test_a_stale_claim_is_queued_again_and_its_lost_call_still_counts(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    acc = caller(engine)
    dispatch()
    task = claimed(engine, acc, "agent-1")
    assert qu.requeue_stale(engine, AT + dt.timedelta(minutes=29)) == 0
    assert qu.requeue_stale(engine, AT + dt.timedelta(minutes=30)) == 1
    again = q.claim_next(engine, "agent-2", AT + dt.timedelta(minutes=31))
    assert again is not None and again.key == task.key
    # agent-1 may have dialled: that attempt stays counted besides agent-2's call.
    events = rows(engine, "SELECT event_ref, outcome FROM contact_event WHERE ledger_key = :k "
                          "ORDER BY event_ref", k=task.key)
    assert [e[1] for e in events] == ["attempted", "attempted"]
    with pytest.raises(qd.DispositionError, match="not claimed by this agent"):
        qd.record_disposition(engine, task.key, "agent-1", "no_answer", AT)
    qd.record_disposition(engine, task.key, "agent-2", "voicemail", AT + dt.timedelta(minutes=35))
    assert sorted(rows(engine, "SELECT outcome FROM contact_event WHERE ledger_key = :k",
                       k=task.key)) == [("attempted",), ("voicemail",)]


def test_refresh_expires_closed_windows_requeues_stale_claims_and_withdraws_stopped_tasks(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    stale = caller(engine, balance="9000.00")
    disputed = caller(engine, balance="5000.00")
    waiting = caller(engine)
    dispatch()
    claimed(engine, stale)
    f.add_hold(engine, disputed["account_id"], "dispute", DAY)
    first = qu.refresh_call_queue(engine, DAY, AT + dt.timedelta(minutes=45))
    assert {k: first[k] for k in ("expired", "requeued", "withdrawn", "rescheduled")} == {
        "expired": 0, "requeued": 1, "withdrawn": 1, "rescheduled": 0}
    assert first["by_state"] == {"queued": 2, "claimed": 0, "done": 0, "withdrawn": 1,
                                 "expired": 0}
    assert "us_reg_f.dispute_in_validation_period" in task_of(
        engine, disputed["account_id"])["reasons"]
    closed = qu.refresh_call_queue(engine, DAY, WINDOW[1])
    assert closed["expired"] == 2 and closed["by_state"]["expired"] == 2
    keys = {a["account_id"]: task_of(engine, a["account_id"])["key"] for a in (stale, waiting)}
    # The call handed out once may have been made; the one never handed out was not.
    assert rows(engine, "SELECT COUNT(*) FROM contact_event WHERE ledger_key = :k",
                k=keys[stale["account_id"]]) == [(1,)]
    assert rows(engine, "SELECT COUNT(*) FROM contact_event WHERE ledger_key = :k",
                k=keys[waiting["account_id"]]) == [(0,)]
    assert rows(engine, "SELECT outcome FROM contact WHERE key = :k",
                k=keys[waiting["account_id"]]) == [("expired",)]


# --- The API ----------------------------------------------------------------------------------


def client(engine: Engine, *dependencies: Any) -> TestClient:
    app = FastAPI()
    app.include_router(build_router(lambda: engine, dependencies, clock=lambda: AT))
    return TestClient(app)


def test_agents_claim_and_record_through_the_api(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    acc = caller(engine, phones=[{"value": "+12125550123", "zones": "America/New_York"}])
    dispatch()
    api = client(engine)
    got = api.post("/agent/tasks/claim", json={"agent": "agent-1"})
    assert got.status_code == 200
    body = got.json()
    assert body == {"key": task_of(engine, acc["account_id"])["key"],
                    "account_ref": acc["account_ref"], "phone": "+1******0123",
                    "dial": "+12125550123", "priority": 50,
                    "due_start": "2026-11-23T13:00:00Z", "due_end": "2026-11-24T02:00:00Z",
                    "stage": "collections_call", "action": "agent_call"}
    assert api.post("/agent/tasks/claim", json={"agent": "agent-2"}).status_code == 204
    more = api.post("/agent/tasks/claim", json={"agent": "agent-1"})  # one open call at a time
    assert more.status_code == 409 and more.json()["code"] == "too_many_open_tasks"
    assert more.json()["open"] == [body["key"]] and "+1212" not in more.text
    path = f"/agent/tasks/{body['key']}/disposition"
    unknown = api.post(path, json={"agent": "agent-1", "disposition": "hung_up"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_disposition"
    theirs = api.post(path, json={"agent": "agent-2", "disposition": "no_answer"})
    assert theirs.status_code == 409 and theirs.json()["code"] == "not_your_task"
    assert api.post(path, json={"disposition": "no_answer"}).status_code == 422
    ok = api.post(path, json={"agent": "agent-1", "disposition": "promise_to_pay",
                              "promise_amount": "60.00", "promise_date": "2026-11-30"})
    assert ok.status_code == 200 and ok.json()["status"] == "recorded"
    assert "60" not in ok.text  # the reply carries no amounts
    replay = api.post(path, json={"agent": "agent-1", "disposition": "promise_to_pay",
                                  "promise_amount": "60.00", "promise_date": "2026-11-30"})
    assert replay.status_code == 200 and replay.json()["status"] == "already_recorded"
    assert api.post("/agent/tasks/nokey/disposition",
                    json={"agent": "agent-1", "disposition": "busy"}).status_code == 404


def test_the_router_runs_the_dependencies_it_is_mounted_behind(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    caller(engine)
    dispatch()

    def deny() -> None:
        raise HTTPException(status_code=401, detail="log in")

    api = client(engine, Depends(deny))
    assert api.post("/agent/tasks/claim", json={"agent": "agent-1"}).status_code == 401
    assert rows(engine, "SELECT state FROM call_task") == [("queued",)]


def test_a_call_due_at_a_time_the_consumer_said_is_inconvenient_waits_until_it_ends(
        engine: Engine, dispatch: Callable[..., DispatchCounts]) -> None:
    acc = caller(engine, inconvenient_times="mon 09:00-10:00")  # 14:00-15:00 UTC today
    dispatch()
    assert q.claim_next(engine, "agent-1", AT) is None
    task = task_of(engine, acc["account_id"])
    assert (task["state"], str(task["due_start"])[:19]) == ("queued", "2026-11-23 15:00:00")
    assert rows(engine, "SELECT verdict, reasons FROM policy_decision WHERE contact_key = :k "
                        "ORDER BY id DESC LIMIT 1", k=task["key"]) == [
        ("defer", "us_reg_f.consumer_inconvenient_time")]
    later = q.claim_next(engine, "agent-1", dt.datetime(2026, 11, 23, 15, 0))
    assert later is not None and later.key == task["key"]


def test_broken_promises_are_counted_per_account_for_a_whole_group(engine: Engine) -> None:
    broken, kept, marked, none = (f.add_account(engine, as_of=DAY, dpd=20)["account_id"]
                                  for _ in range(4))  # fmt: skip
    made = dt.datetime(2026, 11, 1, 15)
    with engine.begin() as conn:
        for account_id, due, status in ((broken, dt.date(2026, 11, 10), "open"),
                                        (kept, dt.date(2026, 11, 10), "open"),
                                        (marked, dt.date(2026, 11, 30), "broken"),
                                        (none, dt.date(2026, 11, 30), "open")):  # fmt: skip
            conn.execute(text(
                "INSERT INTO promise (account_id, amount, due_on, recorded_at, source, status) "
                "VALUES (:a, 50, :d, :m, 'agent', :s)"), {"a": account_id, "d": due, "m": made,
                                                          "s": status})  # fmt: skip
    f.add_payment(engine, kept, dt.date(2026, 11, 8), "50.00")
    with engine.connect() as conn:
        counts = qh.broken_promises(conn, [broken, kept, marked, none], DAY)
    # Past due and unpaid, or marked broken; a paid one is kept; one not yet due is not broken.
    assert counts == {broken: 1, marked: 1}
