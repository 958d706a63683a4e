"""The shared send-rate limit: a token bucket that holds across threads, processes and machines."""

from __future__ import annotations

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
from contact_channels.twilio_sms import TwilioSmsChannel
from fakes.twilio_server import FakeTwilio


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
