"""A person settles an uncertain or failed contact by hand (the ops console's resolve): the
ledger row moves and who and why are recorded, in one transaction. See docs/console.md.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, text

from contact_channels.masking import scrub_text
from outreach.dispatch.dispatcher import EVENT_OUTCOME
from outreach.kernel.clock import utcnow
from outreach.kernel.facts import as_instant

RESOLVABLE_STATES = ("uncertain", "failed")
DROP_REASON = "ops.dropped"
MAX_NOTE = 200  # characters of the person's "why" kept (error_detail is 300 wide)


# The resolve actions: what each does to the ledger row.
RESOLUTIONS = {
    "mark_sent": "sent",  # the person confirmed with the provider that it went out
    "mark_not_sent": "planned",  # it did not go out: back to planned, the dispatcher may resend
    "drop": "suppressed",  # it will not go out at all: suppressed with ops.dropped
}


class ResolveError(Exception):
    """Why a resolve was refused; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Resolution:
    key: str
    previous_state: str
    state: str
    resolution: str
    resolved_by: str
    resolved_at: dt.datetime


def resolve_contact(
    engine: Engine,
    key: str,
    resolution: str,
    *,
    who: str,
    why: str,
    now: Callable[[], dt.datetime] = utcnow,
) -> Resolution:
    """Settle an uncertain or failed contact by hand, in one transaction.

    The row moves only if it is still uncertain or failed (a conditional UPDATE: a callback or
    another person that got there first wins, and this one is refused with 409). Who and why go
    into the row's ``error_detail`` and into a ``contact_event`` (source ``ops``, direction
    ``ops`` so the gate's frequency counts never read it as a contact). ``mark_sent`` also
    writes the outbound event the dispatcher would have (same ``ledger:`` ref), so the gate
    counts the message; the other two write none: nothing reached the consumer."""
    if resolution not in RESOLUTIONS:
        raise ResolveError(422, f"unknown resolution {resolution!r}")
    reason = " ".join(scrub_text(why).split())[:MAX_NOTE]
    if not reason:
        raise ResolveError(422, "say why: the reason is required")
    state = RESOLUTIONS[resolution]
    at = now()
    note = f"ops {resolution} by {who}: {reason}"[:300]
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "SELECT account_id, channel, contact_point_id, state, reasons, claimed_at "
                "FROM contact WHERE key = :k"
            ),
            {"k": key},
        ).first()
        if row is None:
            raise ResolveError(404, "no such contact")
        if row.state not in RESOLVABLE_STATES:
            raise ResolveError(409, f"contact is {row.state}, only uncertain or failed resolve")
        # The message went out (if it did) when it was claimed and handed to the provider, not
        # when a person settled it: the gate's frequency counts must see it on its own day.
        sent_at = as_instant(row.claimed_at) if row.claimed_at is not None else at
        fields = {
            "mark_sent": "sent_at = :sent_at, outcome = 'ops_marked_sent', error_code = NULL",
            "mark_not_sent": "outcome = 'ops_not_sent', error_code = NULL, claim_token = NULL, "
            "claimed_at = NULL",
            "drop": "outcome = 'ops_dropped', reasons = :drop",
        }[resolution]
        moved = conn.execute(
            text(
                f"UPDATE contact SET state = :state, error_detail = :note, updated_at = :at, "
                f"{fields} WHERE key = :k AND state = :prev"
            ),
            {"state": state, "note": note, "at": at, "k": key, "prev": row.state,
             "drop": DROP_REASON, "sent_at": sent_at},
        ).rowcount
        if moved != 1:  # settled by someone else between our read and our write
            raise ResolveError(409, "contact changed meanwhile; reload and try again")
        event = (
            "INSERT INTO contact_event (event_ref, account_id, occurred_at, channel, "
            "contact_point_id, direction, outcome, source, ledger_key) VALUES (:ref, :a, :at, "
            ":ch, :cp, :dir, :o, :src, :k) ON CONFLICT (event_ref) DO NOTHING"
        )
        base = {"a": row.account_id, "at": at, "ch": row.channel, "cp": row.contact_point_id,
                "k": key}
        conn.execute(
            text(event),
            {**base, "ref": f"ops:{uuid.uuid4().hex}", "dir": "ops",
             "o": f"ops_{resolution}", "src": "ops"},
        )
        if resolution == "mark_sent":
            conn.execute(
                text(event),
                {**base, "at": sent_at, "ref": f"ledger:{key}", "dir": "outbound",
                 "o": EVENT_OUTCOME.get(row.channel, "sent"), "src": "ops"},
            )
    return Resolution(key, row.state, state, resolution, who, at)
