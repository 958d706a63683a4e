"""What our own media share in the application database: the engine they keep their records
on (one per URL for the whole process) and the ``document`` row that proves what a file held.

Used by the agent call queue, the print channel, the agency files and the counsel channel
(``outreach.media.*.channel``), and by the batch files written after a day's dispatch. The
files themselves (drop locations, CSV bytes, PDFs) are the outside world's:
``contact_channels.drops``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

# One engine per database URL for the whole process: every medium built on the URL shares its
# pool (the dispatcher builds one channel per run; the hourly DAG builds many).
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The same settings as the application's own engine (outreach.db): the planner, the
    # dispatcher and the media write the same file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def app_engine(url: str | None, kind: str = "this") -> Engine:
    """The shared engine on the application database at ``url``."""
    if not url:
        raise ValueError(f"the {kind} channel needs the application database URL")
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            if make_url(url).get_backend_name() == "sqlite":
                engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
            _engines[url] = engine
        return engine


def dispose_engine(url: str) -> None:
    """Close the pooled connections for ``url`` (tests, process shutdown)."""
    with _engines_lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def record_document(
    conn: Connection,
    *,
    kind: str,
    day: dt.date,
    recipient: str,
    path: str,
    data: bytes,
    now: dt.datetime,
    ledger_key: str | None = None,
    account_id: int | None = None,
) -> bool:
    """One ``document`` row per kind and path, kept to the bytes last written there; True when
    the row is new or its bytes changed."""
    changed = conn.execute(
        text(
            "INSERT INTO document (kind, batch_date, recipient, path, sha256, size, ledger_key, "
            "account_id, created_at) VALUES (:kind, :day, :recipient, :path, :sha, :size, :key, "
            ":account, :now) ON CONFLICT (kind, path) DO UPDATE SET sha256 = excluded.sha256, "
            "size = excluded.size WHERE document.sha256 <> excluded.sha256"
        ),
        {
            "kind": kind,
            "day": day,
            "recipient": recipient,
            "path": path,
            "sha": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "key": ledger_key,
            "account": account_id,
            "now": now,
        },
    ).rowcount
    return bool(changed)
