"""The records that refer to an account: payments and their reversals, holds, past contacts
(contact events) and opt-outs; their checks and their writing (docs/import-format.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, select

from outreach.portfolio.accounts import CONTACT_POINT, PERSON, AccountRef
from outreach.portfolio.rows import (
    INSERTED,
    REJECTED,
    SUPERSEDED,
    UNCHANGED,
    Item,
    Reject,
    Row,
    choice,
    date,
    email,
    instant,
    money,
    phone,
    required_text,
    text,
)
from outreach.portfolio.upsert import Want, collapse, select_in, stored, sync
from outreach.resolution.payments import (
    REASON_CODE,
    PaymentError,
    allocate,
    payment_ids,
    record_posted,
    reverse_payment,
)
from outreach.storage.models import AccountHold, ContactEvent, OptOut, Payment

SOURCE = "import"

PAYMENT = cast(Table, Payment.__table__)
HOLD = cast(Table, AccountHold.__table__)
EVENT = cast(Table, ContactEvent.__table__)
OPT_OUT = cast(Table, OptOut.__table__)

HOLD_KINDS = frozenset(
    {
        "dispute", "bankruptcy", "deceased", "cease_communication", "attorney", "hardship",
        "original_creditor_request", "breathing_space", "mental_health_crisis", "vulnerable",
        "instalment_plan",
    }
)  # fmt: skip
# The channels a contact event imported from the system of record may name (our own records
# of agency placements and legal referrals are not imported as contact events).
HISTORY_CHANNELS = frozenset({"sms", "email", "call", "letter"})
DIRECTIONS = frozenset({"outbound", "inbound"})
OUTCOMES = frozenset(
    {
        "conversation", "no_answer", "voicemail", "busy", "not_in_service", "wrong_number",
        "sent", "delivered", "bounced", "failed", "returned_mail", "third_party",
    }
)  # fmt: skip


@dataclass(slots=True, eq=False, kw_only=True)
class PaymentIn(Item):
    payment_ref: str
    account_ref: str
    paid_on: dt.date
    amount: Decimal


@dataclass(slots=True, eq=False, kw_only=True)
class ReversalIn(Item):
    payment_ref: str
    reversed_on: dt.date
    reason: str


@dataclass(slots=True, eq=False, kw_only=True)
class HoldIn(Item):
    account_ref: str
    kind: str
    started_on: dt.date
    ended_on: dt.date | None


@dataclass(slots=True, eq=False, kw_only=True)
class EventIn(Item):
    account_ref: str
    event_ref: str | None
    occurred_at: dt.datetime
    channel: str
    destination: str | None
    direction: str
    outcome: str
    # Normalised destination and the ref, when the row alone decides them (an E.164 number, an
    # email); a national-format number waits for its account's country.
    dest: str | None = None
    ref: str | None = None


@dataclass(slots=True, eq=False, kw_only=True)
class OptOutIn(Item):
    person_ref: str | None
    account_ref: str | None
    channel: str
    destination: str
    recorded_at: dt.datetime


def parse_payment(row: Row) -> PaymentIn:
    d = row.data
    return PaymentIn(
        row=row,
        payment_ref=required_text(d.get("payment_ref"), "payment_ref", 64),
        account_ref=required_text(d.get("account_ref"), "account_ref", 64),
        paid_on=cast(dt.date, date(d.get("paid_on"), "paid_on", required=True)),
        amount=money(d.get("amount"), "amount", positive=True),
    )


def parse_reversal(row: Row) -> ReversalIn:
    d = row.data
    reason = required_text(d.get("reason"), "reason", 32)
    if not REASON_CODE.match(reason):
        raise Reject("reason", "a code of letters, digits or _.:- (R01, chargeback, nsf)")
    return ReversalIn(
        row=row,
        payment_ref=required_text(d.get("payment_ref"), "payment_ref", 64),
        reversed_on=cast(dt.date, date(d.get("reversed_on"), "reversed_on", required=True)),
        reason=reason,
    )


def parse_hold(row: Row) -> HoldIn:
    d = row.data
    account_ref = required_text(d.get("account_ref"), "account_ref", 64)
    kind = choice(d.get("kind"), "kind", HOLD_KINDS)
    started_on = cast(dt.date, date(d.get("started_on"), "started_on", required=True))
    ended_on = date(d.get("ended_on"), "ended_on")
    if ended_on is not None and ended_on < started_on:
        raise Reject("ended_on", "before started_on")
    return HoldIn(
        row=row, account_ref=account_ref, kind=kind, started_on=started_on, ended_on=ended_on
    )


def parse_event(row: Row) -> EventIn:
    d = row.data
    event = EventIn(
        row=row,
        account_ref=required_text(d.get("account_ref"), "account_ref", 64),
        event_ref=text(d.get("event_ref"), "event_ref", max_len=64),
        occurred_at=instant(d.get("occurred_at"), "occurred_at"),
        channel=choice(d.get("channel"), "channel", HISTORY_CHANNELS),
        destination=text(d.get("destination"), "destination", max_len=300),
        direction=choice(d.get("direction"), "direction", DIRECTIONS, default="outbound"),
        outcome=choice(d.get("outcome"), "outcome", OUTCOMES),
    )
    if event.destination is None:
        event.dest = ""
    elif _destination_kind(event.channel) != "phone" or event.destination.startswith("+"):
        event.dest = _destination(event.channel, event.destination, None)
    if event.dest is not None:
        event.ref = event.event_ref or _derived_event_ref(event, event.dest)
    return event


def parse_opt_out(row: Row) -> OptOutIn:
    d = row.data
    person_ref = text(d.get("person_ref"), "person_ref", max_len=64)
    account_ref = text(d.get("account_ref"), "account_ref", max_len=64)
    if person_ref is None and account_ref is None:
        raise Reject("person_ref", "required (or account_ref)")
    return OptOutIn(
        row=row,
        person_ref=person_ref,
        account_ref=account_ref,
        channel=choice(d.get("channel"), "channel", HISTORY_CHANNELS),
        destination=required_text(d.get("destination"), "destination", 300),
        recorded_at=instant(d.get("recorded_at"), "recorded_at"),
    )


_DESTINATION_KINDS = {"sms": "phone", "call": "phone", "email": "email", "letter": "postal"}


def _destination_kind(channel: str) -> str:
    return _DESTINATION_KINDS[channel]


def _destination(channel: str, value: str, country: str | None) -> str:
    kind = _destination_kind(channel)
    if kind == "phone":
        return phone(value, "destination", country)
    if kind == "email":
        return email(value, "destination")
    return value


# --- writing ------------------------------------------------------------------------------------


def contact_point_ids(
    conn: Connection, person_ids: Collection[int]
) -> dict[tuple[int, str, str], int]:
    """The persons' contact point ids by (person, kind, value): what events and opt-outs name."""
    cols = [
        CONTACT_POINT.c.id,
        CONTACT_POINT.c.person_id,
        CONTACT_POINT.c.kind,
        CONTACT_POINT.c.value,
    ]
    return {
        (r.person_id, r.kind, r.value): r.id
        for r in select_in(conn, cols, CONTACT_POINT.c.person_id, person_ids)
    }


