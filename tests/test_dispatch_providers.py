"""Dispatch through the official Twilio and SendGrid SDKs, over HTTP, to our fake servers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from contact_channels.registry import build_channel
from contact_channels.retry import RetryPolicy
from fakes.http import Fault
from fakes.sendgrid_server import FakeSendGrid
from fakes.twilio_server import FakeTwilio
from outreach.dispatcher import dispatch_range
from outreach.ladder import load_ladder
from outreach.planner import iter_plan
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
        assert {b["custom_args"]["ledger_key"] for b in bodies} == keys
        assert all("asm" in b for b in bodies)
