"""The default backend: records exactly what would be sent, in its own database, sending nothing.

Like Django's file and console email backends, it lets the demo run on a fresh machine. The key
is unique, so recording the same contact twice keeps one message (a provider idempotency key).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from contact_channels.base import (
    CHANNEL_KINDS,
    ChannelError,
    OutboundMessage,
    PermanentError,
    SendResult,
)

log = logging.getLogger(__name__)

_metadata = MetaData()

outbox_messages = Table(
    "outbox_messages",
    _metadata,
    Column("key", String(200), primary_key=True),
    Column("channel", String(16), nullable=False, index=True),
    Column("destination", Text, nullable=False),
    Column("subject", Text),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text),
    Column("tags", Text, nullable=False),
    Column("provider_id", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

STATUS = "recorded"

# One engine per database URL for the whole process: every OutboxChannel (one per channel kind)
# and every listing call shares its connection pool, and the table is created once.
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One recorded message, as it would have gone out."""

    key: str
    channel: str
    destination: str
    subject: str | None
    body_text: str
    body_html: str | None
    tags: Mapping[str, str]
    provider_id: str
    recorded_at: datetime


def provider_id_for(key: str) -> str:
    """The outbox's reference for a key: stable, so a repeated send returns the same result."""
    return f"outbox-{key[:16]}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the demo summary, tests) run while a dispatcher writes; NORMAL sync is
    # durable across process crashes in WAL mode and avoids an fsync per recorded message.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def get_engine(url: str) -> Engine:
    """The shared engine for ``url``, created with its table on first use."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        parsed = make_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        if is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True, hide_parameters=True)  # phones, emails
        if is_sqlite:
            event.listen(engine, "connect", _sqlite_pragmas)
        _metadata.create_all(engine, checkfirst=True)
        _engines[url] = engine
        return engine


def dispose_engine(url: str) -> None:
    """Close the pooled connections for ``url`` (tests, process shutdown)."""
    with _engines_lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def _insert_ignoring_duplicates(engine: Engine) -> Callable[[list[dict[str, Any]]], int]:
    """An insert of several rows in one transaction that keeps the first row for each key;
    returns how many rows this call stored."""
    dialect = engine.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert  # type: ignore[assignment]
        statement = dialect_insert(outbox_messages).on_conflict_do_nothing(index_elements=["key"])

        def upsert(rows: list[dict[str, Any]]) -> int:
            with engine.begin() as conn:
                # One statement per row, in one transaction: each row's own rowcount tells
                # whether it was new (an executemany's total is not reported by every driver).
                return sum(conn.execute(statement, row).rowcount == 1 for row in rows)

        return upsert

    plain = insert(outbox_messages)

    def insert_or_skip(rows: list[dict[str, Any]]) -> int:
        stored = 0
        with engine.begin() as conn:
            for row in rows:
                try:
                    with conn.begin_nested():
                        conn.execute(plain, row)
                except IntegrityError:
                    continue
                stored += 1
        return stored

    return insert_or_skip


def _to_record(row: Any) -> OutboxRecord:
    recorded_at = row.recorded_at
    if recorded_at.tzinfo is None:
        # SQLite stores no offset; we always write UTC.
        recorded_at = recorded_at.replace(tzinfo=UTC)
    return OutboxRecord(
        key=row.key,
        channel=row.channel,
        destination=row.destination,
        subject=row.subject,
        body_text=row.body_text,
        body_html=row.body_html,
        tags=json.loads(row.tags),
        provider_id=row.provider_id,
        recorded_at=recorded_at,
    )


def list_outbox(
    url: str, *, channel: str | None = None, limit: int | None = None
) -> list[OutboxRecord]:
    """Recorded messages ordered by time recorded (then key), optionally for one channel kind."""
    query = select(outbox_messages).order_by(outbox_messages.c.recorded_at, outbox_messages.c.key)
    if channel is not None:
        query = query.where(outbox_messages.c.channel == channel)
    if limit is not None:
        query = query.limit(limit)
    with get_engine(url).connect() as conn:
        return [_to_record(row) for row in conn.execute(query)]


def count_outbox(url: str, *, channel: str | None = None) -> int:
    """How many messages are recorded, optionally for one channel kind."""
    query = select(func.count()).select_from(outbox_messages)
    if channel is not None:
        query = query.where(outbox_messages.c.channel == channel)
    with get_engine(url).connect() as conn:
        return int(conn.execute(query).scalar_one())


def count_outbox_by_channel(url: str) -> dict[str, int]:
    """Recorded messages per channel kind (for the demo summary)."""
    query = select(outbox_messages.c.channel, func.count()).group_by(outbox_messages.c.channel)
    with get_engine(url).connect() as conn:
        return {channel: int(count) for channel, count in conn.execute(query)}


class OutboxChannel:
    """A channel that records instead of sending. Thread-safe; build once per kind and run."""

    backend = "outbox"

    def __init__(
        self,
        kind: str,
        url: str,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if kind not in CHANNEL_KINDS:
            raise ValueError(f"unknown channel kind {kind!r}; expected one of {CHANNEL_KINDS}")
        self.kind = kind
        self.url = url
        self._clock = clock or (lambda: datetime.now(UTC))
        self._engine = get_engine(url)
        self._store = _insert_ignoring_duplicates(self._engine)

    # Messages the dispatcher may hand over at once (``send_batch``): a group's sends are
    # recorded in one transaction instead of one commit each.
    max_batch = 100

    def send(self, message: OutboundMessage) -> SendResult:
        result = self.send_batch([message])[0]
        if isinstance(result, ChannelError):
            raise result
        return result

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """Record ``messages`` in one transaction, each once by its key (a repeat keeps the
        first). A message for another channel or without a key is refused on its own, with
        nothing recorded for it; the others are recorded."""
        results: list[SendResult | ChannelError] = []
        rows: list[dict[str, Any]] = []
        now = self._clock()
        for message in messages:
            refused = self._refusal(message)
            if refused is not None:
                results.append(refused)
                continue
            provider_id = provider_id_for(message.key)
            rows.append(
                {
                    "key": message.key,
                    "channel": message.channel,
                    "destination": message.destination,
                    "subject": message.subject,
                    "body_text": message.body_text,
                    "body_html": message.body_html,
                    "tags": json.dumps(dict(message.tags), sort_keys=True),
                    "provider_id": provider_id,
                    "recorded_at": now,
                }
            )
            results.append(SendResult(provider_id=provider_id, provider_status=STATUS))
        stored = self._store(rows) if rows else 0
        log.debug(
            "outbox: recorded %d of %d %s messages (the rest were already there or refused)",
            stored, len(messages), self.kind,
        )  # fmt: skip
        return results

    def _refusal(self, message: OutboundMessage) -> ChannelError | None:
        if message.channel != self.kind:
            # A routing bug upstream; nothing was recorded, so it is safe to call it permanent.
            return PermanentError(
                f"outbox for {self.kind!r} was given a {message.channel!r} message",
                code="wrong_channel",
            )
        if not message.key:
            return PermanentError("message has no key", code="no_key")
        return None

    def lookup(self, key: str) -> SendResult | None:
        query = select(outbox_messages.c.provider_id).where(outbox_messages.c.key == key)
        with self._engine.connect() as conn:
            provider_id = conn.execute(query).scalar_one_or_none()
        if provider_id is None:
            return None
        return SendResult(provider_id=provider_id, provider_status=STATUS)

    def records(self, *, limit: int | None = None) -> list[OutboxRecord]:
        """Messages this channel kind recorded."""
        return list_outbox(self.url, channel=self.kind, limit=limit)

    def count(self) -> int:
        return count_outbox(self.url, channel=self.kind)

    def close(self) -> None:
        # The engine is shared by every outbox channel on this URL; dispose_engine() closes it.
        pass

    def __repr__(self) -> str:
        return f"OutboxChannel(kind={self.kind!r}, url={make_url(self.url).render_as_string()!r})"
