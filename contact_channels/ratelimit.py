"""Per-provider send rate limits that hold across concurrent workers: one shared token bucket.

Airflow pools bound how many dispatch tasks run at once; the bucket bounds how fast they send
together. Every worker takes a token before each provider call:

- ``redis``: the bucket lives in Redis and is updated by one Lua script (atomic; Redis's own
  clock, so workers on several machines agree). For Celery or Kubernetes deployments.
- ``file``: the bucket is a small file under a lock (``fcntl``), for the workers of one machine
  (the embedded LocalExecutor set-up).
- ``local``: in this process only (threads), for tests and single-process runs.

A bucket of ``rate`` tokens a second holding at most ``burst`` tokens lets through ``burst``
at once, then ``rate`` a second. A token is a message, except for SMS: Twilio counts its
throughput in segments, so an SMS takes one token per segment (GSM-7 or UCS-2, as
``contact_channels.sms_segments`` counts them) and a three-part Chinese text three. Retry-After from a provider is honoured by the retry policy
(``contact_channels.retry``); the bucket keeps us from causing the 429 in the first place.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from contact_channels.base import Channel, ChannelError, OutboundMessage, SendResult
from contact_channels.sms_segments import sms_segments

# Longest single wait: a limiter never sleeps longer than this in one go, so a worker that is
# told to stop notices within a second.
MAX_SLEEP = 1.0
_EPSILON = 1e-9


class RateLimiter(Protocol):
    def acquire(self, count: int = 1) -> float:
        """Block until ``count`` sends are allowed; return the seconds waited."""
        ...


def _take(
    tokens: float, stamp: float, now: float, rate: float, burst: float, count: float = 1.0
) -> tuple[float, float]:
    """The bucket after refilling to ``now`` and taking ``count`` tokens: (tokens, wait).
    ``wait`` > 0 means nothing was taken; try again after that many seconds."""
    tokens = min(burst, tokens + max(0.0, now - stamp) * rate)
    if tokens >= count - _EPSILON:  # whole tokens, give or take float rounding of the refill
        return max(0.0, tokens - count), 0.0
    return tokens, (count - tokens) / rate


def _portions(count: int, burst: float) -> list[int]:
    """``count`` tokens in takes of at most ``burst`` (a bucket never holds more)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    most = max(1, int(burst))
    return [min(most, count - i) for i in range(0, count, most)]


@dataclass
class LocalTokenBucket:
    """A bucket shared by the threads of one process."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        _check(self.rate, self.burst)
        self._tokens = float(self.burst)
        self._stamp = self.clock()
        self._lock = threading.Lock()

    def acquire(self, count: int = 1) -> float:
        return sum(self._acquire(n) for n in _portions(count, self.burst))

    def _acquire(self, count: int) -> float:
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                self._tokens, wait = _take(
                    self._tokens, self._stamp, now, self.rate, self.burst, count
                )
                self._stamp = now
            if wait <= 0:
                return waited
            pause = min(wait, MAX_SLEEP)
            self.sleep(pause)
            waited += pause


@dataclass
class FileTokenBucket:
    """A bucket shared by the processes of one machine: its state is a file, updated under an
    exclusive lock. The wall clock is the shared clock."""

    path: Path
    rate: float
    burst: float
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        _check(self.rate, self.burst)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def acquire(self, count: int = 1) -> float:
        return sum(self._acquire(n) for n in _portions(count, self.burst))

    def _acquire(self, count: int) -> float:
        import fcntl

        waited = 0.0
        while True:
            with open(self.path, "a+", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    handle.seek(0)
                    try:
                        state = json.loads(handle.read() or "{}")
                    except json.JSONDecodeError:
                        state = {}
                    now = time.time()
                    tokens, wait = _take(
                        float(state.get("tokens", self.burst)),
                        float(state.get("stamp", now)),
                        now,
                        self.rate,
                        self.burst,
                        count,
                    )
                    handle.seek(0)
                    handle.truncate()
                    handle.write(json.dumps({"tokens": tokens, "stamp": now}))
                    handle.flush()
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            if wait <= 0:
                return waited
            pause = min(wait, MAX_SLEEP)
            self.sleep(pause)
            waited += pause


# KEYS[1]: the bucket's hash. ARGV: rate, burst, count. Returns the wait in microseconds
# (0: the count was taken).
_REDIS_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= count - 1e-9 then
  tokens = math.max(0, tokens - count)
else
  wait = (count - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return math.ceil(wait * 1000000)
"""


