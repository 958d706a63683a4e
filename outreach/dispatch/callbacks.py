"""Provider callbacks and inbound messages: what Twilio and SendGrid tell us after a send.

Three entry points, each one transaction on the application database (SQLAlchemy Core, SQLite
and PostgreSQL alike), each idempotent: every callback is first recorded as a ``contact_event``
under a ``event_ref`` derived from the provider's own id, and a callback whose events are all
already there changes nothing (a replay, or the provider retrying).

- ``apply_twilio_status``: a Twilio status callback. ``sent``/``delivered`` resolve an
  ``uncertain`` (or still ``sending``) contact to ``sent``; ``failed``/``undelivered`` resolve an
  ``uncertain`` one to ``failed``. A ``sent`` contact never goes backwards: a later delivery
  failure is noted in its ``outcome`` and ``error_code`` only. Permanent error codes update the
  contact point as a failed send would (21610: SMS opt-out; 21211/21612/21614: invalid).
- ``apply_inbound_sms``: a text from a consumer. STOP (and every revocation
  ``policies.revocation.classify`` recognises) records an SMS opt-out for that number at once and
  suppresses the SMS still queued to it; START removes that opt-out; HELP answers with the
  configured text. Returns the reply to send, or None.
- ``apply_sendgrid_events``: a batch from the SendGrid Event Webhook.

Provider delivery reports are stored with ``direction='status'`` (they are news about a contact,
not a contact: the frequency rules count only ``outbound`` events); consumer actions (a reply,
an unsubscribe, a spam report) with ``direction='inbound'``. No message body and no phone number
or email address is logged or stored in an event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, text

from contact_channels.masking import mask_email, mask_phone
from contact_channels.retry import OUTCOMES
from outreach.kernel.clock import utcnow
from outreach.kernel.facts import as_date, as_instant
from outreach.kernel.ledger import SentRow, mark_sent
from outreach.planning.kinds import channel_settings
from outreach.storage.models import PolicyDecision
from policies.revocation import HELP, START, STOP, classify

log = logging.getLogger(__name__)

OPTED_OUT = "core.opted_out"
OPT_OUT_CITATION = "US: 12 CFR 1006.6(e); 47 CFR 64.1200(a)(10) (TCPA revocation)"

DEFAULT_HELP_TEXT = (
    "Account reminders. Msg&data rates may apply. Call the number on your statement for help. "
    "Reply STOP to opt out."
)
DEFAULT_STOP_TEXT = (
    "You are unsubscribed and will receive no more text messages from us. Reply START to "
    "resubscribe."
)
DEFAULT_START_TEXT = "You are resubscribed to text messages. Reply STOP to opt out."

# Twilio MessageStatus -> contact_event outcome. Other statuses (queued, accepted, sending,
# scheduled, read, canceled) say nothing we act on.
TWILIO_STATUS_OUTCOME = {
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
}
TWILIO_SUCCESS = frozenset({"sent", "delivered"})

# SendGrid event -> (contact_event direction, outcome).
SENDGRID_EVENTS = {
    "delivered": ("status", "delivered"),
    "bounce": ("status", "bounced"),
    "dropped": ("status", "failed"),
    "spamreport": ("inbound", "opt_out"),
    "unsubscribe": ("inbound", "opt_out"),
    "group_unsubscribe": ("inbound", "opt_out"),
}
SENDGRID_OPT_OUT = frozenset({"spamreport", "unsubscribe", "group_unsubscribe"})

# A STOP that names calls ("stop calling me", "不要再打") also stops calls.
_NAMES_CALLS = re.compile(r"\b(?:call(?:s|ing)?|phon(?:e|ing)|ring(?:ing)?)\b|打电话|不要再打|别再打")


@dataclass
class InboundResult:
    """What an inbound SMS did: its label, the reply (None: say nothing), and what changed."""

    label: str | None
    reply: str | None
    duplicate: bool = False
    accounts: int = 0
    suppressed: int = 0
    opt_out_channels: list[str] = field(default_factory=list)


@dataclass
class EventsResult:
    applied: int = 0
    duplicate: int = 0
    ignored: int = 0
    suppressed: int = 0


def _ref(*parts: str) -> str:
    """An ``event_ref`` from provider ids, hashed when it would not fit the 64-char column."""
    ref = ":".join(parts)
    if len(ref) <= 64:
        return ref
    return f"{parts[0]}:h:{hashlib.sha256(ref.encode()).hexdigest()[:56]}"


def _record_event(
    conn: Connection,
    ref: str,
    account_id: int,
    at: dt.datetime,
    channel: str,
    contact_point_id: int | None,
    direction: str,
    outcome: str,
    ledger_key: str | None,
) -> bool:
    """Insert one contact_event; False when ``ref`` was already recorded (a replay)."""
    result = conn.execute(
        text(
            "INSERT INTO contact_event (event_ref, account_id, occurred_at, channel, "
            "contact_point_id, direction, outcome, source, ledger_key) VALUES (:ref, :a, :at, "
            ":ch, :cp, :dir, :o, 'callback', :k) ON CONFLICT (event_ref) DO NOTHING"
        ),
        {
            "ref": ref,
            "a": account_id,
            "at": at,
            "ch": channel,
            "cp": contact_point_id,
            "dir": direction,
            "o": outcome,
            "k": ledger_key,
        },
    )
    return bool(result.rowcount)


def _contact(conn: Connection, key: str | None) -> dict[str, Any] | None:
    if not key:
        return None
    row = conn.execute(
        text(
            "SELECT key, account_id, channel, contact_point_id, state, claimed_at FROM contact "
            "WHERE key = :k"
        ),
        {"k": key},
    ).first()
    return dict(row._mapping) if row is not None else None


def _mark_invalid(conn: Connection, contact_point_ids: Iterable[int], now: dt.datetime) -> None:
    ids = list(contact_point_ids)
    if ids:
        conn.execute(
            text(
                "UPDATE contact_point SET valid = :f, updated_at = :now WHERE id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"f": False, "now": now, "ids": ids},
        )


def _opt_out(
    conn: Connection, person_id: int, channel: str, scope: str, now: dt.datetime, source: str
) -> None:
    conn.execute(
        text(
            "INSERT INTO opt_out (person_id, channel, scope, recorded_at, source) VALUES "
            "(:p, :ch, :scope, :now, :src) ON CONFLICT (person_id, channel, scope) DO NOTHING"
        ),
        {"p": person_id, "ch": channel, "scope": scope, "now": now, "src": source},
    )


def apply_consumer_opt_out(
    conn: Connection, account_id: int, channels: Sequence[str], at: dt.datetime, source: str
) -> dict[str, int]:
    """A consumer's own request for no more messages on ``channels`` (the self-service page):
    an opt-out of every destination of each channel (scope ``*``) for the account's person,
    and their queued contacts on those channels suppressed, as an inbound STOP does. Returns
    the queued contacts suppressed per channel; an opt-out already on file is kept as it is."""
    row = conn.execute(
        text("SELECT person_id FROM account WHERE id = :a"), {"a": account_id}
    ).first()
    if row is None:
        return {}
    person_id = int(row[0])
    accounts = [int(r[0]) for r in conn.execute(
        text("SELECT id FROM account WHERE person_id = :p ORDER BY id"), {"p": person_id}
    )]  # fmt: skip
    evidence = {"source": source, "recorded_at": at.isoformat()}
    suppressed: dict[str, int] = {}
    for channel in channels:
        _opt_out(conn, person_id, channel, "*", at, source)
        suppressed[channel] = suppress_queued(conn, channel, accounts, None, at, evidence)
    return suppressed


def suppress_queued(
    conn: Connection,
    channel: str,
    account_ids: Sequence[int],
    contact_point_ids: Sequence[int] | None,
    now: dt.datetime,
    evidence: Mapping[str, Any],
) -> int:
    """Suppress the ``planned``/``deferred`` contacts of ``channel`` for these accounts (to these
    contact points only, unless None), each with a send-phase ``block`` decision naming the
    opt-out. ``claimed_at`` is set, as on a row the dispatcher suppressed, so a rerun of the
    same day's plan (which cannot see an opt-out recorded after its cutoff) leaves it alone."""
    if not account_ids:
        return 0
    sql = (
        "SELECT key, account_id, plan_date, config_version, pack_versions FROM contact "
        "WHERE account_id IN :accounts AND channel = :ch AND state IN ('planned', 'deferred')"
    )
    params: dict[str, Any] = {"accounts": list(account_ids), "ch": channel}
    binds: list[Any] = [bindparam("accounts", expanding=True)]
    if contact_point_ids is not None:
        sql += " AND contact_point_id IN :cps"
        params["cps"] = list(contact_point_ids)
        binds.append(bindparam("cps", expanding=True))
    rows = conn.execute(text(sql).bindparams(*binds), params).all()
    if not rows:
        return 0
    suppressed = conn.execute(
        text(
            "UPDATE contact SET state = 'suppressed', verdict = 'block', reasons = :r, "
            "defer_until = NULL, claimed_at = :now, updated_at = :now "
            "WHERE key IN :keys AND state IN ('planned', 'deferred')"
        ).bindparams(bindparam("keys", expanding=True)),
        {"r": OPTED_OUT, "now": now, "keys": [r[0] for r in rows]},
    ).rowcount
    record = {OPTED_OUT: {"outcome": "block", "citation": OPT_OUT_CITATION, "facts": dict(evidence)}}
    conn.execute(
        insert(PolicyDecision),
        [
            {
                "contact_key": r[0],
                "account_id": r[1],
                "phase": "send",
                "as_of": as_date(r[2]),
                "decided_at": now,
                "verdict": "block",
                "reasons": OPTED_OUT,
                "window_start": None,
                "window_end": None,
                "defer_until": None,
                "config_version": r[3],
                "pack_versions": r[4],
                "evidence": record,
            }
            for r in rows
        ],
    )
    return int(suppressed or 0)


