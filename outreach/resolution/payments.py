"""Payments in the resolution loop: posted once per payment ref (the processor's webhook, an
import, ops), allocated to the account's open promises and unpaid instalments oldest due first,
and reversed (a returned or charged-back payment) by taking back what each allocation paid.
Posting, allocating and reversing each record a ``resolution_event``; allocating and reversing
settle the account at once (outreach.resolution.settle)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update

from outreach.kernel.clock import utcnow
from outreach.resolution.events import EVENT, Transition, record
from outreach.resolution.promises import reopen
from outreach.resolution.settle import settle_accounts
from outreach.storage.models import (
    Account,
    Arrangement,
    ArrangementInstalment,
    Payment,
    PaymentAllocation,
    Promise,
)

ACCOUNT = cast(Table, Account.__table__)
PAYMENT = cast(Table, Payment.__table__)
ALLOCATION = cast(Table, PaymentAllocation.__table__)
PROMISE = cast(Table, Promise.__table__)
ARRANGEMENT = cast(Table, Arrangement.__table__)
INSTALMENT = cast(Table, ArrangementInstalment.__table__)

CENT = Decimal("0.01")
# What is left of a payment once every open promise and unpaid instalment is paid: an
# allocation row of its own, so that a payment's allocations always add up to its amount and a
# payment once allocated is never allocated again.
UNALLOCATED = "unallocated"
# A reversal's reason is a code from the processor or ops (R01, chargeback, nsf): never text
# that could carry personal data.
REASON_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,32}$")
SOURCES = ("import", "webhook", "ops", "console", "agent", "self_service", "agency")


class PaymentError(ValueError):
    """A payment that cannot be posted or reversed as asked; ``code`` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PaymentConflict(PaymentError):
    """The payment ref is already posted with another account or amount."""


class PaymentNotFound(PaymentError):
    """No payment has this ref."""


def cents(amount: Decimal | int | str) -> Decimal:
    return Decimal(amount).quantize(CENT)


def post_payment(
    conn: Connection,
    *,
    payment_ref: str,
    account_id: int,
    amount: Decimal,
    paid_on: dt.date,
    source: str,
    actor: str,
    received_at: dt.datetime | None = None,
) -> bool:
    """Record a payment once: True when new. The same ref again with the same account and
    amount changes nothing (False); with another account or amount it is refused
    (PaymentConflict). Allocation is a step of its own (``allocate``)."""
    amount = cents(amount)
    if amount <= 0:
        raise PaymentError("amount", "a payment's amount must be more than 0")
    if not payment_ref or len(payment_ref) > 64:
        raise PaymentError("payment_ref", "a payment ref has 1 to 64 characters")
    if source not in SOURCES:
        raise PaymentError("source", f"source must be one of: {', '.join(SOURCES)}")
    old = conn.execute(
        select(PAYMENT.c.account_id, PAYMENT.c.amount).where(PAYMENT.c.payment_ref == payment_ref)
    ).first()
    if old is not None:
        if old.account_id != account_id or cents(old.amount) != amount:
            raise PaymentConflict(
                "conflict",
                "this payment ref is already posted with another account or amount; reverse it "
                "and post the correction under a new ref",
            )
        return False
    conn.execute(
        insert(PAYMENT).values(
            payment_ref=payment_ref, account_id=account_id, paid_on=paid_on, amount=amount,
            source=source, status="posted", received_at=received_at or utcnow(),
        )  # fmt: skip
    )
    record(conn, [Transition(account_id, "payment", payment_ref, None, "posted", actor,
                             f"posted by {source}")])  # fmt: skip
    return True


@dataclass(slots=True)
class _Target:
    """An open promise or an unpaid instalment, and what is still owed on it."""

    kind: str  # promise | instalment
    id: int
    ref: str
    due_on: dt.date
    amount: Decimal
    paid: Decimal
    state: str
    # The day it was made (a promise) or accepted (a plan): a payment of an earlier day pays
    # what was owed then, not this.
    since: dt.date

    @property
    def owed(self) -> Decimal:
        return max(Decimal(0), self.amount - self.paid)