def write_payments(
    conn: Connection,
    payments: list[tuple[PaymentIn, AccountRef]],
    rejects: list[tuple[Row, str | None, str]],
) -> dict[str, int]:
    """Insert the new payments and allocate them to their accounts' open promises and
    instalments (outreach.resolution.payments; the day's settle task judges what they paid). A
    payment is posted once: the same ref again is unchanged, with another account, day or
    amount it is rejected. Returns the refs inserted, with their lines."""
    if not payments:
        return {}
    sqlite = conn.dialect.name == "sqlite"
    wants = collapse(
        Want(
            p.payment_ref,
            {
                "payment_ref": p.payment_ref,
                "account_id": a.id,
                "paid_on": p.paid_on,
                "amount": p.amount,
                "source": SOURCE,
            },
            p.final,
            p,
        )
        for p, a in payments
    )
    cols = [
        PAYMENT.c.id,
        PAYMENT.c.payment_ref,
        PAYMENT.c.account_id,
        PAYMENT.c.paid_on,
        PAYMENT.c.amount,
    ]
    existing = {r.payment_ref: r for r in select_in(conn, cols, PAYMENT.c.payment_ref, wants)}
    for key, want in list(wants.items()):
        old = existing.get(key)
        if old is None or not want.full:
            continue
        differs = next((name for name, column in _PAYMENT_FIELDS
                        if stored(want.values[column], sqlite) != getattr(old, column)), None)  # fmt: skip
        if differs is not None:
            del wants[key]
            want.source.status = REJECTED
            rejects.append((want.source.row, differs, _POSTED_ONCE))
    outcome = sync(
        conn, PAYMENT, wants.values(), existing, ("account_id", "paid_on", "amount"), None
    )
    _settle([p for p, _ in payments if p.status != REJECTED], wants, outcome,
            lambda p: p.payment_ref)  # fmt: skip
    inserted = {k: wants[k].source.row.line for k, o in outcome.items() if o == INSERTED}
    if inserted:
        ids = list(payment_ids(conn, inserted).values())
        record_posted(conn, ids, SOURCE)
        allocate(conn, ids, max(p.paid_on for p, _ in payments), SOURCE, settle=False)
    return inserted


