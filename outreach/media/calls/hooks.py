"""What a queued call is worth, and the dispatcher's hooks for ``call``: the task's account, number,
priority and window (``CallQueueHooks``). The formula: docs/call-queue.md."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from contact_channels.media_fields import CallFields
from outreach.kernel.facts import as_date, as_instant
from outreach.kernel.ledger import DueContact
from outreach.planning.kinds import ChannelHooks, MessageContext
from outreach.resolution.policy import resolution_policy
from outreach.storage.models import (
    Payment,
    Promise,
)
from policies.model import Verdict

# --- Priority ---------------------------------------------------------------------------------

# Points per segment (the generator's and most lenders' risk tiers); unknown segments score 0.
SEGMENT_POINTS: Mapping[str, int] = {"subprime": 150, "near_prime": 75, "prime": 0}
BROKEN_PROMISE_POINTS = 250
MAX_BROKEN_PROMISES = 2
BALANCE_STEP = 100  # one point per 100 of balance (in the account's currency) ...
MAX_BALANCE_POINTS = 500  # ... up to 50,000
DPD_POINTS = 2  # two points per day past due ...
MAX_DPD = 180  # ... counted up to 180 days


def call_priority(
    balance: Decimal, days_past_due: int, broken_promises: int, segment: str | None,
    follow_up: int = 0,
) -> int:
    """The task's priority, higher first: a whole number, the same for the same inputs.

    ``min(balance // 100, 500) + 2 * min(dpd, 180) + 250 * min(broken promises, 2)
    + segment points (subprime 150, near_prime 75, other 0) + follow_up``: ``follow_up`` is
    the broken-promise follow-up's boost (``follow_up_boost``), 0 otherwise.
    """
    balance_points = min(int(max(balance, Decimal(0)) // BALANCE_STEP), MAX_BALANCE_POINTS)
    dpd_points = DPD_POINTS * min(max(days_past_due, 0), MAX_DPD)
    promise_points = BROKEN_PROMISE_POINTS * min(max(broken_promises, 0), MAX_BROKEN_PROMISES)
    return (balance_points + dpd_points + promise_points + SEGMENT_POINTS.get(segment or "", 0)
            + max(follow_up, 0))  # fmt: skip


def follow_up_boost(conn: Connection, account_ids: Iterable[int], day: dt.date) -> dict[int, int]:
    """Per account, the points a call gets ahead of the queue while a promise was broken within
    ``promises.follow_up.within_days`` before ``day`` (config/arrangements.yaml): its
    ``priority``, for the promises the settling marked broken (``settled_on`` the day it
    broke). Absent: no boost."""
    ids = sorted(set(account_ids))
    follow_up = resolution_policy().promises.follow_up
    if not ids or follow_up.priority == 0:
        return {}
    since = day - dt.timedelta(days=follow_up.within_days)
    rows = conn.execute(
        select(Promise.account_id).where(
            Promise.account_id.in_(ids), Promise.status == "broken",
            Promise.settled_on >= since, Promise.settled_on <= day,
        ).distinct()
    )  # fmt: skip
    return {row[0]: follow_up.priority for row in rows}


def broken_promises(conn: Connection, account_ids: Iterable[int], day: dt.date) -> dict[int, int]:
    """Per account, the promises to pay broken as of ``day``: marked ``broken``, or still
    ``open`` past their date without payments (dated from the day the promise was made up to
    its date) covering the amount. Two queries for all the accounts; absent: none broken."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    promises: dict[int, list[Any]] = {}
    for row in conn.execute(
        select(
            Promise.account_id, Promise.amount, Promise.due_on, Promise.recorded_at, Promise.status
        ).where(Promise.account_id.in_(ids), Promise.status.in_(("open", "broken")))
    ):
        promises.setdefault(row[0], []).append(row[1:])
    if not promises:
        return {}
    payments: dict[int, list[Any]] = {}
    for paid_row in conn.execute(
        select(Payment.account_id, Payment.paid_on, Payment.amount).where(
            Payment.account_id.in_(sorted(promises))
        )
    ):
        payments.setdefault(paid_row[0], []).append(paid_row[1:])
    broken: dict[int, int] = {}
    for account_id, rows in promises.items():
        paid_rows = payments.get(account_id, [])
        for amount, due_on, recorded_at, status in rows:
            if status != "broken":
                due = as_date(due_on)
                made_on = as_instant(recorded_at).date()
                if due is None or due >= day:
                    continue  # not due yet
                paid = sum(
                    (Decimal(str(a)) for d, a in paid_rows if made_on <= as_date(d) <= due),  # type: ignore[operator]
                    Decimal(0),
                )
                if paid >= Decimal(str(amount)):
                    continue  # kept
            broken[account_id] = broken.get(account_id, 0) + 1
    return broken


class CallQueueHooks(ChannelHooks):
    """The dispatcher's hooks for ``call``: the task's account, number, priority and window."""

    def prepare(self, conn: Connection, contacts: Sequence[DueContact], day: dt.date) -> None:
        ids = [c.account_id for c in contacts]
        self._broken = broken_promises(conn, ids, day)
        self._follow_up = follow_up_boost(conn, ids, day)

    def fields(self, ctx: MessageContext, verdict: Verdict) -> CallFields:
        account = ctx.account
        dpd = (ctx.day - account.due_date).days if account.due_date else 0
        broken = getattr(self, "_broken", None)
        boost = getattr(self, "_follow_up", None)
        if broken is None or boost is None:  # a caller that did not prepare the group
            broken = broken_promises(ctx.conn, [account.id], ctx.day)
            boost = follow_up_boost(ctx.conn, [account.id], ctx.day)
        priority = call_priority(account.balance, dpd, broken.get(account.id, 0), account.segment,
                                 boost.get(account.id, 0))  # fmt: skip
        # The gate computed the send window in the consumer's local hours, as UTC instants.
        return CallFields(
            account_id=account.id,
            contact_point_id=ctx.contact.contact_point_id,
            priority=priority,
            due_start=verdict.window_start or ctx.contact.window_start,
            due_end=verdict.window_end or ctx.contact.window_end,
        )