def _day_of(instant: Any) -> dt.date:
    """The UTC day of a stored instant (a datetime, or SQLite's text of one)."""
    if isinstance(instant, dt.datetime):
        return instant.date()
    return dt.datetime.fromisoformat(str(instant)).date()


def _targets(conn: Connection, account_id: int) -> list[_Target]:
    """The account's open promises and the unpaid instalments of its active arrangement,
    oldest due first (an instalment before a promise due the same day: it is contractual)."""
    found: list[tuple[tuple[Any, ...], _Target]] = []
    for r in conn.execute(
        select(PROMISE.c.id, PROMISE.c.promise_ref, PROMISE.c.due_on, PROMISE.c.amount,
               PROMISE.c.paid_amount, PROMISE.c.status, PROMISE.c.made_at,
               PROMISE.c.recorded_at)  # fmt: skip
        .where(PROMISE.c.account_id == account_id, PROMISE.c.status == "open")
    ):
        t = _Target("promise", r.id, r.promise_ref or f"promise-{r.id}", r.due_on,
                    cents(r.amount), cents(r.paid_amount or 0), r.status,
                    _day_of(r.made_at or r.recorded_at))  # fmt: skip
        found.append(((r.due_on, 1, r.id), t))
    for i in conn.execute(
        select(INSTALMENT.c.id, INSTALMENT.c.seq, INSTALMENT.c.due_on, INSTALMENT.c.amount,
               INSTALMENT.c.paid_amount, INSTALMENT.c.state, ARRANGEMENT.c.arrangement_ref,
               ARRANGEMENT.c.accepted_at, ARRANGEMENT.c.created_at)
        .join(ARRANGEMENT, ARRANGEMENT.c.id == INSTALMENT.c.arrangement_id)
        .where(ARRANGEMENT.c.account_id == account_id, ARRANGEMENT.c.state == "active",
               INSTALMENT.c.state.in_(("due", "partly_paid", "missed")))
    ):  # fmt: skip
        t = _Target("instalment", i.id, f"{i.arrangement_ref}#{i.seq}", i.due_on,
                    cents(i.amount), cents(i.paid_amount or 0), i.state,
                    _day_of(i.accepted_at or i.created_at))  # fmt: skip
        found.append(((i.due_on, 0, i.seq), t))
    return [t for _, t in sorted(found, key=lambda f: f[0])]


