"""Pick and build the adapter for a channel kind from its ``config/channels.yaml`` settings."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from contact_channels.base import CHANNEL_KINDS, Channel
from contact_channels.credentials import get_connection
from contact_channels.outbox import OutboxChannel
from contact_channels.ratelimit import RateLimitedChannel, limiter_from_settings
from contact_channels.retry import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = (
    "auto",
    "outbox",
    "twilio",
    "sendgrid",
    "agent_queue",
    "print",
    "agency_files",
    "counsel",
)

# Our own media for the people and paper channels: kind -> backend. Their adapters are
# outreach's (they write its tables), so this package cannot build them: the caller passes a
# builder per kind (``build_channel(media=...)``), called as ``builder(settings,
# database_url=..., data_dir=...)`` with the kind's section of channels.yaml (a drop location,
# the mail house, the firms).
LOCAL_MEDIA: Mapping[str, str] = {
    "call": "agent_queue",
    "letter": "print",
    "agency": "agency_files",
    "legal": "counsel",
}

# Which provider backend serves a kind, and its default connection id.
PROVIDER_FOR_KIND: Mapping[str, tuple[str, str]] = {
    "sms": ("twilio", "twilio_default"),
    "email": ("sendgrid", "sendgrid_default"),
}


def build_channel(
    kind: str,
    settings: Mapping[str, object] | None,
    *,
    outbox_url: str,
    retry_policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    state_dir: Path | None = None,
    database_url: str | None = None,
    media: Mapping[str, Callable[..., Channel]] | None = None,
) -> Channel:
    """The adapter for ``kind`` according to ``settings`` (``backend``, ``conn_id``).

    ``backend: auto`` (the default) uses Twilio for ``sms`` and SendGrid for ``email`` when
    their Airflow connection exists, and the outbox otherwise; ``call``, ``letter``, ``agency``
    and ``legal`` use the outbox unless their medium (LOCAL_MEDIA) is named. ``outbox``,
    ``twilio``, ``sendgrid`` and the media force a backend; a forced provider whose connection
    is missing is an error, never a silent fallback. Other keys in ``settings`` are left to
    their owners.

    ``auto`` decides once, when the channel is built: in production name the provider
    explicitly so that a secrets backend outage fails the run instead of filling the outbox.

    ``rate_limit`` (``{per_second, burst, store}``) puts a provider channel behind a token
    bucket shared by every worker (``contact_channels.ratelimit``); ``store: file`` keeps it
    under ``state_dir``.

    ``media`` builds our own media by kind (outreach's channel-kind registry passes them); a
    kind whose backend is its own medium cannot be built without its builder.
    """
    if kind not in CHANNEL_KINDS:
        raise ValueError(
            f"unknown channel kind {kind!r}; expected one of {', '.join(CHANNEL_KINDS)}"
        )
    settings = settings or {}
    backend = str(settings.get("backend") or "auto")
    if backend not in BACKENDS:
        raise ValueError(
            f"channels.{kind}.backend: unknown backend {backend!r}; "
            f"expected one of {', '.join(BACKENDS)}"
        )
    provider, default_conn_id = PROVIDER_FOR_KIND.get(kind, (None, None))
    medium = LOCAL_MEDIA.get(kind)
    if backend not in ("auto", "outbox", provider, medium):
        raise ValueError(f"channels.{kind}.backend: {backend!r} cannot send {kind!r} messages")
    if backend == medium:
        builder = (media or {}).get(kind)
        if builder is None:
            raise ValueError(
                f"channels.{kind}.backend: {backend!r} is one of our own media: build it "
                "through outreach"
            )
        log.info("channel %s: %s", kind, medium)
        built: Channel = builder(settings, database_url=database_url, data_dir=state_dir)
        return built
    if backend == "outbox" or provider is None:
        return _outbox(kind, outbox_url, reason="configured" if backend == "outbox" else "default")

    conn_id = str(settings.get("conn_id") or default_conn_id)
    connection = get_connection(conn_id)
    if connection is None:
        if backend == "auto":
            return _outbox(kind, outbox_url, reason=f"no connection {conn_id!r}")
        raise ValueError(
            f"channels.{kind}.backend is {backend!r} but the Airflow connection {conn_id!r} "
            f"is not defined (set AIRFLOW_CONN_{conn_id.upper()} or add it in Airflow)"
        )

    channel: Channel
    if provider == "twilio":
        from contact_channels.twilio_sms import TwilioSmsChannel

        channel = TwilioSmsChannel(connection, retry_policy=retry_policy, sleep=sleep)
    else:
        from contact_channels.sendgrid_email import SendGridEmailChannel

        channel = SendGridEmailChannel(connection, retry_policy=retry_policy, sleep=sleep)
    log.info("channel %s: %s via connection %s", kind, provider, conn_id)
    rate_limit = settings.get("rate_limit")
    if rate_limit is not None:
        if not isinstance(rate_limit, Mapping):
            raise ValueError(f"channels.{kind}.rate_limit: must be a mapping")
        limiter = limiter_from_settings(
            kind, rate_limit, state_dir=state_dir, redis_client=_redis_client
        )
        return RateLimitedChannel(channel, limiter)
    return channel


def _redis_client() -> Any:
    """A Redis client from the Airflow connection ``redis_default`` (credentials stay there)."""
    import redis

    conn = get_connection("redis_default")
    if conn is None:
        raise ValueError(
            "a rate limit with store: redis needs the Airflow connection redis_default "
            "(for example AIRFLOW_CONN_REDIS_DEFAULT=redis://127.0.0.1:6379/0)"
        )
    return redis.Redis(
        host=conn.host or "127.0.0.1",
        port=conn.port or 6379,
        db=int(conn.schema or 0),
        password=conn.password,
        socket_timeout=5,
    )


def _outbox(kind: str, outbox_url: str, *, reason: str) -> Channel:
    log.info("channel %s: outbox (%s)", kind, reason)
    return OutboxChannel(kind, outbox_url)
