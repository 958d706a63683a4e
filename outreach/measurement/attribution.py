"""Which contact earned a payment. Each payment goes to the last contact on its account that
reached the consumer within ``attribution.window_days`` (config/measurement.yaml) before the
payment was received: a contact sent (SMS, email, letter, agency placement, legal referral:
ledger state ``sent``, at its ``sent_at``), or an agent call that reached the right party (its
disposition a conversation with the consumer, at the call's completion). A payment with no such
contact is "unattributed" (a self-cure, or the work of something not measured). docs/kpis.md.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

UNATTRIBUTED = "unattributed"

# The call dispositions that are a conversation with the consumer (outreach.media.calls
# .dispositions.DISPOSITIONS whose event outcome is "conversation"; a test keeps them equal:
# that module sits in a layer above this one).
RIGHT_PARTY_DISPOSITIONS = frozenset(
    {"right_party_conversation", "promise_to_pay", "dispute", "refusal", "hardship",
     "cease_request"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Touch:
    """A contact that reached the consumer: when, on which channel, in which stage and arm."""

    account_id: int
    at: dt.datetime
    channel: str
    stage: str
    arm: str | None
    key: str


@dataclass(frozen=True, slots=True)
class Attribution:
    channel: str  # the touch's channel, or UNATTRIBUTED
    stage: str  # the touch's stage, or UNATTRIBUTED
    arm: str | None
    contact_key: str | None


NONE = Attribution(UNATTRIBUTED, UNATTRIBUTED, None, None)


def touch_of(
    key: str,
    account_id: int,
    channel: str,
    stage: str,
    arm: str | None,
    sent_at: dt.datetime | None,
    outcome: str | None,
    completed_at: dt.datetime | None,
) -> Touch | None:
    """The touch a ``sent`` ledger row is, or None: a call counts once the right party answered
    (at the disposition's time), every other channel when sent."""
    if channel == "call":
        if outcome not in RIGHT_PARTY_DISPOSITIONS:
            return None
        at = completed_at or sent_at
    else:
        at = sent_at
    if at is None:
        return None
    return Touch(account_id, at, channel, stage, arm, key)


class Attributor:
    """Touches by account, oldest first; ``attribute`` finds a payment's last touch in the
    window (a touch at the very instant of receipt counts: it came first in the ledger)."""

    def __init__(self, touches: Iterable[Touch], window_days: int) -> None:
        self.window = dt.timedelta(days=window_days)
        self._by_account: dict[int, list[Touch]] = defaultdict(list)
        for t in touches:
            self._by_account[t.account_id].append(t)
        self._times: dict[int, list[dt.datetime]] = {}
        for account_id, items in self._by_account.items():
            items.sort(key=lambda t: (t.at, t.key))
            self._times[account_id] = [t.at for t in items]

    def attribute(self, account_id: int, received_at: dt.datetime) -> Attribution:
        items = self._by_account.get(account_id)
        if not items:
            return NONE
        i = bisect.bisect_right(self._times[account_id], received_at) - 1
        if i < 0:
            return NONE
        touch = items[i]
        if received_at - touch.at > self.window:
            return NONE
        return Attribution(touch.channel, touch.stage, touch.arm, touch.key)


def received_instant(paid_on: dt.date, received_at: dt.datetime | None) -> dt.datetime:
    """When a payment was received: its ``received_at``, else the end of its ``paid_on`` day
    (an imported payment knows only its day; every touch of that day came before it)."""
    if received_at is not None:
        return received_at
    return dt.datetime.combine(paid_on, dt.time(23, 59, 59, 999999))
