"""The ledger: one row per contact the day's plan decided on (table ``contact``), and its states.

Planning writes the rows; dispatch claims, sends and records them exactly once. Here: the key of
a contact, its states, the row and decision-row columns, and the statements that move a row
through its states (claim, release, set a state, mark sent) and read the rows due.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from outreach.kernel.facts import as_instant
from outreach.storage.bulk import column_types
from outreach.storage.models import Contact, PolicyDecision
from policies.model import BLOCK, DEFER, SEND, Verdict

STATE_FOR_VERDICT = {SEND: "planned", DEFER: "deferred", BLOCK: "suppressed"}
# Rows the planner may (re)write; anything the dispatcher has touched stays as it is.
REPLANNABLE = "('planned', 'deferred', 'expired')"

EVENT_OUTCOME = {"call": "attempted"}  # what our own send means in the contact history


def contact_key(
    account_id: int,
    episode: dt.date | None,
    stage: str,
    action: str,
    slot: int,
    channel: str,
    contact_point_id: int | None,
) -> str:
    """The ledger key: what the contact is, never when or by which task try it was made.

    The account id leads (hex, fixed width) so that keys of one batch sit together in the
    key index: a million-row plan appends to it instead of scattering writes across it.
    """
    identity = f"{account_id}|{episode}|{stage}|{action}|{slot}|{channel}|{contact_point_id}"
    return f"{account_id:010x}" + hashlib.sha256(identity.encode()).hexdigest()[:22]


@dataclass(slots=True)
class DueContact:
    key: str
    account_id: int
    contact_point_id: int | None
    template: str | None
    stage: str
    action: str
    plan_date: dt.date
    window_start: dt.datetime
    window_end: dt.datetime
    defer_until: dt.datetime | None = None
    # The ladder version that planned it and the experiment arm it was planned in, if any:
    # dispatch judges it with that ladder.
    config_version: str | None = None
    arm: str | None = None


CONTACT_COLUMNS = (
    "key",
    "account_id",
    "episode",
    "stage",
    "action",
    "slot",
    "channel",
    "contact_point_id",
    "template",
    "plan_date",
    "state",
    "verdict",
    "reasons",
    "window_start",
    "window_end",
    "defer_until",
    "config_version",
    "pack_versions",
    "attempts",
    "updated_at",
    "catch_up",
    "arm",
)
CONTACT_TYPES = column_types(Contact, CONTACT_COLUMNS)
ON_CONFLICT_CONTACT = (
    "ON CONFLICT (key) DO UPDATE SET plan_date = excluded.plan_date, state = excluded.state, "
    "verdict = excluded.verdict, reasons = excluded.reasons, "
    "window_start = excluded.window_start, window_end = excluded.window_end, "
    "defer_until = excluded.defer_until, template = excluded.template, "
    "config_version = excluded.config_version, pack_versions = excluded.pack_versions, "
    "updated_at = excluded.updated_at, catch_up = excluded.catch_up, arm = excluded.arm, "
    "claim_token = NULL, "
    "claimed_at = NULL "
    f"WHERE contact.state IN {REPLANNABLE} "
    "OR (contact.state = 'suppressed' AND (contact.plan_date < excluded.plan_date "
    "OR contact.claimed_at IS NULL))"
)

DECISION_COLUMNS = (
    "contact_key",
    "account_id",
    "phase",
    "as_of",
    "decided_at",
    "verdict",
    "reasons",
    "window_start",
    "window_end",
    "defer_until",
    "config_version",
    "pack_versions",
    "evidence",
    "arm",
)
# The evidence is JSON text already: stored as given, not encoded again.
DECISION_TYPES = column_types(PolicyDecision, DECISION_COLUMNS, as_given=("evidence",))


def decision_row(
    key: str,
    account_id: int,
    phase: str,
    as_of: dt.date,
    decided_at: dt.datetime,
    verdict: Verdict,
    config_version: str,
    evidence: str | None = None,
    arm: str | None = None,
) -> tuple[Any, ...]:
    """A policy_decision row in DECISION_COLUMNS order, for the plan and the send phase alike;
    ``arm`` is the contact's experiment arm ("EXPERIMENT/ARM"), if any."""
    if evidence is None:
        evidence = json.dumps(verdict.evidence(), separators=(",", ":"))
    return (
        key,
        account_id,
        phase,
        as_of,
        decided_at,
        verdict.verdict,
        " ".join(verdict.reasons),
        verdict.window_start,
        verdict.window_end,
        verdict.defer_until,
        config_version,
        verdict.pack_versions,
        evidence,
        arm,
    )


