"""A fault matrix for the whole dispatch path: ledger -> dispatcher -> official Twilio / SendGrid
SDK -> real HTTP -> our fake provider servers on 127.0.0.1.

For every fault kind the ledger must end with each contact sent exactly once, or clearly
``failed`` / ``uncertain`` (or ``planned`` again while transient retries remain); no contact sent
twice, none lost, none left ``sending``; and a rerun of the dispatch resends nothing.

The fakes record every request, faulted ones included, with the fault applied. ``check_ledger``
replays that log per ledger key into the state the row must be in, so the assertions hold
whether each email goes in its own request or several go in one batched SendGrid request (a
fault then applies to the whole request). Email runs twice: one email per request
(``batch_size: 1``) and in batches of four personalizations (``batch_size: 4``). SMS faults target
one phone (``fail_destination``); email faults take the next requests (``fail_next``), whichever
emails those carry.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine, text

from contact_channels.registry import build_channel
from contact_channels.retry import RetryPolicy
from fakes.http import Fault, RecordedRequest
from fakes.sendgrid_server import FakeSendGrid
from fakes.twilio_server import FakeTwilio
from outreach.dispatch.dispatcher import dispatch_range
from outreach.dispatch.recording import MAX_TRANSIENT_ATTEMPTS
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
AT = dt.datetime(2026, 11, 23, 15)  # 10:00 in New York
FAST = RetryPolicy(max_attempts=3, initial_wait=0.0, max_wait=1.0, jitter=0.0, max_total=5.0)

ACCOUNTS = 16
PHONES = [f"+1212555{300 + i:04d}" for i in range(ACCOUNTS)]
EMAILS = [f"debtor{i:02d}@example.com" for i in range(ACCOUNTS)]
TARGET = 3  # the account whose SMS a targeted fault hits
CLIENT_TIMEOUT = 2.0  # seconds; generous, so only injected faults time out
SHORT_TIMEOUT = 0.5  # for the no-reply faults: the fake answers after 2 s
RETRY_AFTER = 1.0
# The fake Twilio only reads ?key= from the status callback URL; nothing ever calls it.
CALLBACK_URL = "https://status-callback.invalid/twilio"

PROVIDER = {"sms": "twilio", "email": "sendgrid"}
# Rig variants: channel kind and SendGrid batch size (connection extra ``batch_size``).
VARIANTS: dict[str, tuple[str, int | None]] = {
    "sms": ("sms", None),
    "email-single": ("email", 1),
    "email-batch": ("email", 4),
}
CONN_ENV = {"sms": "AIRFLOW_CONN_TWILIO_DEFAULT", "email": "AIRFLOW_CONN_SENDGRID_DEFAULT"}
Fake = FakeTwilio | FakeSendGrid

# What one request's outcome means (contact_channels/retry.py OUTCOMES, restated here so that a
# change to the table shows up as a failing test rather than a silently different oracle).
ACCEPTED, NO_REPLY, TRANSIENT, PERMANENT = "accepted", "no_reply", "transient", "permanent"


def outcome_of(fault: str | None) -> str:
    """The outcome of a request carrying the fault labelled ``fault`` (``Fault.label``)."""
    if fault is None or fault == "slow":
        return ACCEPTED
    if fault in ("reset", "timeout"):
        return NO_REPLY
    status = int(fault.split(":")[1])
    if status == 504:  # gateway timeout: the provider may have taken it
        return NO_REPLY
    if status in (408, 429) or 500 <= status <= 599:
        return TRANSIENT
    return PERMANENT


def reaches_the_provider(fault: str | None) -> bool:
    """Whether the fake keeps the message: a timed-out request is accepted, only too late."""
    return fault in (None, "slow", "timeout")


# -- requests as the fakes recorded them ---------------------------------------------------------


def request_keys(request: RecordedRequest) -> list[str]:
    """The ledger keys a send request carries: Twilio's ``?key=`` on the status callback, or
    SendGrid's ``custom_args.ledger_key`` per personalization (or for the whole mail)."""
    if request.form:
        callback = request.form.get("StatusCallback", "")
        return parse_qs(urlsplit(callback).query).get("key", [])[-1:]
    mail: dict[str, Any] = request.json if isinstance(request.json, dict) else {}
    keys = []
    for p in mail.get("personalizations", []):
        args = {**mail.get("custom_args", {}), **p.get("custom_args", {})}
        if "ledger_key" in args:
            keys.append(str(args["ledger_key"]))
    return keys


