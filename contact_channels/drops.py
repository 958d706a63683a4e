"""What our own media share with the outside world: drop locations through Airflow's object
storage, files written whole, and CSV bytes that do not change on a rerun.

Used by the print channel, the agency files and the counsel channel (``outreach.media``), and
for the batch files written after a day's dispatch. Imports nothing of ``outreach`` or
``policies``; the records of what was written (the ``document`` row) are outreach's
(``outreach.media.documents``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from contact_channels.csvsafe import safe_writer


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
