"""Recovery: rows a dead worker left ``sending`` past the lease, and rows marked ``uncertain``
that our own media can settle, resolved by asking the backend, never resent blindly."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

from contact_channels.base import Channel, is_local
from outreach import settings
from outreach.dispatch.recording import NOTICE_DATES, verification_mailed
from outreach.dispatch.send_rules import SendRules
from outreach.kernel.facts import as_date, as_instant
from outreach.kernel.ledger import SentRow, mark_sent


def sending_lease() -> dt.timedelta:
    """How long a claim is trusted before its worker is presumed dead."""
    return dt.timedelta(seconds=settings.sending_lease_seconds())


def recover_stale(
    engine: Engine,
    channel_impl: Channel,
    channel: str,
    lo: int,
    hi: int,
    now: dt.datetime,
    rules: SendRules | None = None,
) -> int:
    """Resolve rows left ``sending`` past the lease (their worker died) and, for a backend that
    knows every message it took (our own media), rows marked ``uncertain``.

    The backend is asked before the write transaction opens (a lookup may read the same
    database), and a recovered notice records its day as a live send would."""
    authoritative = is_local(channel_impl)
    states = "('sending', 'uncertain')" if authoritative else "('sending')"
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT key, account_id, contact_point_id, state, claimed_at, stage, action, "
                f"plan_date FROM contact WHERE channel = :ch AND account_id BETWEEN :lo AND :hi "
                f"AND state IN {states}"
            ),
            {"ch": channel, "lo": lo, "hi": hi},
        ).all()
    stale = [
        r
        for r in rows
        if not (
            r.state == "sending"
            and r.claimed_at is not None
            and as_instant(r.claimed_at) > now - sending_lease()
        )  # a live worker may still hold it
    ]
    found = {r.key: channel_impl.lookup(r.key) for r in stale}
    with engine.begin() as conn:
        for r in stale:
            result = found[r.key]
            if result is not None:
                at = as_instant(r.claimed_at or now)
                row = SentRow(r.key, r.account_id, channel, r.contact_point_id, result.provider_id, at)
                mark_sent(conn, [row], None, channel_impl.backend, now)
                action = rules.actions.get((r.stage, r.action)) if rules else None
                if action is not None and action.gate_purpose in NOTICE_DATES:
                    conn.execute(
                        text(NOTICE_DATES[action.gate_purpose]),
                        {"d": as_date(r.plan_date), "a": r.account_id},
                    )
                if action is not None:
                    verification_mailed(conn, channel, action.gate_purpose, r.account_id, r.key,
                                        as_date(r.plan_date))  # type: ignore[arg-type]
            elif authoritative:
                conn.execute(
                    text(
                        "UPDATE contact SET state = 'planned', claim_token = NULL, updated_at = :now, "
                        "error_detail = 'released: backend has no such message' "
                        "WHERE key = :k AND state IN ('sending', 'uncertain')"
                    ),
                    {"now": now, "k": r.key},
                )
            else:
                conn.execute(
                    text(
                        "UPDATE contact SET state = 'uncertain', updated_at = :now, "
                        "error_detail = 'worker lost during send' WHERE key = :k AND state = 'sending'"
                    ),
                    {"now": now, "k": r.key},
                )
    return len(stale)


