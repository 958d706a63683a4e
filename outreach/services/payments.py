"""Payments' use cases, one transaction each: post a payment to an account and allocate it (a
payment processor's webhook, ``outreach payments post``), reverse one (``outreach payments
reverse``, the webhook's ``payment.reversed``). The account is settled at once, so the next plan
and the send-time gate see the payment (outreach.resolution.payments)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from contact_channels.credentials import get_connection
from outreach.kernel.clock import utcnow
from outreach.resolution.payments import (
    PaymentConflict,
    PaymentError,
    PaymentNotFound,
    account_for_payment,
    allocate,
    payment_ids,
    post_payment,
    reverse_payment,
)

__all__ = [
    "CONN_ID", "PaymentConflict", "PaymentError", "PaymentNotFound", "Posted", "UnknownAccount",
    "apply_processor_event", "post", "reverse", "signing_secret",
]  # fmt: skip

# The Airflow connection whose password signs the payment processor's webhook.
CONN_ID = "outreach_payments"
EVENTS = ("payment.posted", "payment.reversed")


class UnknownAccount(LookupError):
    """No account has this ref (the message never repeats it)."""


@dataclass(frozen=True, slots=True)
class Posted:
    payment_ref: str
    new: bool  # False: the same payment was posted before, nothing changed
    allocations: int  # promises and instalments it paid into


def signing_secret() -> str | None:
    """The processor's signing secret: the password of the ``outreach_payments`` connection."""
    conn = get_connection(CONN_ID)
    return conn.password if conn is not None and conn.password else None


def post(
    engine: Engine,
    *,
    account_ref: str,
    payment_ref: str,
    amount: Decimal,
    paid_on: dt.date,
    source: str,
    actor: str,
    currency: str | None = None,
    received_at: dt.datetime | None = None,
    as_of: dt.date | None = None,
) -> Posted:
    """Post a payment, allocate it and settle its account for ``as_of`` (default: today, UTC).
    UnknownAccount, PaymentConflict (the ref posted with another account or amount) or
    PaymentError (a bad value) when refused."""
    day = as_of or utcnow().date()
    if paid_on > day + dt.timedelta(days=1):  # a day's grace for time zones
        raise PaymentError("paid_on", "a payment cannot be paid after today")
    args = (account_ref, payment_ref, amount, paid_on, source, actor, currency, received_at, day)
    try:
        return _post(engine, *args)
    except IntegrityError:
        # The same payment posted by another request at the same instant: it is there now,
        # and this one is its duplicate (or a conflict).
        return _post(engine, *args)


def _post(
    engine: Engine, account_ref: str, payment_ref: str, amount: Decimal, paid_on: dt.date,
    source: str, actor: str, currency: str | None, received_at: dt.datetime | None,
    day: dt.date,
) -> Posted:  # fmt: skip
    with engine.begin() as conn:
        account = account_for_payment(conn, account_ref)
        if account is None:
            raise UnknownAccount("unknown account")
        account_id, account_currency = account
        if currency is not None and currency.upper() != account_currency:
            raise PaymentError("currency", "the currency is not the account's")
        new = post_payment(conn, payment_ref=payment_ref, account_id=account_id, amount=amount,
                           paid_on=paid_on, source=source, actor=actor,
                           received_at=received_at)  # fmt: skip
        counts = {"allocations": 0}
        if new:
            ids = payment_ids(conn, [payment_ref]).values()
            counts = allocate(conn, list(ids), max(day, paid_on), actor)
    return Posted(payment_ref, new, counts["allocations"])


def reverse(
    engine: Engine, *, payment_ref: str, reversed_on: dt.date, reason: str, actor: str
) -> bool:
    """Reverse a payment and settle its account; True when reversed now, False when it already
    was. PaymentNotFound or PaymentError when refused."""
    with engine.begin() as conn:
        return reverse_payment(conn, payment_ref=payment_ref, reversed_on=reversed_on,
                               reason=reason, actor=actor)  # fmt: skip


def apply_processor_event(
    engine: Engine, event: Mapping[str, Any], now: dt.datetime
) -> dict[str, str]:
    """One verified event of the payment processor's webhook (docs/webhooks.md): posts or
    reverses the payment; ``{"status": "posted" | "reversed" | "duplicate"}``. Raises
    PaymentError for a bad field, UnknownAccount, PaymentNotFound, PaymentConflict."""
    kind = _field(event, "event")
    if kind not in EVENTS:
        raise PaymentError("event", f"event must be one of: {', '.join(EVENTS)}")
    payment_ref = _field(event, "payment_id")
    if kind == "payment.reversed":
        reason = event.get("reason")
        new = reverse(
            engine, payment_ref=payment_ref, reversed_on=_date(event, "reversed_on", now.date()),
            reason=reason if isinstance(reason, str) and reason else "reversed",
            actor="processor",
        )  # fmt: skip
        return {"status": "reversed" if new else "duplicate"}
    try:
        amount = Decimal(str(event.get("amount")))
    except InvalidOperation:
        raise PaymentError("amount", "amount is not a number") from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise PaymentError("amount", "amount is not money (at most two decimals)")
    posted = post(
        engine, account_ref=_field(event, "account_ref"), payment_ref=payment_ref, amount=amount,
        paid_on=_date(event, "paid_on", None), source="webhook", actor="processor",
        currency=_field(event, "currency"), received_at=now, as_of=now.date(),
    )  # fmt: skip
    return {"status": "posted" if posted.new else "duplicate"}


def _field(event: Mapping[str, Any], name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise PaymentError(name, f"{name} is required (text of at most 64 characters)")
    return value.strip()


def _date(event: Mapping[str, Any], name: str, default: dt.date | None) -> dt.date:
    value = event.get(name)
    if value in (None, "") and default is not None:
        return default
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise PaymentError(name, f"{name} is not an ISO date (YYYY-MM-DD)") from None
