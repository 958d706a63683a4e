"""What the ``outreach`` command's modules share: argument types, the database every command
opens, how a command's errors become exit codes, and the messages for unreadable files."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

# Exit codes of ``outreach import`` (README, docs/import-format.md); 2 is argparse's usage error.
IMPORT_OK, IMPORT_REJECTS, IMPORT_UNREADABLE, IMPORT_INTERRUPTED = 0, 3, 4, 5


def date_arg(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None


def engine() -> Engine:
    """The application database, its schema brought to head first (every command does)."""
    from outreach.services.database import migrated_engine

    return migrated_engine()


def run(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse ``argv`` and run the command it names; its errors as exit codes: 1 for an invalid
    configuration or ladder, 2 for a missing file or a bad value."""
    from outreach.services.config import ConfigInvalid
    from outreach.services.ladders import LadderError

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigInvalid, LadderError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def print_counts(counts: dict[str, Any]) -> int:
    print(json.dumps(counts, indent=2, sort_keys=True, default=str))
    return 0


def unreadable(command: str, path: Path | str, exc: BaseException) -> int:
    """One line naming the file and why it cannot be read (never a row's values), exit 4 as
    ``outreach import`` does."""
    from outreach.services.accounts import ImportFileError

    if isinstance(exc, ImportFileError):  # its text names the file already
        problem = str(exc)
    elif isinstance(exc, OSError):
        problem = f"{Path(path).name}: cannot open: {exc.strerror or type(exc).__name__}"
    elif isinstance(exc, UnicodeDecodeError):
        problem = (f"{Path(path).name}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                   f"at offset {exc.start})")  # fmt: skip
    else:
        problem = f"{Path(path).name}: not a readable CSV ({exc})"
    print(f"outreach {command}: {problem}; nothing was imported", file=sys.stderr)
    return IMPORT_UNREADABLE


def unreadable_file() -> tuple[type[BaseException], ...]:
    """What the returned-mail and agency-returns readers raise for a file they cannot read."""
    from outreach.services.accounts import ImportFileError

    return (ImportFileError, OSError, UnicodeDecodeError, csv.Error)
