"""Recording what a send did: its send-phase decision rows, the notice days the gates read
later, and a send that did not succeed (failed, to retry, or uncertain)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, text

from contact_channels.base import ChannelError, PermanentError, TransientError
from outreach.kernel.ledger import DueContact, decision_row, set_state
from outreach.resolution.disputes import verification_sent
from policies.model import Verdict

log = logging.getLogger(__name__)

MAX_TRANSIENT_ATTEMPTS = 3


def decision_rows(
    judged: Iterable[tuple[DueContact, Verdict, str]], at: dt.datetime
) -> list[tuple[Any, ...]]:
    return [
        decision_row(c.key, c.account_id, "send", c.plan_date, at, verdict, config_version,
                     arm=c.arm)
        for c, verdict, config_version in judged
    ]


# Notices whose sending day the gates read later: purpose -> the update that records it. The
# day is the contact's plan day: a letter's print batch, the day it is mailed, which is the
# consumer's local day whose window it went out in (the send instant's UTC date can be the eve,
# for Guam or China). The letter prints the same day (outreach.media.letters.mailing.notice_sent_on).
NOTICE_DATES = {
    # The validation period runs from the first notice (12 CFR 1006.34(b)(5)).
    "validation_notice": "UPDATE account SET validation_notice_sent_on = :d "
    "WHERE id = :a AND validation_notice_sent_on IS NULL",
    # The legal referral waits from the latest final notice (core.final_notice_wait).
    "final_notice": "UPDATE account SET final_notice_sent_on = :d WHERE id = :a",
}


def verification_mailed(
    conn: Connection, channel: str, purpose: str | None, account_id: int, key: str,
    plan_date: dt.date,
) -> None:
    """A verification letter went out (its print batch's day): the account's verification task
    is sent and, where the law allows, its dispute hold ends (outreach.resolution.disputes).
    Only a letter counts: 15 U.S.C. 1692g(b) speaks of verification mailed."""
    if purpose == "verification" and channel == "letter":
        verification_sent(conn, account_id=account_id, ledger_key=key, day=plan_date,
                          actor="system")  # fmt: skip


def settle(
    conn: Connection,
    contact: DueContact,
    channel: str,
    token: str,
    err: Exception,
    now: dt.datetime,
) -> str:
    """Record a send that did not succeed; returns the state it leaves the contact in.

    Permanent: failed, and the contact point updated. Transient: nothing reached the consumer,
    so the next window tries again, up to MAX_TRANSIENT_ATTEMPTS claims, then failed (for a
    person or the redrive). Anything else (uncertain, an unclassified error, a bug in an
    adapter): never resent automatically.
    """
    if not isinstance(err, ChannelError):
        log.error("send %s: unexpected %s", contact.key[:16], type(err).__name__)
        err = ChannelError("unexpected error during send")
    fields: dict[str, str | None] = {"error_detail": str(err)[:300]}
    if isinstance(err, PermanentError):
        state = "failed"
        fields.update(error_code=err.code or "permanent", outcome="rejected")
        _apply_permanent(conn, err, contact.account_id, channel, contact.contact_point_id, now)
    elif isinstance(err, TransientError):
        attempts = conn.execute(
            text("SELECT attempts FROM contact WHERE key = :k"), {"k": contact.key}
        ).scalar_one()
        state = "failed" if attempts >= MAX_TRANSIENT_ATTEMPTS else "planned"
        fields["error_code"] = err.code or "transient"
        if state == "planned":
            fields["claim_token"] = None
    else:
        state = "uncertain"
        fields["error_code"] = err.code or "uncertain"
    set_state(conn, contact.key, token, state, now, **fields)
    return state


def _apply_permanent(
    conn: Connection,
    err: PermanentError,
    account_id: int,
    channel: str,
    contact_point_id: int | None,
    now: dt.datetime,
) -> None:
    if contact_point_id is None:
        return
    if err.destination_invalid:
        conn.execute(
            text("UPDATE contact_point SET valid = :f, updated_at = :now WHERE id = :id"),
            {"f": False, "now": now, "id": contact_point_id},
        )
    if err.opted_out:
        conn.execute(
            text(
                "INSERT INTO opt_out (person_id, channel, scope, recorded_at, source) "
                "SELECT person_id, :ch, :scope, :now, 'provider' FROM account WHERE id = :a "
                "ON CONFLICT (person_id, channel, scope) DO NOTHING"
            ),
            {"ch": channel, "scope": str(contact_point_id), "now": now, "a": account_id},
        )