_PAYMENT_FIELDS = (("account_ref", "account_id"), ("paid_on", "paid_on"), ("amount", "amount"))
_POSTED_ONCE = (
    "this payment_ref is already posted with another account_ref, paid_on or amount; a payment "
    "is corrected by a payment_reversal and a new payment_ref"
)
_UNKNOWN_PAYMENT = "unknown payment_ref: not in the database nor on an earlier line of this file"


def write_reversals(
    conn: Connection,
    reversals: list[ReversalIn],
    inserted: dict[str, int],
    rejects: list[tuple[Row, str | None, str]],
) -> None:
    """Reverse the payments the rows name (outreach.resolution.payments.reverse_payment): what
    they paid is taken back and their accounts settled for the day of the reversal. The same
    reversal again is unchanged; another day or reason for a reversed payment is rejected."""
    if not reversals:
        return
    refs = sorted({r.payment_ref for r in reversals})
    stored_rows = {
        row.payment_ref: dict(row._mapping)
        for row in conn.execute(
            select(PAYMENT.c.payment_ref, PAYMENT.c.paid_on, PAYMENT.c.status,
                   PAYMENT.c.reversed_on, PAYMENT.c.reversal_reason)
            .where(PAYMENT.c.payment_ref.in_(refs))
        )
    }  # fmt: skip
    for r in sorted(reversals, key=lambda r: r.row.line):
        old = stored_rows.get(r.payment_ref)
        if old is None or inserted.get(r.payment_ref, 0) > r.row.line:
            r.status = REJECTED
            rejects.append((r.row, "payment_ref", _UNKNOWN_PAYMENT))
        elif old["status"] == "reversed":
            if (old["reversed_on"], old["reversal_reason"]) == (r.reversed_on, r.reason):
                r.status = UNCHANGED
            else:
                r.status = REJECTED
                rejects.append((r.row, "reversed_on", "the payment is already reversed, on "
                                "another day or for another reason"))  # fmt: skip
        else:
            try:
                reverse_payment(conn, payment_ref=r.payment_ref, reversed_on=r.reversed_on,
                                reason=r.reason, actor=SOURCE)  # fmt: skip
            except PaymentError as exc:  # before the payment's day
                r.status = REJECTED
                rejects.append((r.row, exc.code, str(exc)))
                continue
            r.status = INSERTED
            old.update(status="reversed", reversed_on=r.reversed_on, reversal_reason=r.reason)


