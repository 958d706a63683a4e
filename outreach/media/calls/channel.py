"""The agent call queue as a channel: "sending" a call puts a task in ``call_task`` for an agent.

The medium is the application database itself (the table ``call_task``, one row per ``call``
ledger row, same key). Inserting is idempotent on the key, so a dispatcher that crashed after
queueing and is recovered by ``lookup`` never queues a call twice; ``lookup`` is authoritative
(the row is there or it is not). What agents do with the tasks (claim, disposition) lives in
``outreach/media/calls/queue.py``: this module only queues. It never logs ``message.fields``
(they hold the account's data).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from contact_channels.base import OutboundMessage, PermanentError, SendResult
from contact_channels.media_fields import CallFields
from outreach.kernel.clock import utcnow
from outreach.media.documents import app_engine

log = logging.getLogger(__name__)

STATUS = "queued"

def provider_id_for(key: str) -> str:
    """The queue's reference for a task: stable, so a repeated send returns the same result."""
    return f"call-task-{key[:16]}"


def _instant(value: Any, name: str) -> dt.datetime:
    """A naive-UTC instant from a datetime (aware ones converted) or ISO text."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.removesuffix("Z"))
        except ValueError:
            raise PermanentError(f"call task field {name} is not an instant", code="bad_fields") from None
    if not isinstance(value, dt.datetime):
        raise PermanentError(f"call task field {name} is not an instant", code="bad_fields")
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _integer(value: Any, name: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PermanentError(f"call task field {name} must be a whole number", code="bad_fields")
    return value


class AgentQueueChannel:
    """Queues each call as a ``call_task`` row (state ``queued``) in the application database.

    Built by ``outreach.planning.kinds.build_channel("call", {"backend": "agent_queue"},
    database_url=...)``. Thread-safe; build once per run."""

    kind = "call"
    backend = "agent_queue"

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        database_url: str | None,
        data_dir: Path | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if not database_url:
            raise ValueError(
                "channels.call.backend is 'agent_queue' but no application database URL was "
                "given: the call queue lives in the application database"
            )
        self.settings = dict(settings or {})
        self.url = database_url
        self._engine = app_engine(database_url, self.kind)
        # created_at is bookkeeping only (the task's window comes from the gate's verdict).
        self._clock = clock or utcnow

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel != self.kind:
            # A routing bug upstream; nothing was written, so it is safe to call it permanent.
            raise PermanentError(
                f"the call queue was given a {message.channel!r} message", code="wrong_channel"
            )
        if not message.key:
            raise PermanentError("message has no key", code="no_key")
        # What the dispatcher's hooks (outreach.media.calls.hooks.CallQueueHooks) put in
        # ``message.fields``; a missing one is refused (code missing_fields).
        fields = CallFields.from_fields(message.fields)
        due_start = _instant(fields.due_start, "due_start")
        due_end = _instant(fields.due_end, "due_end")
        if due_end <= due_start:
            raise PermanentError("call task window is empty", code="bad_fields")
        now = self._clock()
        row = {
            "key": message.key,
            "account_id": _integer(fields.account_id, "account_id"),
            "contact_point_id": _integer(
                fields.contact_point_id, "contact_point_id", optional=True
            ),
            "priority": _integer(fields.priority, "priority"),
            "due_start": due_start,
            "due_end": due_end,
            "now": now,
        }
        with self._engine.begin() as conn:
            stored = conn.execute(
                text(
                    "INSERT INTO call_task (key, account_id, contact_point_id, priority, "
                    "due_start, due_end, state, created_at, updated_at) VALUES (:key, "
                    ":account_id, :contact_point_id, :priority, :due_start, :due_end, 'queued', "
                    ":now, :now) ON CONFLICT (key) DO NOTHING"
                ),
                row,
            ).rowcount
        log.debug("call queue %s task %s", "queued" if stored else "already had", message.key[:16])
        return SendResult(provider_id=provider_id_for(message.key), provider_status=STATUS)

    def lookup(self, key: str) -> SendResult | None:
        with self._engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM call_task WHERE key = :k"), {"k": key}
            ).first()
        if found is None:
            return None
        return SendResult(provider_id=provider_id_for(key), provider_status=STATUS)

    def close(self) -> None:
        # The engine is shared by every medium on this URL; documents.dispose_engine() closes it.
        pass

    def __repr__(self) -> str:
        return f"AgentQueueChannel(url={make_url(self.url).render_as_string()!r})"