def history(fake: Fake) -> dict[str, list[RecordedRequest]]:
    """Every send request that carried each ledger key, in arrival order."""
    out: dict[str, list[RecordedRequest]] = {}
    for request in fake.sends():
        for key in request_keys(request):
            out.setdefault(key, []).append(request)
    return out


def faulted_keys(fake: Fake) -> set[str]:
    return {k for r in fake.sends() if r.fault is not None for k in request_keys(r)}


def delivered_to(fake: Fake) -> list[str]:
    """Every destination an accepted message went to, with repeats."""
    if isinstance(fake, FakeTwilio):
        return [str(m["to"]) for m in fake.messages]
    return fake.recipients()


def wait_for_late_accepts(fake: Fake, within: float = 5.0) -> None:
    """A timed-out request is accepted by the fake only after its delay: wait for that, so the
    assertions see what the provider finally kept."""
    deadline = time.monotonic() + within
    while True:
        late = {k for r in fake.sends() if r.fault == "timeout" for k in request_keys(r)}
        if late <= set(fake.accepted_keys()):
            return
        if time.monotonic() > deadline:
            raise AssertionError("the fake never accepted the timed-out requests")
        time.sleep(0.05)


# -- the ledger ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    state: str
    attempts: int
    destination: str
    contact_point_id: int
    person_id: int
    valid: bool


def ledger(engine: Engine, kind: str) -> dict[str, Row]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.key, c.state, c.attempts, cp.value, cp.id, cp.person_id, cp.valid "
                "FROM contact c JOIN contact_point cp ON cp.id = c.contact_point_id "
                "WHERE c.channel = :kind"
            ),
            {"kind": kind},
        ).all()
    return {r[0]: Row(r[0], r[1], int(r[2] or 0), r[3], r[4], r[5], bool(r[6])) for r in rows}


def expected_state(row: Row, tries: list[RecordedRequest]) -> str:
    """The state the row must be in after these requests: the last one decides (the others
    were transient failures, or a refused batch before the email went alone)."""
    last = outcome_of(tries[-1].fault)
    if last == ACCEPTED:
        return "sent"
    if last == NO_REPLY:
        return "uncertain"
    if last == PERMANENT:
        return "failed"
    return "failed" if row.attempts >= MAX_TRANSIENT_ATTEMPTS else "planned"


def check_counts(counts: dict[str, int]) -> None:
    """Every claimed contact is accounted for in exactly one outcome counter."""
    settled = sum(
        counts[k] for k in ("sent", "failed", "retry_later", "uncertain", "suppressed", "deferred")
    )
    assert counts["claimed"] == settled, counts


class InFlight:
    """How many sender threads were inside the channel's send at once, at most."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth: Counter[int] = Counter()  # per thread: a batch's split calls send again
        self.peak = 0

    def wrap(self, send: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            me = threading.get_ident()
            with self._lock:
                self._depth[me] += 1
                self.peak = max(self.peak, sum(1 for d in self._depth.values() if d > 0))
            try:
                return send(*args, **kwargs)
            finally:
                with self._lock:
                    self._depth[me] -= 1

        return counted


@dataclass
class Rig:
    """One channel kind wired to its fake provider through the real SDK."""

    kind: str
    engine: Engine
    fake: Fake
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    batch_size: int | None = None
    total: int = 0
    real_sleep: bool = False
    sleeps: list[float] = field(default_factory=list)
    in_flight: InFlight = field(default_factory=InFlight)

    @property
    def destinations(self) -> list[str]:
        return PHONES if self.kind == "sms" else EMAILS

    def sleep(self, seconds: float) -> None:
        """The retry policy's sleep: recorded, and slept for real when ``real_sleep``."""
        self.sleeps.append(seconds)
        if self.real_sleep:
            time.sleep(seconds)

    def dispatch(
        self, *, timeout: float = CLIENT_TIMEOUT, concurrency: int | None = None
    ) -> dict[str, int]:
        extra: dict[str, Any] = {"timeout": timeout}
        if self.kind == "sms":
            extra["status_callback_url"] = CALLBACK_URL
        if self.batch_size is not None:
            extra["batch_size"] = self.batch_size
        self.monkeypatch.setenv(CONN_ENV[self.kind], self.fake.airflow_conn_json(**extra))
        channel = build_channel(
            self.kind,
            {"backend": "auto"},
            outbox_url=f"sqlite:///{self.tmp_path / 'outbox.db'}",
            retry_policy=FAST,
            sleep=self.sleep,
        )
        assert channel.backend == PROVIDER[self.kind]
        for name in ("send", "send_batch"):
            if hasattr(channel, name):
                setattr(channel, name, self.in_flight.wrap(getattr(channel, name)))
        try:
            counts = dispatch_range(
                self.engine,
                DAY,
                self.kind,
                0,
                10**9,
                clock="wall",
                channel_impl=channel,
                now=lambda: AT,
                concurrency=concurrency,
            ).as_dict()
        finally:
            channel.close()
        check_counts(counts)
        return counts

    def inject(self, fault: Fault, times: int = 1) -> None:
        """SMS: the next ``times`` sends to the target phone. Email: the next ``times`` send
        requests, whichever emails they carry (one, or a batch)."""
        if self.kind == "sms":
            self.fake.fail_destination(PHONES[TARGET], fault, times=times)
        else:
            self.fake.fail_next(*[fault] * times)

    def row_for(self, destination: str) -> Row:
        (row,) = [
            r for r in ledger(self.engine, self.kind).values() if r.destination == destination
        ]
        return row