def allocate(
    conn: Connection,
    payment_ids: Collection[int],
    day: dt.date,
    actor: str = "system",
    *,
    settle: bool = True,
) -> dict[str, int]:
    """Allocate each payment (posted, not yet allocated) to its account's open promises and
    unpaid instalments, oldest due first across both; what is left is ``unallocated`` (it
    still reduces what is owed: outreach.kernel.facts). Then settle the accounts at once for
    ``day`` (unless ``settle`` is False: an import leaves that to the day's settle task).
    Idempotent: a payment with allocations is not allocated again. Set-based: an account with
    nothing open costs no query of its own. Returns counts."""
    counts = {"payments": 0, "allocations": 0}
    ids = sorted(set(payment_ids))
    if not ids:
        return counts
    done = set(
        conn.execute(select(ALLOCATION.c.payment_id).where(ALLOCATION.c.payment_id.in_(ids)))
        .scalars()
    )  # fmt: skip
    payments = [
        p for p in conn.execute(
            select(PAYMENT.c.id, PAYMENT.c.payment_ref, PAYMENT.c.account_id, PAYMENT.c.amount,
                   PAYMENT.c.paid_on)
            .where(PAYMENT.c.id.in_(ids), PAYMENT.c.status == "posted")
            .order_by(PAYMENT.c.paid_on, PAYMENT.c.id)
        )
        if p.id not in done
    ]  # fmt: skip
    if not payments:
        return counts
    accounts = sorted({p.account_id for p in payments})
    open_accounts = _accounts_with_targets(conn, accounts)
    now = utcnow()
    targets: dict[int, list[_Target]] = {}
    allocations: list[dict[str, Any]] = []
    changes: list[Transition] = []
    for p in payments:
        if p.account_id in open_accounts and p.account_id not in targets:
            targets[p.account_id] = _targets(conn, p.account_id)
        left = cents(p.amount)
        spread: list[str] = []
        moved: list[Transition] = []
        for t in targets.get(p.account_id, ()):
            take = min(left, t.owed)
            if take <= 0 or t.since > p.paid_on:
                continue
            left -= take
            t.paid += take
            allocations.append({"payment_id": p.id, "target": t.kind, "target_id": t.id,
                                "amount": take, "allocated_at": now})  # fmt: skip
            spread.append(f"{t.kind} {t.ref} {take}")
            counts["allocations"] += 1
            if t.kind == "promise":
                conn.execute(update(PROMISE).where(PROMISE.c.id == t.id)
                             .values(paid_amount=t.paid, updated_at=now))  # fmt: skip
                continue
            # A missed instalment stays missed until paid in full (the plan counted it).
            state = "paid" if t.paid >= t.amount else (
                "missed" if t.state == "missed" else "partly_paid")  # fmt: skip
            conn.execute(
                update(INSTALMENT).where(INSTALMENT.c.id == t.id)
                .values(paid_amount=t.paid, state=state,
                        paid_on=p.paid_on if state == "paid" else None)
            )  # fmt: skip
            if state != t.state:
                moved.append(Transition(p.account_id, "instalment", t.ref, t.state, state, actor,
                                        f"payment {p.payment_ref}"))  # fmt: skip
                t.state = state
        if left > 0:
            allocations.append({"payment_id": p.id, "target": UNALLOCATED, "target_id": 0,
                                "amount": left, "allocated_at": now})  # fmt: skip
            spread.append(f"{UNALLOCATED} {left}")
        if p.account_id in targets:
            targets[p.account_id] = [t for t in targets[p.account_id] if t.owed > 0]
        changes.append(Transition(p.account_id, "payment", p.payment_ref, "posted", "allocated",
                                  actor, "; ".join(spread)))  # fmt: skip
        changes.extend(moved)
        counts["payments"] += 1
    conn.execute(insert(ALLOCATION), allocations)
    record(conn, changes, at=now)
    if settle:
        settle_accounts(conn, day, accounts, actor)
    return counts


def _accounts_with_targets(conn: Connection, accounts: Sequence[int]) -> set[int]:
    """Of these accounts, those with an open promise or an active arrangement."""
    found: set[int] = set()
    for start in range(0, len(accounts), 5000):
        batch = accounts[start : start + 5000]
        found.update(conn.execute(
            select(PROMISE.c.account_id).where(PROMISE.c.account_id.in_(batch),
                                               PROMISE.c.status == "open")
            .union(select(ARRANGEMENT.c.account_id).where(
                ARRANGEMENT.c.account_id.in_(batch), ARRANGEMENT.c.state == "active"))
        ).scalars())  # fmt: skip
    return found


def record_posted(conn: Connection, payment_ids: Collection[int], actor: str) -> int:
    """The ``posted`` event of payments written set-based (an import), as post_payment records
    it for one."""
    ids = sorted(set(payment_ids))
    if not ids:
        return 0
    rows = conn.execute(
        select(PAYMENT.c.account_id, PAYMENT.c.payment_ref, PAYMENT.c.source)
        .where(PAYMENT.c.id.in_(ids))
    )  # fmt: skip
    return record(conn, [Transition(r.account_id, "payment", r.payment_ref, None, "posted",
                                    actor, f"posted by {r.source}") for r in rows])  # fmt: skip


