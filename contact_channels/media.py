"""What our own media share: the application database they keep their records in, drop
locations through Airflow's object storage, files written whole, CSV bytes that do not change
on a rerun, and the ``document`` row that proves what a file held.

Used by the agent call queue, the print channel, the agency files and the counsel channel (and
by ``outreach`` for the batch files written after a day's dispatch). Imports nothing of
``outreach`` or ``policies``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from contact_channels.csvsafe import safe_writer

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


def storage_path(url: str, conn_id: str | None = None) -> Any:
    """An ``airflow.sdk.ObjectStoragePath`` for ``url`` (``file://``, ``s3://``, ``sftp://``),
    with the Airflow connection that holds its credentials."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url, conn_id=conn_id) if conn_id else ObjectStoragePath(url)


def drop_location(
    own: str | None,
    conn_id: str | None,
    channel_drop: str | None,
    fallback: Path | None,
    recipient: str | None = None,
) -> Any:
    """Where a recipient's files go: its ``own`` drop URL; else the channel's drop (from
    channels.yaml) with the recipient's folder; else ``fallback`` (a local folder, with the
    recipient's folder) as a ``file://`` URL."""
    if own:
        return storage_path(own, conn_id)
    if channel_drop:
        root = storage_path(channel_drop)
        return root / recipient if recipient else root
    if fallback is None:
        raise ValueError("no drop location is configured and there is no data dir")
    folder = fallback / recipient if recipient else fallback
    return storage_path(folder.resolve().as_uri())


def write_file(path: Any, data: bytes) -> bool:
    """Write ``data`` at ``path`` unless the same bytes are there; False when they were.

    Written under a temporary name and moved, so a reader (or a lookup after a crash) never
    sees half a file at the final name."""
    if path.exists():
        try:
            if path.read_bytes() == data:
                return False
        except OSError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.parent / f"{path.name}.part"
    with part.open("wb") as handle:
        handle.write(data)
    part.rename(path)
    return True


def csv_bytes(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """A CSV (RFC 4180 line ends, UTF-8) with a header: the same rows give the same bytes.
    Every cell a spreadsheet could take for a formula is neutralised (``csvsafe``): these
    files go to agencies and law firms."""
    buffer = io.StringIO()
    writer = safe_writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return buffer.getvalue().encode("utf-8")


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
