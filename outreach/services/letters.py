"""Letters' use cases for ``outreach letters``: close the day's print batch, import returned mail
(``outreach.media.letters.mailing``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from outreach.media.letters.batch import close_print_batch as _close_print_batch
from outreach.media.letters.returned import import_returned_mail as _import_returned_mail


def close_print_batch(engine: Engine, day: dt.date, drop_url: str | None = None
                      ) -> dict[str, int]:  # fmt: skip
    """Write the day's print manifest for the mail house."""
    return _close_print_batch(engine, day, drop_url)


def import_returned_mail(engine: Engine, path: Path, at: dt.datetime) -> dict[str, Any]:
    """Import the mail house's returned-mail CSV."""
    return _import_returned_mail(engine, path, at)