def check_ledger(rig: Rig, allowed: set[str]) -> dict[str, Row]:
    """The invariants every fault must leave: returns the ledger rows by key."""
    rows = ledger(rig.engine, rig.kind)
    assert len(rows) == rig.total, "a contact row was lost or added"
    states = Counter(r.state for r in rows.values())
    assert states["sending"] == 0, f"left sending: {states}"
    assert set(states) <= allowed, f"states {dict(states)} not all in {sorted(allowed)}"

    accepted = rig.fake.accepted_keys()
    twice = sorted(k[:12] for k, n in Counter(accepted).items() if n > 1)
    assert not twice, f"sent twice: {twice}"
    assert set(accepted) <= rows.keys(), "the provider took a message the ledger does not know"
    for key in accepted:
        assert rows[key].state in ("sent", "uncertain"), rows[key]
    sent = {k for k, r in rows.items() if r.state == "sent"}
    assert states["sent"] == len({k for k in accepted if rows[k].state == "sent"})
    assert sent <= set(accepted), "a row is sent that the provider never took"
    recipients = Counter(delivered_to(rig.fake))
    assert not [d for d, n in recipients.items() if n > 1], "a destination got two messages"
    if isinstance(rig.fake, FakeTwilio):
        assert len(rig.fake.messages) == len(accepted), "an SMS went out without its ledger key"

    # Replay the provider's log per key: only a transient failure may be followed by a resend,
    # or a refused batch by the email alone (a refusal takes nothing, and says not which email
    # was at fault); never more tries than the policy allows per claim; the last try decides.
    tries_by_key = history(rig.fake)
    for key, row in rows.items():
        tries = tries_by_key.get(key, [])
        assert tries, f"{key[:12]} ({row.state}) never reached the provider"
        outcomes = [outcome_of(r.fault) for r in tries]
        splits = 0
        for before, after in zip(tries, tries[1:], strict=False):
            if outcome_of(before.fault) == TRANSIENT:
                continue
            refused_batch = outcome_of(before.fault) == PERMANENT and len(request_keys(before)) > 1
            assert refused_batch and request_keys(after) == [key], (
                f"{key[:12]} resent after {outcomes}"
            )
            splits += 1
        assert len(tries) <= FAST.max_attempts * (row.attempts + splits), (len(tries), row)
        assert row.state == expected_state(row, tries), (row, [r.fault for r in tries])
        kept = sum(reaches_the_provider(r.fault) for r in tries)
        assert accepted.count(key) == kept, (row, [r.fault for r in tries])
    return rows


def assert_retry_after_honoured(fake: Fake) -> int:
    """Every request answered 429 was retried no sooner than its Retry-After; returns how many
    429s there were."""
    limited = [r for r in fake.sends() if r.fault == "status:429"]
    tries_by_key = history(fake)
    for request in limited:
        for key in request_keys(request):
            tries = tries_by_key[key]
            later = tries[tries.index(request) + 1 :]
            if later:
                assert later[0].received_at - request.received_at >= RETRY_AFTER
    return len(limited)


