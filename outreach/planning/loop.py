"""The ladder's resolution actions on a day: which anchor each is tied to (a promise's or an
instalment's due date, a missed instalment, the statement day, an open verification), whether it
falls due, and its ledger slot (the anchor's, so that each anchor is contacted once)."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from outreach.kernel.facts import AccountRecord
from outreach.planning.ladder import Ladder, LoopAction, Party, not_applicable


@dataclass(frozen=True, slots=True)
class AnchorDue:
    """An anchor of one loop action on one account: its date, its slot in the ledger and the
    first day the action is due for it."""

    on: dt.date
    slot: int
    due_from: dt.date
    what: str  # the promise, the instalment, the statement or the verification task it is for


def add_months(start: dt.date, months: int) -> dt.date:
    """``start`` moved by whole calendar months, on the same day of the month or the month's
    last day (31 January + 1 month = 28 or 29 February)."""
    total = start.month - 1 + months
    year, month = start.year + total // 12, total % 12 + 1
    return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def statement_day(first_due_on: dt.date, day: dt.date) -> dt.date | None:
    """The latest statement day on or before ``day``: the monthly anniversaries of the first
    instalment's date, from one month after it; None before the first."""
    months = (day.year - first_due_on.year) * 12 + day.month - first_due_on.month
    for k in (months, months - 1):
        if k >= 1 and add_months(first_due_on, k) <= day:
            return add_months(first_due_on, k)
    return None


def anchor_of(action: LoopAction, account: AccountRecord, day: dt.date) -> AnchorDue | None:
    """The action's anchor on the account for ``day``, or None when the account has none."""
    to = action.anchor.to
    loop = account.loop
    lead = dt.timedelta(days=action.anchor.lead)
    if to == "promise_due":
        p = account.open_promise
        if p is None:
            return None
        return AnchorDue(p.due_on, p.due_on.toordinal(), p.due_on - lead, f"promise {p.ref}")
    arrangement = account.arrangement
    ref = arrangement.ref if arrangement is not None else "?"
    if to == "instalment_due" and loop.upcoming_due_on is not None:
        date = loop.upcoming_due_on
        return AnchorDue(date, date.toordinal(), date - lead, f"arrangement {ref} instalment {date}")
    if to == "instalment_missed" and loop.missed_due_on is not None:
        date = loop.missed_due_on
        return AnchorDue(date, date.toordinal(), date, f"arrangement {ref} missed instalment {date}")
    if to == "statement" and loop.first_due_on is not None:
        date = statement_day(loop.first_due_on, day + lead)  # type: ignore[assignment]
        if date is None:
            return None
        return AnchorDue(date, date.toordinal(), date - lead, f"arrangement {ref} statement {date}")
    if to == "verification_open" and loop.verification_task is not None:
        opened = loop.verification_opened_on
        assert opened is not None
        task = loop.verification_task
        return AnchorDue(opened, task, opened, f"verification task {task}")
    return None


def why_not_due(
    action: LoopAction, anchor: AnchorDue | None, account: AccountRecord, day: dt.date
) -> str | None:
    """Why the action is not due today for ``anchor``, or None when it is: it falls due on its
    day and stays due ``within_days`` more while not yet sent (sent: once per anchor)."""
    if anchor is None:
        return f"no {action.anchor.to.replace('_', ' ')}"
    if day < anchor.due_from:
        return f"due on {anchor.due_from} ({anchor.what})"
    window = action.anchor.window
    last = anchor.due_from + dt.timedelta(days=window) if window is not None else None
    if last is not None and day > last:
        return f"was due {anchor.due_from} to {last} ({anchor.what})"
    if (action.id, anchor.slot) in account.loop.taken:
        return f"already sent for {anchor.what}"
    return None


def due_loop_actions(
    ladder: Ladder, account: AccountRecord, day: dt.date, party: Party
) -> list[tuple[LoopAction, AnchorDue]]:
    """The resolution actions due today for the account, in ladder order, with their anchors."""
    stage = ladder.loop_stage
    loop = account.loop
    if stage is None or (account.open_promise is None and loop.first_due_on is None
                         and loop.verification_task is None):  # fmt: skip
        return []  # no anchor: most accounts, on most days
    due: list[tuple[LoopAction, AnchorDue]] = []
    for action in ladder.model.resolution_actions:
        anchor = anchor_of(action, account, day)
        if anchor is None or why_not_due(action, anchor, account, day) is not None:
            continue
        if not_applicable(stage, action, party) is None:
            due.append((action, anchor))
    return due