def due_contacts(
    conn: Connection, day: dt.date, channel: str, lo: int, hi: int
) -> list[DueContact]:
    """The ``channel`` contacts of accounts ``lo..hi`` planned for ``day`` and not yet claimed."""
    rows = conn.execute(
        text(
            "SELECT key, account_id, contact_point_id, template, stage, action, plan_date, "
            "window_start, window_end, defer_until, config_version, arm FROM contact "
            "WHERE plan_date = :day "
            "AND channel = :channel AND state = 'planned' AND account_id BETWEEN :lo AND :hi "
            "ORDER BY account_id, key"
        ),
        {"day": day, "channel": channel, "lo": lo, "hi": hi},
    )
    return [
        DueContact(r[0], r[1], r[2], r[3], r[4], r[5], day, as_instant(r[7]), as_instant(r[8]),
                   as_instant(r[9]) if r[9] is not None else None, r[10], r[11])  # fmt: skip
        for r in rows
    ]


def claim(engine: Engine, keys: list[str], token: str, now: dt.datetime) -> set[str]:
    """Move the planned rows among ``keys`` to ``sending`` under ``token``, in a transaction of
    their own, and return the keys this claim won."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE contact SET state = 'sending', claim_token = :token, claimed_at = :now, "
                "attempts = attempts + 1, updated_at = :now WHERE key IN :keys AND state = 'planned'"
            ).bindparams(bindparam("keys", expanding=True)),
            {"token": token, "now": now, "keys": keys},
        )
        return {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT key FROM contact WHERE key IN :keys AND claim_token = :token "
                    "AND state = 'sending'"
                ).bindparams(bindparam("keys", expanding=True)),
                {"keys": keys, "token": token},
            )
        }


def release(conn: Connection, keys: Iterable[str], token: str) -> None:
    """Give claimed rows that never reached the provider back to the queue, uncounted."""
    params = [{"k": k, "t": token} for k in keys]
    if params:
        conn.execute(
            text(
                "UPDATE contact SET state = 'planned', claim_token = NULL, "
                "attempts = attempts - 1 WHERE key = :k AND claim_token = :t AND state = 'sending'"
            ),
            params,
        )


def set_state(
    conn: Connection, key: str, token: str, state: str, now: dt.datetime, **fields: Any
) -> None:
    """Move a row this claim (``token``) holds in ``sending`` to ``state``, with ``fields``."""
    assignments = "".join(f", {name} = :{name}" for name in fields)
    conn.execute(
        text(
            f"UPDATE contact SET state = :state, updated_at = :now{assignments} "
            "WHERE key = :key AND claim_token = :token AND state = 'sending'"
        ),
        {"state": state, "now": now, "key": key, "token": token, **fields},
    )


@dataclass(frozen=True, slots=True)
class SentRow:
    """A contact the backend accepted, as the ledger records it."""

    key: str
    account_id: int
    channel: str
    contact_point_id: int | None
    provider_id: str | None
    at: dt.datetime


def mark_sent(
    conn: Connection, rows: list[SentRow], token: str | None, backend: str, now: dt.datetime
) -> None:
    """Record ``rows`` as sent, with their outbound contact event, in ``conn``'s transaction.

    A live sender (``token``) settles only its own claims; recovery and callbacks (no token)
    may settle any row still ``sending`` or ``uncertain``."""
    if not rows:
        return
    conn.execute(
        text(
            "UPDATE contact SET state = 'sent', backend = :b, provider_id = :p, sent_at = :at, "
            "outcome = 'accepted', error_code = NULL, error_detail = NULL, updated_at = :now "
            "WHERE key = :k AND state IN ('sending', 'uncertain')"
            + (" AND claim_token = :t" if token is not None else "")
        ),
        [
            {"b": backend, "p": r.provider_id, "at": r.at, "now": now, "k": r.key, "t": token}
            for r in rows
        ],
    )
    conn.execute(
        text(
            "INSERT INTO contact_event (event_ref, account_id, occurred_at, channel, contact_point_id, "
            "direction, outcome, source, ledger_key) VALUES (:ref, :a, :at, :ch, :cp, 'outbound', "
            ":o, 'dispatch', :k) ON CONFLICT (event_ref) DO NOTHING"
        ),
        [
            {
                "ref": f"ledger:{r.key}",
                "a": r.account_id,
                "at": r.at,
                "ch": r.channel,
                "cp": r.contact_point_id,
                "o": EVENT_OUTCOME.get(r.channel, "sent"),
                "k": r.key,
            }
            for r in rows
        ],
    )