def reverse_payment(
    conn: Connection,
    *,
    payment_ref: str,
    reversed_on: dt.date,
    reason: str,
    actor: str,
) -> bool:
    """Reverse a payment (returned, charged back): it no longer counts from ``reversed_on``;
    what its allocations paid is taken back, so a kept promise opens again (or is judged again
    when its pause is over), an instalment is due again and a completed arrangement active
    again; then the account is settled for ``reversed_on``. True when reversed now, False when
    it already was (PaymentNotFound for an unknown ref)."""
    if not REASON_CODE.match(reason or ""):
        raise PaymentError("reason", "a reversal reason is a code of 1 to 32 letters, digits "
                                     "or _.:-")  # fmt: skip
    p = conn.execute(
        select(PAYMENT.c.id, PAYMENT.c.account_id, PAYMENT.c.status, PAYMENT.c.paid_on)
        .where(PAYMENT.c.payment_ref == payment_ref)
    ).first()
    if p is None:
        raise PaymentNotFound("not_found", "no payment has this ref")
    if p.status == "reversed":
        return False
    if reversed_on < p.paid_on:
        raise PaymentError("reversed_on", "a payment cannot be reversed before it was paid")
    now = utcnow()
    conn.execute(
        update(PAYMENT).where(PAYMENT.c.id == p.id)
        .values(status="reversed", reversed_on=reversed_on, reversal_reason=reason)
    )  # fmt: skip
    why = f"payment {payment_ref} reversed: {reason}"
    # The reversal first, then what it reopens (the promises' own rule records its change).
    record(conn, [Transition(p.account_id, "payment", payment_ref, p.status, "reversed", actor,
                             reason)], at=now)  # fmt: skip
    changes: list[Transition] = []
    allocations = conn.execute(
        select(ALLOCATION.c.id, ALLOCATION.c.target, ALLOCATION.c.target_id, ALLOCATION.c.amount)
        .where(ALLOCATION.c.payment_id == p.id, ALLOCATION.c.reversed.is_(False))
        .order_by(ALLOCATION.c.id)
    ).all()  # fmt: skip
    if allocations:
        conn.execute(update(ALLOCATION).where(ALLOCATION.c.id.in_([a.id for a in allocations]))
                     .values(reversed=True))  # fmt: skip
    reopened: set[int] = set()
    for a in allocations:
        if a.target == "promise":
            changes.extend(_take_back_promise(conn, a.target_id, cents(a.amount), reversed_on,
                                              actor, why, now))  # fmt: skip
        elif a.target == "instalment":
            arrangement_id, change = _take_back_instalment(conn, a.target_id, cents(a.amount),
                                                           actor, why)  # fmt: skip
            changes.extend(change)
            reopened.add(arrangement_id)
    for arrangement_id in sorted(reopened):
        changes.extend(_reopen_arrangement(conn, arrangement_id, actor, why, now))
    record(conn, changes, at=now)
    settle_accounts(conn, reversed_on, [p.account_id], actor)
    return True


def _take_back_promise(
    conn: Connection, promise_id: int, amount: Decimal, day: dt.date, actor: str, why: str,
    now: dt.datetime,
) -> list[Transition]:  # fmt: skip
    """Lower what the promise was paid; a kept one opens again or is judged again by the
    promises' own rule (outreach.resolution.promises.reopen, which records its change)."""
    paid = conn.execute(select(PROMISE.c.paid_amount).where(PROMISE.c.id == promise_id)).scalar()
    left = max(Decimal(0), cents(paid or 0) - amount)
    conn.execute(update(PROMISE).where(PROMISE.c.id == promise_id)
                 .values(paid_amount=left, updated_at=now))  # fmt: skip
    reopen(conn, promise_id, actor, why, day)
    return []


