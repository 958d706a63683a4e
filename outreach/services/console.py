"""What the ops console reads and does (``outreach.entry.console``): an account's timeline, the
day's suppressions, the day's uncertain and failed contacts and their resolution by a person.
The ladder page's use cases are in ``outreach.services.ladders``. See docs/console.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine

from outreach.operations.ledger_views import account_timeline, open_contacts, suppressed_by_stage
from outreach.operations.reporting import day_summary
from outreach.operations.settle_by_hand import (
    RESOLUTIONS,
    Resolution,
    ResolveError,
    resolve_contact,
)

__all__ = [
    "RESOLUTIONS", "Resolution", "ResolveError", "account_timeline", "open_contacts",
    "resolve_contact", "suppression_dashboard",
]  # fmt: skip


def suppression_dashboard(engine: Engine, day: dt.date) -> dict[str, Any]:
    """Counts only: the day's totals and reasons (``reporting.day_summary``), plus suppressed
    contacts by stage and reason code, which the summary does not split."""
    summary = day_summary(engine, day)
    by_stage = suppressed_by_stage(engine, day)
    return {
        "as_of": summary["as_of"],
        "totals": summary["totals"],
        "suppressed_by_reason": summary["suppressed_by_reason"],
        "deferred_by_reason": summary["deferred_by_reason"],
        "suppressed_by_stage": {
            stage: dict(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0])))
            for stage, codes in sorted(by_stage.items())
        },
    }