def write_holds(conn: Connection, holds: list[tuple[HoldIn, AccountRef]], sqlite: bool) -> None:
    if not holds:
        return
    wants = collapse(
        Want(
            (a.id, h.kind, stored(h.started_on, sqlite)),
            {
                "account_id": a.id,
                "kind": h.kind,
                "started_on": h.started_on,
                "ended_on": h.ended_on,
                "source": SOURCE,
            },  # fmt: skip
            h.final,
            h,
        )
        for h, a in holds
    )
    cols = [HOLD.c.id, HOLD.c.account_id, HOLD.c.kind, HOLD.c.started_on, HOLD.c.ended_on]
    rows = select_in(conn, cols, HOLD.c.account_id, {a.id for _, a in holds})
    existing = {(r.account_id, r.kind, r.started_on): r for r in rows}
    outcome = sync(conn, HOLD, wants.values(), existing, ("ended_on",), None)
    keys = {id(h): (a.id, h.kind, stored(h.started_on, sqlite)) for h, a in holds}
    _settle([h for h, _ in holds], wants, outcome, lambda h: keys[id(h)])


def write_events(
    conn: Connection,
    events: list[tuple[EventIn, AccountRef]],
    contact_ids: Mapping[tuple[int, str, str], int],
    rejects: list[tuple[Row, str | None, str]],
) -> None:
    wanted: list[tuple[EventIn, Want]] = []
    for e, a in events:
        if e.dest is None:  # a national-format number: read in the account's country
            try:
                e.dest = _destination(e.channel, cast(str, e.destination), a.country)
            except Reject as rej:
                e.status = REJECTED
                rejects.append((e.row, rej.field, rej.reason))
                continue
            e.ref = e.event_ref or _derived_event_ref(e, e.dest)
        dest, ref = e.dest, cast(str, e.ref)
        kind = _destination_kind(e.channel)
        # Unknown destinations are kept (contact_point_id NULL): dropping a past call would
        # undercount attempts for the frequency rules, the unsafe direction.
        cp_id = contact_ids.get((a.person_id, kind, dest)) if dest else None
        values = {
            "event_ref": ref, "account_id": a.id, "occurred_at": e.occurred_at,
            "channel": e.channel, "contact_point_id": cp_id, "direction": e.direction,
            "outcome": e.outcome, "source": SOURCE, "ledger_key": None,
        }  # fmt: skip
        wanted.append((e, Want(ref, values, e.final, e)))
    if not wanted:
        return
    wants = collapse(w for _, w in wanted)
    compare = (
        "account_id",
        "occurred_at",
        "channel",
        "contact_point_id",
        "direction",
        "outcome",
    )
    cols = [EVENT.c.id, EVENT.c.event_ref, *(EVENT.c[c] for c in compare)]
    existing = {r.event_ref: r for r in select_in(conn, cols, EVENT.c.event_ref, wants)}
    outcome = sync(conn, EVENT, wants.values(), existing, compare, None)
    keys = {id(e): w.key for e, w in wanted}
    _settle([e for e, _ in wanted], wants, outcome, lambda e: keys[id(e)])


def opt_out_people(
    conn: Connection,
    opt_outs: list[OptOutIn],
    known: Mapping[str, AccountRef],
    new_accounts: Mapping[str, int],
    new_persons: Mapping[str, int],
    rejects: list[tuple[Row, str | None, str]],
) -> list[tuple[OptOutIn, AccountRef]]:
    """Resolve each opt-out to its person (as an AccountRef carrying person id and country)."""
    refs = {o.person_ref for o in opt_outs if o.person_ref}
    cols = [PERSON.c.id, PERSON.c.person_ref, PERSON.c.country]
    people = {r.person_ref: r for r in select_in(conn, cols, PERSON.c.person_ref, refs)}
    out: list[tuple[OptOutIn, AccountRef]] = []
    for o in opt_outs:
        line = o.row.line
        account = None
        if o.account_ref:
            account = known.get(o.account_ref)
            if account is None or new_accounts.get(o.account_ref, 0) > line:
                o.status = REJECTED
                rejects.append((o.row, "account_ref", UNKNOWN_ACCOUNT))
                continue
        if o.person_ref:
            person = people.get(o.person_ref)
            if person is None or new_persons.get(o.person_ref, 0) > line:
                o.status = REJECTED
                rejects.append((o.row, "person_ref", _UNKNOWN_PERSON))
                continue
            if account is not None and account.person_id != person.id:
                o.status = REJECTED
                rejects.append((o.row, "account_ref", "belongs to another person_ref"))
                continue
            account = account or AccountRef(0, person.id, person.country)
        out.append((o, cast(AccountRef, account)))
    return out