def _take_back_instalment(
    conn: Connection, instalment_id: int, amount: Decimal, actor: str, why: str
) -> tuple[int, list[Transition]]:
    r = conn.execute(
        select(INSTALMENT.c.arrangement_id, INSTALMENT.c.seq, INSTALMENT.c.amount,
               INSTALMENT.c.paid_amount, INSTALMENT.c.state, ARRANGEMENT.c.account_id,
               ARRANGEMENT.c.arrangement_ref)
        .join(ARRANGEMENT, ARRANGEMENT.c.id == INSTALMENT.c.arrangement_id)
        .where(INSTALMENT.c.id == instalment_id)
    ).one()  # fmt: skip
    paid = max(Decimal(0), cents(r.paid_amount or 0) - amount)
    ref = f"{r.arrangement_ref}#{r.seq}"
    # Back to what it was before it was paid: missed if it had been missed (its record says so),
    # else due or partly paid; whether it is missed now is the day's settling to judge
    # (outreach.resolution.arrangements owns missed instalments and broken plans).
    if paid >= cents(r.amount):
        state = "paid"
    elif r.state == "missed" or _was_missed(conn, r.account_id, ref):
        state = "missed"
    else:
        state = "partly_paid" if paid > 0 else "due"
    conn.execute(
        update(INSTALMENT).where(INSTALMENT.c.id == instalment_id).values(
            paid_amount=paid, state=state, paid_on=None if state != "paid" else INSTALMENT.c.paid_on
        )
    )
    if state == r.state:
        return r.arrangement_id, []
    return r.arrangement_id, [Transition(r.account_id, "instalment", ref, r.state, state, actor,
                                         why)]  # fmt: skip


def _was_missed(conn: Connection, account_id: int, ref: str) -> bool:
    """The instalment's last move to paid came from missed (a late payment)."""
    last = conn.execute(
        select(EVENT.c.from_state).where(
            EVENT.c.account_id == account_id, EVENT.c.subject == "instalment",
            EVENT.c.subject_ref == ref, EVENT.c.to_state == "paid",
        ).order_by(EVENT.c.id.desc()).limit(1)
    ).scalar()  # fmt: skip
    return last == "missed"


def _reopen_arrangement(
    conn: Connection, arrangement_id: int, actor: str, why: str, now: dt.datetime
) -> list[Transition]:
    """A completed arrangement whose instalments are no longer all paid is active again (unless
    the account has another active one: then it stays as it is, and says so)."""
    r = conn.execute(
        select(ARRANGEMENT.c.account_id, ARRANGEMENT.c.arrangement_ref, ARRANGEMENT.c.state)
        .where(ARRANGEMENT.c.id == arrangement_id)
    ).one()  # fmt: skip
    if r.state != "completed":
        return []
    unpaid = conn.execute(
        select(INSTALMENT.c.id).where(INSTALMENT.c.arrangement_id == arrangement_id,
                                      INSTALMENT.c.state != "paid").limit(1)
    ).first()  # fmt: skip
    if unpaid is None:
        return []
    other = conn.execute(
        select(ARRANGEMENT.c.id).where(ARRANGEMENT.c.account_id == r.account_id,
                                       ARRANGEMENT.c.state == "active").limit(1)
    ).first()  # fmt: skip
    if other is not None:
        return [Transition(r.account_id, "arrangement", r.arrangement_ref, "completed",
                           "completed", actor, f"{why}; another arrangement is active")]
    conn.execute(
        update(ARRANGEMENT).where(ARRANGEMENT.c.id == arrangement_id)
        .values(state="active", ended_on=None, updated_at=now)
    )  # fmt: skip
    return [Transition(r.account_id, "arrangement", r.arrangement_ref, "completed", "active",
                       actor, why)]  # fmt: skip


def payment_ids(conn: Connection, refs: Collection[str]) -> dict[str, int]:
    """The ids of the payments with these refs, by ref (an unknown ref is absent)."""
    if not refs:
        return {}
    rows = conn.execute(
        select(PAYMENT.c.payment_ref, PAYMENT.c.id).where(PAYMENT.c.payment_ref.in_(list(refs)))
    )
    return {r.payment_ref: int(r.id) for r in rows}


def account_for_payment(conn: Connection, account_ref: str) -> tuple[int, str] | None:
    """The id and currency of the account a payment names, or None."""
    row = conn.execute(
        select(ACCOUNT.c.id, ACCOUNT.c.currency).where(ACCOUNT.c.account_ref == account_ref)
    ).first()
    return None if row is None else (int(row.id), str(row.currency))