def assert_rerun_sends_nothing(
    rig: Rig, allowed: set[str], *, timeout: float = CLIENT_TIMEOUT
) -> None:
    requests, accepted = len(rig.fake.sends()), rig.fake.accepted_keys()
    counts = rig.dispatch(timeout=timeout)
    assert counts["claimed"] == 0 and counts["sent"] == 0, counts
    assert len(rig.fake.sends()) == requests, "the rerun sent requests"
    assert rig.fake.accepted_keys() == accepted
    check_ledger(rig, allowed)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = f.database(f"sqlite:///{tmp_path / 'app.db'}")
    for phone, email in zip(PHONES, EMAILS, strict=True):
        f.add_account(
            engine,
            as_of=DAY,
            dpd=3,
            phones=[{"value": phone, "zones": "America/New_York"}],
            emails=[email],
        )
    for _ in iter_plan(engine, load_ladder(PROJECT_ROOT / "config/ladders/default.yaml"), DAY, 100):
        pass
    return engine


@pytest.fixture(params=list(VARIANTS))
def rig(
    request: pytest.FixtureRequest, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    kind, batch_size = VARIANTS[request.param]
    with FakeTwilio() if kind == "sms" else FakeSendGrid() as fake:
        rig = Rig(kind, engine, fake, tmp_path, monkeypatch, batch_size=batch_size)
        rows = ledger(engine, kind)
        assert len(rows) == ACCOUNTS and {r.state for r in rows.values()} == {"planned"}
        rig.total = len(rows)
        yield rig


sms_only = pytest.mark.parametrize("rig", ["sms"], indirect=True)
email_only = pytest.mark.parametrize("rig", ["email-single", "email-batch"], indirect=True)


# -- the matrix ----------------------------------------------------------------------------------


def test_rate_limit_is_retried_no_sooner_than_retry_after_and_sent_once(rig: Rig) -> None:
    rig.real_sleep = True
    rig.inject(Fault.rate_limited(retry_after=RETRY_AFTER))
    counts = rig.dispatch()
    assert counts["sent"] == ACCOUNTS
    check_ledger(rig, {"sent"})

    limited = [r for r in rig.fake.sends() if r.fault == "status:429"]
    assert len(limited) == 1
    if rig.kind == "sms":
        assert limited[0].destination == PHONES[TARGET]
    tries_by_key = history(rig.fake)
    for key in request_keys(limited[0]):
        tries = tries_by_key[key]
        assert len(tries) == 2 and tries[1].fault is None  # retried once, then accepted
    assert assert_retry_after_honoured(rig.fake) == 1
    assert len(rig.sleeps) == 1 and rig.sleeps[0] >= RETRY_AFTER  # the wait honoured the header

    assert_rerun_sends_nothing(rig, {"sent"})


def test_retry_after_beyond_the_policy_cap_gives_the_contact_back_without_an_early_resend(
    rig: Rig,
) -> None:
    # FAST.max_wait is 1 s: a provider asking for 5 s ends this run's tries for that message.
    rig.inject(Fault.rate_limited(retry_after=5.0))
    counts = rig.dispatch()
    rows = check_ledger(rig, {"sent", "planned"})

    waiting = faulted_keys(rig.fake)
    assert waiting
    assert {k for k, r in rows.items() if r.state == "planned"} == waiting
    assert counts["retry_later"] == len(waiting) and counts["sent"] == ACCOUNTS - len(waiting)
    assert rig.sleeps == []  # it did not wait, and did not resend in this run
    tries_by_key = history(rig.fake)
    assert all(len(tries_by_key[k]) == 1 for k in waiting)

    # The next run (an hour later in production) sends it, once.
    counts = rig.dispatch()
    assert counts["sent"] == len(waiting) and counts["claimed"] == len(waiting)
    check_ledger(rig, {"sent"})
    assert_rerun_sends_nothing(rig, {"sent"})


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_and_each_contact_sent_once(rig: Rig, status: int) -> None:
    rig.inject(Fault.server_error(status), times=2)
    counts = rig.dispatch()
    assert counts["sent"] == ACCOUNTS and counts["failed"] == counts["uncertain"] == 0
    check_ledger(rig, {"sent"})

    faulted = [r for r in rig.fake.sends() if r.fault is not None]
    assert [r.fault for r in faulted] == [f"status:{status}"] * 2
    if rig.kind == "sms":
        assert len(rig.fake.sends(PHONES[TARGET])) == 3  # two errors, then accepted
    # Every request but the two faulted ones was accepted: no spare sends.
    accepted_requests = [r for r in rig.fake.sends() if r.fault is None]
    assert sum(len(request_keys(r)) for r in accepted_requests) == ACCOUNTS

    assert_rerun_sends_nothing(rig, {"sent"})


def test_connection_reset_leaves_the_contact_uncertain_and_never_resends_it(rig: Rig) -> None:
    rig.inject(Fault.reset())
    counts = rig.dispatch()
    rows = check_ledger(rig, {"sent", "uncertain"})

    lost = faulted_keys(rig.fake)
    assert lost
    if rig.kind == "sms":
        assert lost == {rig.row_for(PHONES[TARGET]).key}
    assert {k for k, r in rows.items() if r.state == "uncertain"} == lost
    assert counts["uncertain"] == len(lost) and counts["sent"] == ACCOUNTS - len(lost)
    assert not lost & set(rig.fake.accepted_keys())
    tries_by_key = history(rig.fake)
    assert all(len(tries_by_key[k]) == 1 for k in lost)  # no retry after the reset

    assert_rerun_sends_nothing(rig, {"sent", "uncertain"})
    assert_rerun_sends_nothing(rig, {"sent", "uncertain"})


def test_timeout_after_the_request_arrived_is_uncertain_and_never_resent(rig: Rig) -> None:
    rig.inject(Fault.timeout(2.0))
    counts = rig.dispatch(timeout=SHORT_TIMEOUT)
    wait_for_late_accepts(rig.fake)
    rows = check_ledger(rig, {"sent", "uncertain"})

    late = faulted_keys(rig.fake)
    assert late
    if rig.kind == "sms":
        assert late == {rig.row_for(PHONES[TARGET]).key}
    assert {k for k, r in rows.items() if r.state == "uncertain"} == late
    assert counts["uncertain"] == len(late) and counts["sent"] == ACCOUNTS - len(late)
    # The provider did take it, only too late to say so: a resend would be a duplicate.
    assert late <= set(rig.fake.accepted_keys())
    tries_by_key = history(rig.fake)
    assert all(len(tries_by_key[k]) == 1 for k in late)

    assert_rerun_sends_nothing(rig, {"sent", "uncertain"}, timeout=SHORT_TIMEOUT)


def test_slow_replies_within_the_client_timeout_are_sent_once(rig: Rig) -> None:
    if rig.kind == "sms":
        for phone in PHONES[:3]:
            rig.fake.fail_destination(phone, Fault.slow(0.3), times=1)
    else:
        rig.fake.fail_next(*[Fault.slow(0.3)] * 3)
    counts = rig.dispatch(timeout=CLIENT_TIMEOUT)
    assert counts["sent"] == ACCOUNTS
    check_ledger(rig, {"sent"})
    slowed = [r.fault for r in rig.fake.sends() if r.fault]
    assert slowed == ["slow"] * min(3, len(rig.fake.sends()))
    assert rig.sleeps == []  # a slow reply is a reply: nothing was retried
    # One request per message (or batch) and no more.
    assert sum(len(request_keys(r)) for r in rig.fake.sends()) == ACCOUNTS

    assert_rerun_sends_nothing(rig, {"sent"})


@sms_only
def test_twilio_21610_fails_the_sms_records_an_opt_out_and_is_not_retried(rig: Rig) -> None:
    # On every try, so a retry would show up as a second request.
    rig.fake.fail_destination(PHONES[TARGET], Fault.provider_error(21610))
    counts = rig.dispatch()
    assert counts["failed"] == 1 and counts["sent"] == ACCOUNTS - 1
    check_ledger(rig, {"sent", "failed"})

    target = rig.row_for(PHONES[TARGET])
    assert target.state == "failed"
    assert len(rig.fake.sends(PHONES[TARGET])) == 1
    assert rig.sleeps == []
    with rig.engine.connect() as conn:
        opt_outs = conn.execute(
            text("SELECT channel, scope FROM opt_out WHERE person_id = :p"),
            {"p": target.person_id},
        ).all()
        opted_out_elsewhere = conn.execute(
            text("SELECT count(*) FROM opt_out WHERE person_id != :p"), {"p": target.person_id}
        ).scalar_one()
    assert [tuple(r) for r in opt_outs] == [("sms", str(target.contact_point_id))]
    assert opted_out_elsewhere == 0
    assert target.valid  # unsubscribed, not invalid

    assert_rerun_sends_nothing(rig, {"sent", "failed"})
    assert len(rig.fake.sends(PHONES[TARGET])) == 1


@sms_only
def test_twilio_21211_fails_the_sms_marks_the_number_invalid_and_is_not_retried(rig: Rig) -> None:
    rig.fake.fail_destination(PHONES[TARGET], Fault.provider_error(21211))
    counts = rig.dispatch()
    assert counts["failed"] == 1 and counts["sent"] == ACCOUNTS - 1
    check_ledger(rig, {"sent", "failed"})

    target = rig.row_for(PHONES[TARGET])
    assert target.state == "failed"
    assert not target.valid
    assert [r.valid for r in ledger(rig.engine, "sms").values()].count(False) == 1
    assert len(rig.fake.sends(PHONES[TARGET])) == 1
    assert rig.sleeps == []
    with rig.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM opt_out")).scalar_one() == 0

    assert_rerun_sends_nothing(rig, {"sent", "failed"})
    assert len(rig.fake.sends(PHONES[TARGET])) == 1


def carrying(fake: Fake, destination: str) -> list[RecordedRequest]:
    """The email send requests with ``destination`` among their recipients."""
    return [
        r
        for r in fake.sends()
        if any(t["email"] == destination for p in r.json["personalizations"] for t in p["to"])
    ]


@email_only
def test_sendgrid_400_fails_the_email_and_is_not_retried(rig: Rig) -> None:
    # On every request whose first recipient it is. The first account's email is the first one
    # due, so it goes alone or first in its batch; a refused batch is then sent one by one.
    refused = EMAILS[0]
    rig.fake.fail_destination(refused, Fault.http(400, message="Bad Request"))
    counts = rig.dispatch()
    rows = check_ledger(rig, {"sent", "failed"})

    assert rig.row_for(refused).state == "failed", "the fault never hit the first email due"
    assert {r.destination for r in rows.values() if r.state == "failed"} == {refused}
    assert counts["failed"] == 1 and counts["sent"] == ACCOUNTS - 1
    assert rig.sleeps == []
    # Exactly one request for the refused address on its own: that refusal was not retried.
    alone = [r for r in carrying(rig.fake, refused) if len(request_keys(r)) == 1]
    assert len(alone) == 1 and alone[0].fault == "status:400"
    # A refused batch (only ever the one led by the refused address) was sent one by one: each
    # of its other emails exactly once more, alone, and accepted.
    batches = [r for r in rig.fake.sends() if len(request_keys(r)) > 1 and r.fault]
    assert all(r.destination == refused for r in batches)
    assert len(carrying(rig.fake, refused)) == 1 + len(batches)
    for batch in batches:
        for p in batch.json["personalizations"][1:]:
            (again,) = [r for r in carrying(rig.fake, p["to"][0]["email"]) if r is not batch]
            assert len(request_keys(again)) == 1 and again.fault is None
    assert all(r.valid for r in rows.values())  # a bad request says nothing of the address

    assert_rerun_sends_nothing(rig, {"sent", "failed"})
    assert len(carrying(rig.fake, refused)) == 1 + len(batches)


def test_transient_error_on_every_try_returns_the_contact_to_planned_then_fails_it(
    rig: Rig,
) -> None:
    if rig.kind == "sms":
        rig.fake.fail_destination(PHONES[TARGET], Fault.server_error(503))  # every try
    for run in range(1, MAX_TRANSIENT_ATTEMPTS + 1):
        if rig.kind == "email":
            # One sender, so these take every try of the first email (or batch) due.
            rig.fake.fail_next(*[Fault.server_error(503)] * FAST.max_attempts)
        counts = rig.dispatch(concurrency=1 if rig.kind == "email" else None)
        final = run == MAX_TRANSIENT_ATTEMPTS
        state = "failed" if final else "planned"
        rows = check_ledger(rig, {"sent", state})

        doomed = faulted_keys(rig.fake)
        assert doomed
        if rig.kind == "sms":
            assert doomed == {rig.row_for(PHONES[TARGET]).key}
        assert {k for k, r in rows.items() if r.state == state} == doomed
        assert all(rows[k].attempts == run for k in doomed)
        tries_by_key = history(rig.fake)
        assert all(len(tries_by_key[k]) == FAST.max_attempts * run for k in doomed)
        assert not doomed & set(rig.fake.accepted_keys())
        assert counts["sent"] == (ACCOUNTS - len(doomed) if run == 1 else 0)
        assert counts["failed" if final else "retry_later"] == len(doomed)

    assert_rerun_sends_nothing(rig, {"sent", "failed"})


def mixed_faults(kind: str) -> dict[int, tuple[Fault, int | None, str]]:
    """Account index -> (fault on its destination, how many times (None: on every try), the
    state its contact must end in when each message goes in its own request). In batches of
    four, accounts 0, 4 and 8 lead the batches: a reset, a refusal (the batch is then sent one
    by one, each email meeting its own fault) and a timeout."""
    permanent = (
        {4: Fault.provider_error(21610), 5: Fault.provider_error(21211)}
        if kind == "sms"
        else {4: Fault.http(400), 5: Fault.http(403)}
    )
    return {
        0: (Fault.reset(), 1, "uncertain"),
        1: (Fault.server_error(503), 2, "sent"),
        2: (Fault.rate_limited(retry_after=RETRY_AFTER), 1, "sent"),
        3: (Fault.slow(0.2), 1, "sent"),
        4: (permanent[4], None, "failed"),
        5: (permanent[5], None, "failed"),
        6: (Fault.server_error(504), 1, "uncertain"),
        7: (Fault.server_error(500), None, "failed"),  # every try: failed after the last run
        8: (Fault.timeout(2.0), 1, "uncertain"),
        9: (Fault.server_error(500), 1, "sent"),
    }


def test_mixed_faults_under_eight_concurrent_senders_keep_every_contact_once(rig: Rig) -> None:
    mix = mixed_faults(rig.kind)
    for i, (fault, times, _) in mix.items():
        rig.fake.fail_destination(rig.destinations[i], fault, times=times)
    rig.real_sleep = True  # the 429 waits out its Retry-After in its own sender thread
    allowed = {"sent", "failed", "uncertain", "planned"}

    for _run in range(MAX_TRANSIENT_ATTEMPTS):
        rig.dispatch(timeout=SHORT_TIMEOUT, concurrency=8)
        wait_for_late_accepts(rig.fake)
        check_ledger(rig, allowed)
    rows = check_ledger(rig, {"sent", "failed", "uncertain"})
    by_destination = {r.destination: r for r in rows.values()}
    assert_retry_after_honoured(rig.fake)

    assert rig.in_flight.peak >= 2, "the sends never overlapped"

    # With one message per request (always for SMS), each destination's own fault decides its
    # contact's fate; batched emails are held to the replay in check_ledger.
    if all(len(request_keys(r)) == 1 for r in rig.fake.sends()):
        for i, destination in enumerate(rig.destinations):
            expected = mix[i][2] if i in mix else "sent"
            assert by_destination[destination].state == expected, (i, mix.get(i))
        assert (
            len(rig.fake.sends(rig.destinations[7])) == FAST.max_attempts * MAX_TRANSIENT_ATTEMPTS
        )
        for i in (0, 4, 5, 6, 8):  # no reply or refused: one request, never another
            assert len(rig.fake.sends(rig.destinations[i])) == 1, i
        assert max(rig.sleeps) == RETRY_AFTER  # this sender's own Retry-After, not another's
    # Refused on its own, whether first sent alone or in a refused batch.
    assert by_destination[rig.destinations[4]].state == "failed"
    assert by_destination[rig.destinations[5]].state == "failed"
    if rig.kind == "sms":
        assert not by_destination[PHONES[5]].valid
        assert by_destination[PHONES[4]].valid
        with rig.engine.connect() as conn:
            opt_outs = conn.execute(text("SELECT person_id, channel, scope FROM opt_out")).all()
        opted = by_destination[PHONES[4]]
        assert [tuple(r) for r in opt_outs] == [
            (opted.person_id, "sms", str(opted.contact_point_id))
        ]

    assert_rerun_sends_nothing(rig, {"sent", "failed", "uncertain"}, timeout=SHORT_TIMEOUT)
