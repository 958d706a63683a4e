"""Dispatch through the official Twilio and SendGrid SDKs, over HTTP, to our fake servers."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from contact_channels.base import Channel, OutboundMessage, SendResult
from contact_channels.registry import build_channel
from contact_channels.retry import RetryPolicy
from fakes.http import Fault
from fakes.sendgrid_server import FakeSendGrid
from fakes.twilio_server import FakeTwilio
from outreach.dispatch.dispatcher import dispatch_range
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from tests import factories as f

DAY = dt.date(2026, 11, 23)
AT = dt.datetime(2026, 11, 23, 15)  # 10:00 in New York
FAST = RetryPolicy(max_attempts=3, initial_wait=0.0, max_wait=1.0, jitter=0.0, max_total=5.0)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = f.database(f"sqlite:///{tmp_path / 'app.db'}")
    for i in range(4):
        f.add_account(engine, as_of=DAY, dpd=3, phones=[
            {"value": f"+1212555{100 + i:04d}", "zones": "America/New_York"}])
    for _ in iter_plan(engine, load_ladder(PROJECT_ROOT / "config/ladders/default.yaml"), DAY, 100):
        pass
    return engine


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", fake.airflow_conn_json(timeout=1.0))
        yield fake


def send_sms(engine: Engine, tmp_path: Path, sleeps: list[float]) -> dict[str, int]:
    channel = build_channel("sms", {"backend": "auto"}, outbox_url=f"sqlite:///{tmp_path}/o.db",
                            retry_policy=FAST, sleep=sleeps.append)
    assert channel.backend == "twilio"
    try:
        return dispatch_range(engine, DAY, "sms", 0, 10**9, clock="wall", channel_impl=channel,
                              now=lambda: AT).as_dict()
    finally:
        channel.close()


def sms_states(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT cp.value, c.state FROM contact c JOIN contact_point cp "
            "ON cp.id = c.contact_point_id WHERE c.channel = 'sms'")).all())


def test_sms_through_twilio_exactly_once_with_the_key_on_the_callback(
        engine: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    counts = send_sms(engine, tmp_path, [])
    assert counts["sent"] == 4 and len(twilio.sends()) == 4
    with engine.connect() as conn:
        keys = {r[0] for r in conn.execute(text("SELECT key FROM contact WHERE channel = 'sms'"))}
        sids = {r[0] for r in conn.execute(text("SELECT provider_id FROM contact "
                                                "WHERE channel = 'sms'"))}
    assert all(s.startswith("SM") for s in sids)
    assert len(keys) == 4
    assert send_sms(engine, tmp_path, [])["sent"] == 0  # the rerun sends nothing
    assert len(twilio.sends()) == 4


def test_permanent_twilio_error_is_not_retried(engine: Engine, twilio: FakeTwilio,
                                               tmp_path: Path) -> None:
    twilio.fail_destination("+12125550101", Fault.provider_error(21211))
    sleeps: list[float] = []
    counts = send_sms(engine, tmp_path, sleeps)
    assert counts["failed"] == 1 and counts["sent"] == 3
    assert len(twilio.sends("+12125550101")) == 1
    assert sms_states(engine)["+12125550101"] == "failed"
    send_sms(engine, tmp_path, sleeps)
    assert len(twilio.sends("+12125550101")) == 1


def test_server_errors_are_retried_and_sent_once(engine: Engine, twilio: FakeTwilio,
                                                 tmp_path: Path) -> None:
    twilio.fail_destination("+12125550102", Fault.server_error(503), times=2)
    counts = send_sms(engine, tmp_path, [])
    assert counts["sent"] == 4
    assert len(twilio.sends("+12125550102")) == 3  # two 503s, then accepted


def test_timeout_after_the_request_arrived_is_uncertain_and_never_resent(
        engine: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    twilio.fail_destination("+12125550103", Fault.timeout(3.0), times=1)
    counts = send_sms(engine, tmp_path, [])
    assert counts["uncertain"] == 1 and counts["sent"] == 3
    send_sms(engine, tmp_path, [])
    assert len(twilio.sends("+12125550103")) == 1
    assert sms_states(engine)["+12125550103"] == "uncertain"


def test_email_through_sendgrid_carries_the_ledger_key(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeSendGrid() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", fake.airflow_conn_json(timeout=1.0))
        channel = build_channel("email", {"backend": "auto"},
                                outbox_url=f"sqlite:///{tmp_path}/o.db", retry_policy=FAST)
        counts = dispatch_range(engine, DAY, "email", 0, 10**9, clock="wall",
                                channel_impl=channel, now=lambda: AT).as_dict()
        assert counts["sent"] == 4
        with engine.connect() as conn:
            keys = {r[0] for r in conn.execute(text("SELECT key FROM contact "
                                                    "WHERE channel = 'email'"))}
        bodies = [r.json for r in fake.sends()]
        assert len(bodies) == 1  # one request: a personalization per email
        assert sorted(fake.accepted_keys()) == sorted(keys)
        assert sorted(fake.recipients()) == sorted(
            p["to"][0]["email"] for p in bodies[0]["personalizations"])
        assert all("asm" in b for b in bodies)


# --- Concurrent sends -------------------------------------------------------------------------


@pytest.fixture
def many(tmp_path: Path) -> Engine:
    engine = f.database(f"sqlite:///{tmp_path / 'many.db'}")
    for i in range(40):
        f.add_account(engine, as_of=DAY, dpd=3, emails=[f"person{i}@example.com"], phones=[
            {"value": f"+1212555{200 + i:04d}", "zones": "America/New_York"}])
    for _ in iter_plan(engine, load_ladder(PROJECT_ROOT / "config/ladders/default.yaml"), DAY, 100):
        pass
    return engine


def ledger(engine: Engine, channel: str) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT key, state FROM contact WHERE channel = :c"),
                                 {"c": channel}).all())


def test_sms_are_sent_concurrently_and_each_exactly_once(
        many: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    twilio.fail_next(*[Fault.slow(0.2)] * 40)  # every reply takes 0.2 s
    channel = build_channel("sms", {"backend": "auto"}, outbox_url=f"sqlite:///{tmp_path}/o.db",
                            retry_policy=FAST)
    counts = dispatch_range(many, DAY, "sms", 0, 10**9, clock="wall", channel_impl=channel,
                            now=lambda: AT, concurrency=8)
    assert counts.sent == 40
    assert twilio.max_in_flight > 1  # the round trips overlapped
    keys = twilio.accepted_keys()
    assert len(keys) == len(set(keys)) == 40
    assert set(keys) == {k for k, s in ledger(many, "sms").items() if s == "sent"}
    dispatch_range(many, DAY, "sms", 0, 10**9, clock="wall", channel_impl=channel,
                   now=lambda: AT, concurrency=8)
    assert len(twilio.accepted_keys()) == 40  # a rerun sends nothing
    channel.close()


def test_emails_go_out_in_batches_each_exactly_once(
        many: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeSendGrid() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT",
                           fake.airflow_conn_json(timeout=1.0, batch_size=10))
        channel = build_channel("email", {"backend": "auto"},
                                outbox_url=f"sqlite:///{tmp_path}/o.db", retry_policy=FAST)
        counts = dispatch_range(many, DAY, "email", 0, 10**9, clock="wall", channel_impl=channel,
                                now=lambda: AT, concurrency=4)
        assert counts.sent == 40
        assert all(len(r.json["personalizations"]) <= 10 for r in fake.sends())
        assert len(fake.sends()) < 40
        keys = fake.accepted_keys()
        assert len(keys) == len(set(keys)) == 40
        assert set(keys) == set(ledger(many, "email"))


class BreaksOnTheTenthSend:
    """An adapter with a bug: its tenth send raises something no error class covers."""

    def __init__(self, inner: Channel) -> None:
        self.inner, self.kind, self.backend = inner, inner.kind, inner.backend
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendResult:
        with self._lock:
            self.calls.append(message.key)
            n = len(self.calls)
        if n == 10:
            raise RuntimeError("adapter bug")
        return self.inner.send(message)

    def lookup(self, key: str) -> SendResult | None:
        return None

    def close(self) -> None:
        pass


def test_an_adapter_bug_under_concurrency_stops_the_run_and_loses_nothing(
        many: Engine, twilio: FakeTwilio, tmp_path: Path) -> None:
    real = build_channel("sms", {"backend": "auto"}, outbox_url=f"sqlite:///{tmp_path}/o.db",
                         retry_policy=FAST)
    broken = BreaksOnTheTenthSend(real)
    with pytest.raises(RuntimeError, match="adapter bug"):
        dispatch_range(many, DAY, "sms", 0, 10**9, clock="wall", channel_impl=broken,
                       now=lambda: AT, concurrency=4)
    states = ledger(many, "sms")
    assert "sending" not in states.values()
    assert list(states.values()).count("uncertain") == 1  # the one the bug hit
    sent = {k for k, s in states.items() if s == "sent"}
    assert sent == set(twilio.accepted_keys())
    assert set(broken.calls) >= sent
    assert all(states[k] == "planned" for k in set(states) - set(broken.calls))  # released
    # The rerun sends what was released, once, and never the contact in doubt.
    dispatch_range(many, DAY, "sms", 0, 10**9, clock="wall", channel_impl=real,
                   now=lambda: AT, concurrency=4)
    keys = twilio.accepted_keys()
    assert len(keys) == len(set(keys)) == 39
    assert sorted(ledger(many, "sms").values()).count("sent") == 39
    real.close()