def write_opt_outs(
    conn: Connection,
    opt_outs: list[tuple[OptOutIn, AccountRef]],
    contact_ids: Mapping[tuple[int, str, str], int],
    rejects: list[tuple[Row, str | None, str]],
    sqlite: bool,
) -> None:
    wanted: list[tuple[OptOutIn, tuple[int, str, str]]] = []
    for o, a in opt_outs:
        scope = "*"
        if o.destination != "*":
            try:
                dest = _destination(o.channel, o.destination, a.country)
            except Reject as rej:
                o.status = REJECTED
                rejects.append((o.row, rej.field, rej.reason))
                continue
            cp_id = contact_ids.get((a.person_id, _destination_kind(o.channel), dest))
            if cp_id is None:
                o.status = REJECTED
                rejects.append(
                    (
                        o.row,
                        "destination",
                        "not a contact point of this person; use * for the whole channel",
                    )
                )
                continue
            scope = str(cp_id)
        wanted.append((o, (a.person_id, o.channel, scope)))
    if not wanted:
        return
    # An opt-out holds from the first time it was recorded, whatever order rows come in:
    # keeping the earliest instant makes the result independent of order and of re-imports.
    earliest: dict[tuple[int, str, str], OptOutIn] = {}
    for o, key in wanted:
        if key not in earliest or o.recorded_at < earliest[key].recorded_at:
            earliest[key] = o
    cols = [
        OPT_OUT.c.id,
        OPT_OUT.c.person_id,
        OPT_OUT.c.channel,
        OPT_OUT.c.scope,
        OPT_OUT.c.recorded_at,
    ]
    rows = select_in(conn, cols, OPT_OUT.c.person_id, {k[0] for k in earliest})
    existing = {(r.person_id, r.channel, r.scope): r for r in rows}
    wants: dict[Any, Want] = {}
    for key, o in earliest.items():
        old = existing.get(key)
        values = {
            "person_id": key[0], "channel": key[1], "scope": key[2],
            "recorded_at": o.recorded_at, "source": SOURCE,
        }  # fmt: skip
        full = old is not None and stored(o.recorded_at, sqlite) < old.recorded_at
        wants[key] = Want(key, values, full, o)
    outcome = sync(conn, OPT_OUT, wants.values(), existing, ("recorded_at",), None)
    for o, key in wanted:
        o.status = outcome[key] if wants[key].source is o else UNCHANGED


UNKNOWN_ACCOUNT = "unknown account_ref: not in the database nor on an earlier line of this file"
_UNKNOWN_PERSON = "unknown person_ref: not in the database nor on an earlier line of this file"


def _settle(
    items: Sequence[Item],
    wants: Mapping[Any, Want],
    outcome: Mapping[Any, str],
    key_of: Any,
) -> None:
    for item in items:
        key = key_of(item)
        if not item.final:
            item.status = SUPERSEDED
        elif wants[key].source is item:
            item.status = outcome[key]
        else:
            item.status = UNCHANGED  # an identical event earlier in the chunk inserted it


def _derived_event_ref(event: EventIn, destination: str) -> str:
    # Every field is part of the identity: two rows that differ in anything are two events, so
    # an event without a ref never changes and re-importing it is a no-op.
    parts = (
        event.account_ref,
        event.occurred_at.isoformat(),
        event.channel,
        destination,
        event.direction,
        event.outcome,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