class RedisTokenBucket:
    """A bucket shared by every worker that reaches the same Redis (Celery, Kubernetes)."""

    def __init__(
        self,
        client: Any,
        key: str,
        rate: float,
        burst: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check(rate, burst)
        self.client, self.key, self.rate, self.burst, self.sleep = client, key, rate, burst, sleep
        self._script = client.register_script(_REDIS_TAKE)

    def acquire(self, count: int = 1) -> float:
        return sum(self._acquire(n) for n in _portions(count, self.burst))

    def _acquire(self, count: int) -> float:
        waited = 0.0
        while True:
            micros = int(self._script(keys=[self.key], args=[self.rate, self.burst, count]))
            if micros <= 0:
                return waited
            pause = min(micros / 1_000_000, MAX_SLEEP)
            self.sleep(pause)
            waited += pause


class RateLimitedChannel:
    """A channel whose every provider call first takes a token from a shared limiter."""

    def __init__(self, channel: Channel, limiter: RateLimiter) -> None:
        self.channel = channel
        self.limiter = limiter
        self.kind = channel.kind
        self.backend = channel.backend
        self.waited = 0.0  # seconds spent waiting for tokens, for the run's figures

    @property
    def max_batch(self) -> int:
        """Messages the inner channel sends in one request (1 when it cannot batch)."""
        return int(getattr(self.channel, "max_batch", 1) or 1)

    def tokens(self, message: OutboundMessage) -> int:
        """What one message costs: its segments for SMS (the unit Twilio's rate counts), else 1.
        A take larger than the burst is made in portions (``_portions``), so it never waits
        for a bucket fuller than it can be."""
        if self.kind == "sms":
            return sms_segments(message.body_text)[1]
        return 1

    def send(self, message: OutboundMessage) -> SendResult:
        self.waited += self.limiter.acquire(self.tokens(message))
        return self.channel.send(message)

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """Each message's tokens (see :meth:`tokens`), then the inner channel's batch send."""
        self.waited += self.limiter.acquire(sum(self.tokens(m) for m in messages))
        return list(self.channel.send_batch(messages))  # type: ignore[attr-defined]

    def lookup(self, key: str) -> SendResult | None:
        return self.channel.lookup(key)

    def close(self) -> None:
        self.channel.close()

    def __repr__(self) -> str:
        return f"RateLimitedChannel({self.channel!r}, {self.limiter!r})"


def _check(rate: float, burst: float) -> None:
    if not rate > 0:
        raise ValueError("rate must be above 0 messages a second")
    if not burst >= 1:
        raise ValueError("burst must be at least 1")


STORES = ("file", "redis", "local")


def limiter_from_settings(
    kind: str,
    settings: Mapping[str, Any],
    *,
    state_dir: Path | None,
    redis_client: Callable[[], Any] | None = None,
) -> RateLimiter:
    """The limiter a channel's ``rate_limit`` settings ask for; errors name the setting.

    ``{per_second: 200, burst: 50, store: file | redis | local}``: ``burst`` defaults to one
    second's worth; ``store`` to ``file`` (under ``state_dir``). ``redis`` takes its client from
    ``redis_client`` (the registry reads the Airflow connection ``redis_default``)."""
    where = f"channels.{kind}.rate_limit"
    rate = settings.get("per_second")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
        raise ValueError(f"{where}.per_second: must be a number above 0, not {rate!r}")
    burst = settings.get("burst", max(1, int(rate)))
    if isinstance(burst, bool) or not isinstance(burst, int | float) or burst < 1:
        raise ValueError(f"{where}.burst: must be a number of at least 1, not {burst!r}")
    store = settings.get("store", "file")
    unknown = sorted(set(settings) - {"per_second", "burst", "store"})
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown setting")
    if store == "local":
        return LocalTokenBucket(float(rate), float(burst))
    if store == "file":
        if state_dir is None:
            raise ValueError(f"{where}.store: 'file' needs a state directory")
        return FileTokenBucket(state_dir / f"ratelimit-{kind}.json", float(rate), float(burst))
    if store == "redis":
        if redis_client is None:
            raise ValueError(f"{where}.store: 'redis' needs the Airflow connection redis_default")
        prefix = os.environ.get("OUTREACH_RATELIMIT_PREFIX", "outreach:ratelimit")
        return RedisTokenBucket(redis_client(), f"{prefix}:{kind}", float(rate), float(burst))
    raise ValueError(f"{where}.store: must be one of {', '.join(STORES)}, not {store!r}")