# ---------------------------------------------------------------------------------------------
# Twilio status callbacks


def apply_twilio_status(
    engine: Engine,
    params: Mapping[str, str],
    ledger_key: str | None,
    *,
    now: Callable[[], dt.datetime] = utcnow,
) -> str:
    """Apply one Twilio status callback; returns what happened: ``applied``, ``duplicate``,
    ``ignored`` (a status we do not act on) or ``unknown`` (no contact carries that key)."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    error_code = (params.get("ErrorCode") or "").strip() or None
    outcome = TWILIO_STATUS_OUTCOME.get(status)
    if not sid or outcome is None:
        return "ignored"
    at = now()
    with engine.begin() as conn:
        contact = _contact(conn, ledger_key)
        if contact is None or contact["channel"] != "sms":
            log.info("twilio status %s for %s: no sms contact with that key", status, sid)
            return "unknown"
        key, account_id, cp_id = contact["key"], contact["account_id"], contact["contact_point_id"]
        ref = _ref("tw", sid, status)
        if not _record_event(conn, ref, account_id, at, "sms", cp_id, "status", outcome, key):
            return "duplicate"
        if status in TWILIO_SUCCESS:
            # `sending` too: the callback can beat the dispatcher's own record of the send; the
            # dispatcher's later update (matched on its claim token and `sending`) is then a no-op.
            if contact["state"] in ("sending", "uncertain"):
                sent_at = as_instant(contact["claimed_at"]) if contact["claimed_at"] else at
                row = SentRow(key, account_id, "sms", cp_id, sid, sent_at)
                mark_sent(conn, [row], None, "twilio", at)
            if status == "delivered":
                conn.execute(
                    text(
                        "UPDATE contact SET outcome = 'delivered', updated_at = :now "
                        "WHERE key = :k AND state = 'sent'"
                    ),
                    {"now": at, "k": key},
                )
        else:
            code = error_code or status
            conn.execute(
                text(
                    "UPDATE contact SET state = 'failed', outcome = 'undelivered', error_code = :c, "
                    "provider_id = :sid, error_detail = :d, updated_at = :now "
                    "WHERE key = :k AND state = 'uncertain'"
                ),
                {"c": code, "sid": sid, "d": f"twilio status {status}", "now": at, "k": key},
            )
            # A sent contact stays sent (it did go out); the failure is noted beside it.
            conn.execute(
                text(
                    "UPDATE contact SET outcome = 'undelivered', error_code = :c, updated_at = :now "
                    "WHERE key = :k AND state = 'sent'"
                ),
                {"c": code, "now": at, "k": key},
            )
            verdict = OUTCOMES.get(f"twilio:{error_code}") if error_code else None
            if verdict is not None and cp_id is not None:
                if verdict.destination_invalid:
                    _mark_invalid(conn, [cp_id], at)
                if verdict.opted_out:
                    person_id = conn.execute(
                        text("SELECT person_id FROM account WHERE id = :a"), {"a": account_id}
                    ).scalar_one()
                    _opt_out(conn, person_id, "sms", str(cp_id), at, "provider")
                    suppress_queued(
                        conn, "sms", [account_id], [cp_id], at,
                        {"source": "twilio_status", "error_code": error_code, "event_ref": ref},
                    )  # fmt: skip
    log.info("twilio status %s for %s applied to contact %s", status, sid, key[:16])
    return "applied"


# ---------------------------------------------------------------------------------------------
# Inbound SMS


def sms_texts() -> dict[str, str]:
    """The replies to HELP, STOP and START: ``config/channels.yaml`` keys ``sms.help_text``,
    ``sms.stop_text``, ``sms.start_text``, with defaults."""
    section = channel_settings("sms")
    return {
        HELP: str(section.get("help_text") or DEFAULT_HELP_TEXT),
        STOP: str(section.get("stop_text") or DEFAULT_STOP_TEXT),
        START: str(section.get("start_text") or DEFAULT_START_TEXT),
    }


def apply_inbound_sms(
    engine: Engine,
    params: Mapping[str, str],
    *,
    now: Callable[[], dt.datetime] = utcnow,
    texts: Mapping[str, str] | None = None,
) -> InboundResult:
    """Apply one inbound SMS (Twilio's ``From``, ``To``, ``Body``, ``MessageSid``).

    STOP: an SMS opt-out for the sending number of every person who has it (scope: that contact
    point), recorded at once, and every queued SMS to that number suppressed; when the words
    name calls ("stop calling me"), a calls opt-out for those persons too (scope ``*``) and their
    queued calls suppressed. START: the SMS opt-out of that number removed (opt-outs of other
    scopes stay). HELP: the help text. The reply is None for a replay (same ``MessageSid``) and
    for an ordinary reply, which a person reads.
    """
    sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid") or ""
    sender = (params.get("From") or "").strip()
    body = params.get("Body") or ""
    label = classify(body)
    # Twilio's Advanced Opt-Out reads the message too and says what it made of it.
    twilio_label = {"STOP": STOP, "START": START, "HELP": HELP}.get(
        (params.get("OptOutType") or "").upper()
    )
    if label is None and twilio_label is not None:
        label = twilio_label
    replies = dict(texts) if texts is not None else sms_texts()
    reply = replies.get(label) if label is not None else None
    at = now()
    outcome = {STOP: "opt_out", START: "opt_in", HELP: "help"}.get(label or "", "reply")
    result = InboundResult(label=label, reply=reply)
    with engine.begin() as conn:
        targets = conn.execute(
            text(
                "SELECT a.id, cp.id, cp.person_id FROM contact_point cp "
                "JOIN account a ON a.person_id = cp.person_id "
                "WHERE cp.kind = 'phone' AND cp.value = :v ORDER BY a.id, cp.id"
            ),
            {"v": sender},
        ).all()
        result.accounts = len({t[0] for t in targets})
        if not sid or not targets:
            log.info("inbound sms %s from %s: %s, number not on file", sid, mask_phone(sender), outcome)
            return result
        fresh = [
            _record_event(conn, _ref("tw-in", sid, str(a)), a, at, "sms", cp, "inbound", outcome, None)
            for a, cp, _p in targets
        ]
        if not any(fresh):
            result.duplicate, result.reply = True, None
            return result
        accounts = sorted({t[0] for t in targets})
        points = sorted({t[1] for t in targets})
        persons = sorted({(t[2], t[1]) for t in targets})
        evidence = {"source": "inbound_sms", "message_sid": sid, "recorded_at": at.isoformat()}
        if label == STOP:
            for person_id, cp_id in persons:
                _opt_out(conn, person_id, "sms", str(cp_id), at, "inbound_sms")
            result.opt_out_channels.append("sms")
            result.suppressed += suppress_queued(conn, "sms", accounts, points, at, evidence)
            if _NAMES_CALLS.search(body.casefold()):
                for person_id in sorted({p for p, _ in persons}):
                    _opt_out(conn, person_id, "call", "*", at, "inbound_sms")
                result.opt_out_channels.append("call")
                result.suppressed += suppress_queued(conn, "call", accounts, None, at, evidence)
        elif label == START:
            for person_id, cp_id in persons:
                conn.execute(
                    text(
                        "DELETE FROM opt_out WHERE person_id = :p AND channel = 'sms' AND scope = :s"
                    ),
                    {"p": person_id, "s": str(cp_id)},
                )
    log.info(
        "inbound sms %s from %s: %s for %d account(s), %d queued contact(s) suppressed",
        sid, mask_phone(sender), outcome, result.accounts, result.suppressed,
    )  # fmt: skip
    return result


# ---------------------------------------------------------------------------------------------
# SendGrid Event Webhook


def _event_time(event: Mapping[str, Any], default: dt.datetime) -> dt.datetime:
    ts = event.get("timestamp")
    try:
        return dt.datetime.fromtimestamp(int(ts), dt.UTC).replace(tzinfo=None)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return default


def _email_targets(conn: Connection, email: str) -> list[tuple[int, int, int]]:
    """(account id, contact point id, person id) of every account reachable at ``email``."""
    return [
        (r[0], r[1], r[2])
        for r in conn.execute(
            text(
                "SELECT a.id, cp.id, cp.person_id FROM contact_point cp "
                "JOIN account a ON a.person_id = cp.person_id "
                "WHERE cp.kind = 'email' AND cp.value = :v ORDER BY a.id, cp.id"
            ),
            {"v": email},
        )
    ]


def apply_sendgrid_events(
    engine: Engine,
    events: Sequence[Mapping[str, Any]],
    *,
    now: Callable[[], dt.datetime] = utcnow,
) -> EventsResult:
    """Apply a batch of SendGrid events, each idempotent on its ``sg_event_id``.

    delivered: an ``uncertain`` (or ``sending``) contact carrying ``ledger_key`` becomes
    ``sent``, outcome ``delivered``. bounce (except ``type: blocked``, a temporary refusal) and
    dropped: the address is marked invalid and an ``uncertain`` contact becomes ``failed``.
    spamreport, unsubscribe, group_unsubscribe: an email opt-out for that address (scope: its
    contact point) and its queued emails suppressed. Other events are ignored.
    """
    result = EventsResult()
    at = now()
    for event in events:
        kind = str(event.get("event") or "")
        event_id = str(event.get("sg_event_id") or "")
        if kind not in SENDGRID_EVENTS or not event_id:
            result.ignored += 1
            continue
        direction, outcome = SENDGRID_EVENTS[kind]
        email = str(event.get("email") or "").strip().lower()
        key = event.get("ledger_key")
        key = str(key) if key else None
        when = _event_time(event, at)
        with engine.begin() as conn:
            contact = _contact(conn, key)
            if contact is not None and contact["channel"] != "email":
                contact = None
            targets = _email_targets(conn, email) if email else []
            if contact is not None:
                # The contact's own account and contact point first; others sharing the address.
                own = (contact["account_id"], contact["contact_point_id"])
                targets = [t for t in targets if (t[0], t[1]) == own] + [
                    t for t in targets if (t[0], t[1]) != own
                ]
                if not any((t[0], t[1]) == own for t in targets):
                    targets.insert(0, (own[0], own[1], -1))
            if not targets:
                result.ignored += 1
                log.info("sendgrid %s for %s: address not on file", kind, mask_email(email))
                continue
            fresh = [
                _record_event(
                    conn, _ref("sg", event_id, str(a)), a, when, "email", cp, direction, outcome,
                    key if contact is not None and a == contact["account_id"] else None,
                )
                for a, cp, _p in targets
            ]  # fmt: skip
            if not any(fresh):
                result.duplicate += 1
                continue
            result.applied += 1
            points = sorted({t[1] for t in targets if t[1] is not None and t[2] != -1})
            if contact is not None:
                _apply_email_contact(conn, contact, kind, event, at)
            if kind == "bounce" and str(event.get("type") or "").lower() == "blocked":
                continue
            if kind in ("bounce", "dropped"):
                _mark_invalid(conn, points, at)
            elif kind in SENDGRID_OPT_OUT:
                for _a, cp_id, person_id in targets:
                    if person_id != -1:
                        _opt_out(conn, person_id, "email", str(cp_id), at, "email_" + kind)
                result.suppressed += suppress_queued(
                    conn, "email", sorted({t[0] for t in targets}), points, at,
                    {"source": "sendgrid_" + kind, "sg_event_id": event_id},
                )  # fmt: skip
        log.info("sendgrid %s for %s applied", kind, mask_email(email))
    return result


def _apply_email_contact(
    conn: Connection, contact: Mapping[str, Any], kind: str, event: Mapping[str, Any], at: dt.datetime
) -> None:
    key = contact["key"]
    provider_id = str(event.get("sg_message_id") or "")[:64] or None
    if kind == "delivered":
        if contact["state"] in ("sending", "uncertain"):
            sent_at = as_instant(contact["claimed_at"]) if contact["claimed_at"] else at
            row = SentRow(
                key, contact["account_id"], "email", contact["contact_point_id"], provider_id, sent_at
            )
            mark_sent(conn, [row], None, "sendgrid", at)
        conn.execute(
            text(
                "UPDATE contact SET outcome = 'delivered', updated_at = :now "
                "WHERE key = :k AND state = 'sent'"
            ),
            {"now": at, "k": key},
        )
    elif kind in ("bounce", "dropped"):
        detail = json.dumps({"event": kind, "type": event.get("type")})[:300]
        conn.execute(
            text(
                "UPDATE contact SET state = 'failed', outcome = :o, error_code = :c, "
                "error_detail = :d, provider_id = COALESCE(provider_id, :p), updated_at = :now "
                "WHERE key = :k AND state = 'uncertain'"
            ),
            {"o": kind, "c": f"sendgrid:{kind}", "d": detail, "p": provider_id, "now": at, "k": key},
        )
        conn.execute(
            text(
                "UPDATE contact SET outcome = :o, error_code = :c, updated_at = :now "
                "WHERE key = :k AND state = 'sent'"
            ),
            {"o": kind, "c": f"sendgrid:{kind}", "now": at, "k": key},
        )
