"""The letter channel's files in the mail house's drop location: where each letter's PDF goes
(``<drop>/<YYYY-MM-DD>/letters/<key>.pdf`` through Airflow's object storage), how a complete
PDF is told from a half-written one, and the ledger's reference for a letter.

The channel itself (``outreach.media.letters.channel.PrintChannel``, backend ``print``) lays
each letter out with ``letter_layout.render_letter`` (fonts in ``letter_fonts``, wording in
``letter_wording``), writes it here and records its ``document`` row. Each PDF carries its line
of the day's mail-house manifest in its metadata, so the manifest
(``outreach.media.letters.batch.close_print_batch``) is built from the letters exactly as
printed. This module imports nothing from ``outreach`` or ``policies``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contact_channels.drops import drop_location

KIND = "letter"
BACKEND = "print"
STATUS = "queued_for_print"
DEFAULT_MAIL_HOUSE = "mailhouse"
DOCUMENT_KIND = "letter"


# --- the drop location --------------------------------------------------------------------------


def drop_root(settings: Mapping[str, Any], data_dir: Path | None) -> Any:
    """The mail house's drop location: ``settings['drop']`` (a URL: ``file://``, ``s3://``,
    ``sftp://``; ``conn_id`` for its Airflow connection), else ``file://<data_dir>/drop/mailhouse``."""
    fallback = Path(data_dir) / "drop" / "mailhouse" if data_dir is not None else None
    try:
        return drop_location(settings.get("drop"), settings.get("conn_id"), None, fallback)
    except ValueError:
        raise ValueError("channels.letter.drop is not set and there is no data dir") from None


def letter_path(root: Any, batch_date: dt.date, key: str) -> Any:
    return root / batch_date.isoformat() / "letters" / f"{key}.pdf"


def is_complete_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


def provider_id(batch_date: dt.date, key: str) -> str:
    """The ledger's reference for a letter: its file, relative to the drop location (55
    characters for a ledger key; hashed if a longer key would not fit the 64-character column)."""
    name = f"{batch_date.isoformat()}/letters/{key}.pdf"
    if len(name) <= 64:
        return name
    return f"{batch_date.isoformat()}/letters/h:{hashlib.sha256(key.encode()).hexdigest()[:40]}"
