"""The shared send-rate limit: a token bucket that holds across threads, processes and machines."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import time
import uuid
from pathlib import Path

import pytest

from contact_channels.base import OutboundMessage, SendResult
from contact_channels.outbox import OutboxChannel, dispose_engine
from contact_channels.ratelimit import (
    FileTokenBucket,
    LocalTokenBucket,
    RateLimitedChannel,
    RedisTokenBucket,
    limiter_from_settings,
)
from contact_channels.registry import build_channel
from contact_channels.sms_segments import sms_segments
from contact_channels.twilio_sms import TwilioSmsChannel
from fakes.twilio_server import FakeTwilio
from outreach.dispatch.dispatcher import dispatch_range
from outreach.planning.ladder import load_ladder
from outreach.planning.planner import iter_plan
from outreach.settings import PROJECT_ROOT
from tests import factories as f


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_burst_goes_at_once_then_the_rate_holds() -> None:
    clock = FakeClock()
    bucket = LocalTokenBucket(rate=2.0, burst=3.0, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.5)  # the 4th waits for half a second's token
    assert bucket.acquire() == pytest.approx(0.5)
    clock.now += 10  # idle: the bucket refills to its burst, no further
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() > 0


def test_bad_settings_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"channels\.sms\.rate_limit\.per_second"):
        limiter_from_settings("sms", {"per_second": 0}, state_dir=tmp_path)
    with pytest.raises(ValueError, match=r"channels\.sms\.rate_limit\.burst"):
        limiter_from_settings("sms", {"per_second": 5, "burst": 0.5}, state_dir=tmp_path)
    with pytest.raises(ValueError, match=r"channels\.sms\.rate_limit\.store"):
        limiter_from_settings("sms", {"per_second": 5, "store": "memcached"}, state_dir=tmp_path)
    with pytest.raises(ValueError, match=r"channels\.email\.rate_limit\.per_minute: unknown"):
        limiter_from_settings("email", {"per_second": 5, "per_minute": 3}, state_dir=tmp_path)


def _take_many(kind: str, arg: str, key: str, n: int, rate: float) -> None:
    if kind == "file":
        bucket: FileTokenBucket | RedisTokenBucket = FileTokenBucket(Path(arg), rate, 1.0)
    else:
        import redis

        bucket = RedisTokenBucket(redis.Redis.from_url(arg), key, rate, 1.0)
    for _ in range(n):
        bucket.acquire()


def _two_workers(kind: str, arg: str, per_worker: int, rate: float) -> float:
    """Seconds two processes take to send ``per_worker`` each through one shared bucket."""
    key = f"outreach-test:{uuid.uuid4().hex}"
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_take_many, args=(kind, arg, key, per_worker, rate))
               for _ in range(2)]  # fmt: skip
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    return time.monotonic() - started


def test_file_bucket_holds_the_rate_across_processes(tmp_path: Path) -> None:
    # 2 x 30 sends at 40/s through one bucket need at least 59/40 s; each worker alone with a
    # bucket of its own would be done in 29/40 s.
    elapsed = _two_workers("file", str(tmp_path / "bucket.json"), 30, 40.0)
    assert elapsed >= 59 / 40 - 0.05


@pytest.mark.redis
def test_redis_bucket_holds_the_rate_across_processes() -> None:
    url = os.environ.get("OUTREACH_TEST_REDIS_URL")
    if not url:
        pytest.skip("OUTREACH_TEST_REDIS_URL is not set")
    elapsed = _two_workers("redis", url, 30, 40.0)
    assert elapsed >= 59 / 40 - 0.05


def test_limited_channel_takes_a_token_before_every_send(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    clock = FakeClock()
    bucket = LocalTokenBucket(rate=10.0, burst=1.0, clock=clock, sleep=clock.sleep)
    channel = RateLimitedChannel(OutboxChannel("sms", url), bucket)
    for i in range(4):
        channel.send(OutboundMessage(key=f"k{i}", channel="sms", destination="+14155550123",
                                     body_text="x"))  # fmt: skip
    assert channel.waited == pytest.approx(0.3)  # the 2nd, 3rd and 4th each waited 0.1 s
    assert channel.lookup("k3") is not None
    channel.close()
    dispose_engine(url)


def test_registry_puts_a_provider_behind_the_bucket_but_never_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    limited = {"rate_limit": {"per_second": 200, "burst": 20}}
    with FakeTwilio() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", fake.airflow_conn_json())
        sms = build_channel("sms", {"backend": "twilio", **limited}, outbox_url=url,
                            state_dir=tmp_path)  # fmt: skip
        assert isinstance(sms, RateLimitedChannel) and isinstance(sms.channel, TwilioSmsChannel)
        assert isinstance(sms.limiter, FileTokenBucket)
        assert sms.limiter.path == tmp_path / "ratelimit-sms.json"
        sms.close()
    letter = build_channel("letter", limited, outbox_url=url, state_dir=tmp_path)
    assert isinstance(letter, OutboxChannel)
    dispose_engine(url)


def test_a_batch_takes_one_token_per_message_even_beyond_the_burst() -> None:
    clock = FakeClock()
    bucket = LocalTokenBucket(rate=10.0, burst=4.0, clock=clock, sleep=clock.sleep)
    assert bucket.acquire(4) == 0.0  # the full bucket
    # Ten more: taken four at a time (a bucket never holds more), at 10 a second.
    assert bucket.acquire(10) == pytest.approx(1.0)


class Batching:
    kind, backend, max_batch = "email", "sendgrid", 50

    def __init__(self) -> None:
        self.batches: list[int] = []

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        self.batches.append(len(messages))
        return [SendResult(provider_id=m.key) for m in messages]


def test_a_limited_channel_passes_batches_through_and_charges_each_message() -> None:
    clock = FakeClock()
    bucket = LocalTokenBucket(rate=100.0, burst=10.0, clock=clock, sleep=clock.sleep)
    inner = Batching()
    channel = RateLimitedChannel(inner, bucket)  # type: ignore[arg-type]
    assert channel.max_batch == 50
    messages = [OutboundMessage(key=f"k{i}", channel="email", destination="a@example.com",
                                body_text="x", subject="s") for i in range(30)]  # fmt: skip
    outcomes = channel.send_batch(messages)
    assert inner.batches == [30] and [o.provider_id for o in outcomes] == [m.key for m in messages]  # type: ignore[union-attr]
    assert channel.waited == pytest.approx(0.2)  # 10 from the bucket, 20 at 100 a second


# --- issue 13 item 7: Twilio counts its rate in segments ----------------------------------------


class Recording:
    """An SMS channel that only notes what it was given."""

    kind, backend = "sms", "twilio"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message.key)
        return SendResult(provider_id=message.key)


def _sms(key: str, body: str) -> OutboundMessage:
    return OutboundMessage(key=key, channel="sms", destination="+14155550123", body_text=body)


def test_an_sms_takes_one_token_per_segment_even_beyond_the_burst() -> None:
    clock = FakeClock()
    bucket = LocalTokenBucket(rate=10.0, burst=2.0, clock=clock, sleep=clock.sleep)
    inner = Recording()
    channel = RateLimitedChannel(inner, bucket)  # type: ignore[arg-type]
    assert sms_segments("a" * 700) == ("GSM-7", 5)
    channel.send(_sms("k1", "a" * 700))  # 5 segments through a bucket of 2: no deadlock
    assert inner.sent == ["k1"] and channel.waited == pytest.approx(0.3)  # 3 more at 10 a second
    channel.send(_sms("k2", "您" * 71))  # UCS-2: 2 segments
    assert channel.waited == pytest.approx(0.5)
    channel.send(_sms("k3", "Hi, reply STOP to opt out."))  # GSM-7: 1 segment
    assert channel.waited == pytest.approx(0.6)


def test_email_still_takes_one_token_per_message_whatever_its_length() -> None:
    clock = FakeClock()
    bucket = LocalTokenBucket(rate=10.0, burst=1.0, clock=clock, sleep=clock.sleep)
    inner = Batching()
    channel = RateLimitedChannel(inner, bucket)  # type: ignore[arg-type]
    long = [OutboundMessage(key=f"k{i}", channel="email", destination="a@example.com",
                            body_text="您" * 1000, subject="s") for i in range(3)]  # fmt: skip
    channel.send_batch(long)
    assert channel.waited == pytest.approx(0.2)


def test_long_chinese_sms_go_out_at_the_limit_divided_by_their_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 12 segments a second, 3 segments a message: 4 messages a second at Twilio, measured by
    # the fake's arrival times (one token a message would let 12 a second through).
    body = "您的账户已逾期，请尽快还款。回复TD退订" * 7
    assert sms_segments(body) == ("UCS-2", 3)
    with FakeTwilio() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", fake.airflow_conn_json())
        sms = build_channel(
            "sms",
            {"backend": "twilio", "rate_limit": {"per_second": 12, "burst": 3, "store": "local"}},
            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}",
            state_dir=tmp_path,
        )
        started = time.monotonic()  # the fake's clock too: it runs in this process
        try:
            for i in range(9):
                sms.send(_sms(f"k{i}", body))
        finally:
            sms.close()
        arrivals = [r.received_at - started for r in fake.sends()]
    assert len(arrivals) == 9
    # The first goes on the full bucket, the 8 others at 4 a second: the last arrives after 2 s.
    assert arrivals[-1] >= 8 * 3 / 12
    assert arrivals[-1] < 8 * 3 / 12 + 1.5  # and no later than a busy shared machine explains


def test_the_dispatcher_charges_each_chinese_sms_its_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A day's Chinese reminders dispatched through Twilio behind a bucket of 5 segments a
    # second: the bucket holds for all sender threads together, segment by segment.
    day = dt.date(2026, 11, 23)
    engine = f.database(f"sqlite:///{tmp_path / 'app.db'}")
    for i in range(6):
        f.add_account(engine, as_of=day, dpd=3, language="zh-CN", phones=[
            {"value": f"+1212555{200 + i:04d}", "zones": "America/New_York"}])  # fmt: skip
    for _ in iter_plan(engine, load_ladder(PROJECT_ROOT / "config/ladders/default.yaml"), day, 100):
        pass
    rate, burst = 5.0, 2.0
    with FakeTwilio() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_TWILIO_DEFAULT", fake.airflow_conn_json())
        sms = build_channel(
            "sms",
            {
                "backend": "twilio",
                "rate_limit": {"per_second": rate, "burst": burst, "store": "local"},
            },  # fmt: skip
            outbox_url=f"sqlite:///{tmp_path / 'outbox.db'}",
            state_dir=tmp_path,
        )
        started = time.monotonic()
        try:
            counts = dispatch_range(engine, day, "sms", 0, 10**9, clock="wall", channel_impl=sms,
                                    now=lambda: dt.datetime(2026, 11, 23, 15)).as_dict()  # fmt: skip
        finally:
            sms.close()
        sends = fake.sends()
    assert counts["sent"] == 6 and len(sends) == 6
    segments = [sms_segments(r.form["Body"]) for r in sends]
    assert all(enc == "UCS-2" and n >= 2 for enc, n in segments), segments
    total = sum(n for _, n in segments)
    # Every segment beyond the bucket's first fill waits for its token at 5 a second.
    assert max(r.received_at for r in sends) - started >= (total - burst) / rate
