"""Files the daily ingest cannot read: moved aside with a reason, listed in the day's summary.

A file in ``data/inbox`` (or its ``returned_mail/`` and ``agency_returns/<agency>/``
sub-inboxes) that cannot be read as a whole (missing columns, binary, a broken gzip, an unknown
extension) goes to a ``quarantine/`` folder beside it, with ``<name>.reason.txt`` holding the
reason and the time; the other files are imported and the day goes on. A person fixes the file
and drops it in the inbox again, or deletes it. Reasons name the file and the problem, never a
row's values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

FOLDER = "quarantine"
REASON_SUFFIX = ".reason.txt"


def quarantine(path: Path, reason: str, at: dt.datetime) -> Path:
    """Move ``path`` into ``quarantine/`` beside it and write its reason file; return the new
    path. A file of the same name already there is kept: the newcomer gets a time prefix."""
    folder = path.parent / FOLDER
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists() or _reason_path(target).exists():
        target = folder / f"{at:%Y%m%dT%H%M%SZ}-{path.name}"
    path.rename(target)
    _reason_path(target).write_text(
        f"file: {path.name}\nquarantined at: {at.isoformat()}Z\nreason: {reason}\n"
        "Fix the file and put it back in the inbox, or delete it.\n",
        encoding="utf-8",
    )
    return target


def _reason_path(path: Path) -> Path:
    return path.with_name(path.name + REASON_SUFFIX)


def in_quarantine(inbox: Path) -> list[dict[str, Any]]:
    """The files waiting in the inbox's quarantine folders: each one's path under the inbox and
    its reason, sorted by path."""
    found = []
    folders = [inbox, inbox / "returned_mail", *sorted(inbox.glob("agency_returns/*"))]
    reason_files = [r for f in folders for r in (f / FOLDER).glob(f"*{REASON_SUFFIX}")]
    for reason_file in sorted(reason_files):
        held = reason_file.with_name(reason_file.name.removesuffix(REASON_SUFFIX))
        if not held.exists():  # the file was dealt with; its reason is stale
            continue
        reason = next(
            (
                line.removeprefix("reason: ")
                for line in reason_file.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.startswith("reason: ")
            ),
            "",
        )
        # Named as it was in the inbox: returned_mail/returns.csv.
        shown = (held.parent.parent / held.name).relative_to(inbox).as_posix()
        found.append({"file": shown, "reason": reason})
    return found
