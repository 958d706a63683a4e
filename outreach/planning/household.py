"""Householding: one person with several accounts is one consumer.

At most one contact per person per channel per local day across their accounts (the house rule
``core.household_one_per_day``, on unless config/policy.yaml sets ``householding: false``), and the
caps the law counts per consumer count every account of the person (rules with
``per="consumer"``, docs/compliance.md). The gate reads both from
``AccountFacts.household_history``, which this module fills.

The planner judges a person's accounts together, highest priority first (``priority``), each
seeing its siblings' contacts: their history, what the dispatcher already took for the day, and
what was just planned for the higher-priority siblings. Siblings outside the batch are loaded
and judged too (never written), so the winner depends only on the inputs and the day, never on
batch order, and a rerun of the day (whose taken rows count as before) keeps the same winner.
The dispatcher, at send time, reads the siblings' contacts made so far.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal

from sqlalchemy import Connection, DateTime, bindparam, text

from outreach.kernel.facts import HISTORY_LOOKBACK, AccountRecord, as_instant, load_accounts
from outreach.storage.bulk import bind
from policies.model import PastContact

TAKEN_STATES = ("sent", "sending", "uncertain")
_CHUNK = 500  # ids per IN list


def priority(account: AccountRecord, day: dt.date) -> tuple[int, Decimal, str]:
    """Which of a person's accounts goes first on a channel and day (smallest first): the most
    days past due, then the highest balance, then the account reference (for a total order)."""
    dpd = (day - account.due_date).days if account.due_date is not None else -(10**9)
    return (-dpd, -account.balance, account.account_ref)


def _chunks(ids: Collection[int]) -> Iterable[list[int]]:
    ordered = sorted(ids)
    for i in range(0, len(ordered), _CHUNK):
        yield ordered[i : i + _CHUNK]


def sibling_ids(conn: Connection, lo: int, hi: int) -> list[int]:
    """Accounts outside ``lo..hi`` that belong to a person with an account inside it."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT s.id FROM account a JOIN account s ON s.person_id = a.person_id "
            "WHERE a.id BETWEEN :lo AND :hi AND (s.id < :lo OR s.id > :hi) ORDER BY s.id"
        ),
        {"lo": lo, "hi": hi},
    )
    return [r[0] for r in rows]


def _taken_rows(
    conn: Connection, ids: Collection[int], day: dt.date, cutoff: dt.datetime
) -> dict[int, list[tuple[str, PastContact]]]:
    """Per account, its contacts of plan day ``day`` the dispatcher already took, keyed by
    ledger key. A row sent before ``cutoff`` is left out: its contact event is in the history
    already."""
    out: dict[int, list[tuple[str, PastContact]]] = {}
    for chunk in _chunks(ids):
        rows = conn.execute(
            text(
                "SELECT c.account_id, c.key, c.channel, c.contact_point_id, c.state, c.sent_at, "
                "c.claimed_at, c.window_start, cp.phone_type, cp.is_workplace FROM contact c "
                "LEFT JOIN contact_point cp ON cp.id = c.contact_point_id "
                "WHERE c.account_id IN :ids AND c.plan_date = :day "
                "AND c.state IN ('sent', 'sending', 'uncertain')"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": chunk, "day": day},
        )
        for r in rows:
            when = r[5] or r[6] or r[7]
            if when is None:
                continue
            at = as_instant(when)
            if r[4] == "sent" and at < cutoff:
                continue
            contact = PastContact(at, r[2], "attempted", r[3], r[8], bool(r[9]), account_id=r[0])
            out.setdefault(r[0], []).append((r[1], contact))
    return out


class Household:
    """The accounts loaded for one planning batch, by person, and what each person's accounts
    have planned so far in this pass."""

    def __init__(
        self,
        accounts: Mapping[int, AccountRecord],
        *,
        enabled: bool,
        taken: Mapping[int, list[tuple[str, PastContact]]] | None = None,
    ) -> None:
        self.accounts = accounts
        self.enabled = enabled
        self.taken = taken or {}
        self.by_person: dict[int | None, list[AccountRecord]] = {}
        for account in accounts.values():
            self.by_person.setdefault(account.person_id, []).append(account)
        self._planned: dict[int | None, dict[str, PastContact]] = {}

    def shared(self, account: AccountRecord) -> bool:
        """The account's person has another account among those loaded."""
        return account.person_id is not None and len(self.by_person[account.person_id]) > 1

    def order(self, day: dt.date) -> list[AccountRecord]:
        """Every account: people in the order of their lowest account id, each person's
        accounts by ``priority``."""
        people = sorted(self.by_person.values(), key=lambda group: min(a.id for a in group))
        return [a for group in people for a in sorted(group, key=lambda a: priority(a, day))]

    def prime(self, account: AccountRecord) -> None:
        """Give ``account`` its siblings' contacts, before it is judged."""
        account.householding = self.enabled
        if not self.shared(account):
            return
        history: list[PastContact] = []
        today: dict[str, PastContact] = {}
        for sibling in self.by_person[account.person_id]:
            if sibling.id == account.id:
                continue
            history.extend(replace(h, account_id=sibling.id) for h in sibling.history)
            today.update(self.taken.get(sibling.id, ()))
        for key, contact in self._planned.get(account.person_id, {}).items():
            if contact.account_id != account.id:
                today.setdefault(key, contact)
        account.household = history + list(today.values())

    def record(self, account: AccountRecord, planned: Iterable[tuple[str, PastContact]]) -> None:
        """The contacts just planned to be sent for ``account``: its lower-priority siblings
        judged after it see them."""
        if not self.shared(account):
            return
        mine = self._planned.setdefault(account.person_id, {})
        for key, contact in planned:
            mine.setdefault(key, replace(contact, account_id=account.id))


def load_household(
    conn: Connection,
    accounts: dict[int, AccountRecord],
    lo: int,
    hi: int,
    *,
    day: dt.date,
    cutoff: dt.datetime,
    enabled: bool,
) -> Household:
    """The batch's accounts with their persons' other accounts (loaded with the same facts as
    of the same cutoff) and the day's taken contacts of every account of a shared person."""
    everyone = dict(accounts)
    outside = sibling_ids(conn, lo, hi)
    for chunk in _chunks(outside):
        everyone.update(
            load_accounts(conn, chunk[0], chunk[-1], day=day, cutoff=cutoff, only=chunk)
        )
    household = Household(everyone, enabled=enabled)
    shared = [a.id for a in everyone.values() if household.shared(a)]
    if shared:
        household.taken = _taken_rows(conn, shared, day, cutoff)
    return household


def plan_household(
    household: Household,
    day: dt.date,
    plan: Callable[[AccountRecord], Iterable[tuple[str, PastContact]]],
    *,
    until: int | None = None,
) -> None:
    """Judge the household's accounts in order with ``plan`` (which returns the contacts it
    planned to send, by key). ``until``: stop before that account (explain: its siblings of
    higher priority are judged, then it is primed and left to the caller)."""
    for account in household.order(day):
        household.prime(account)
        if account.id == until:
            return
        household.record(account, plan(account))


def attach_sent(
    conn: Connection,
    accounts: Mapping[int, AccountRecord],
    cutoff: dt.datetime,
    *,
    enabled: bool,
) -> dict[int, list[AccountRecord]]:
    """At send time: give each account its siblings' outbound contacts in the lookback up to
    ``cutoff`` (the send instant: a sibling's contact sent at that very instant counts), and
    those being sent or in doubt; returns the loaded accounts by person, for the contacts the
    dispatcher sends meanwhile (``note_sent``)."""
    by_person: dict[int, list[AccountRecord]] = {}
    for account in accounts.values():
        account.householding = enabled
        if account.person_id is not None:
            by_person.setdefault(account.person_id, []).append(account)
    if not accounts:
        return by_person
    since = bind(conn, DateTime(), cutoff - HISTORY_LOOKBACK)
    until = bind(conn, DateTime(), cutoff)
    for chunk in _chunks(accounts):
        rows = conn.execute(
            text(
                "SELECT a.id, e.account_id, e.occurred_at, e.channel, e.outcome, "
                "e.contact_point_id, cp.phone_type, cp.is_workplace FROM account a "
                "JOIN account s ON s.person_id = a.person_id AND s.id <> a.id "
                "JOIN contact_event e ON e.account_id = s.id "
                "LEFT JOIN contact_point cp ON cp.id = e.contact_point_id "
                "WHERE a.id IN :ids AND e.direction = 'outbound' "
                "AND e.occurred_at >= :since AND e.occurred_at <= :until "
                "UNION ALL "
                "SELECT a.id, c.account_id, c.claimed_at, c.channel, 'attempted', "
                "c.contact_point_id, cp.phone_type, cp.is_workplace FROM account a "
                "JOIN account s ON s.person_id = a.person_id AND s.id <> a.id "
                "JOIN contact c ON c.account_id = s.id "
                "LEFT JOIN contact_point cp ON cp.id = c.contact_point_id "
                "WHERE a.id IN :ids AND c.state IN ('sending', 'uncertain') "
                "AND c.claimed_at >= :since AND c.claimed_at <= :until"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": chunk, "since": since, "until": until},
        )
        for r in rows:
            accounts[r[0]].household.append(
                PastContact(as_instant(r[2]), r[3], r[4], r[5], r[6], bool(r[7]), account_id=r[1])
            )
    for account in accounts.values():
        account.household.sort(key=lambda h: h.at)
    return by_person


def note_sent(
    by_person: Mapping[int, list[AccountRecord]], account: AccountRecord, contact: PastContact
) -> None:
    """A contact the dispatcher is about to send for ``account``: the person's other accounts
    judged after it in the same group see it."""
    for other in by_person.get(account.person_id, ()) if account.person_id is not None else ():
        if other.id != account.id:
            other.household.append(replace(contact, account_id=account.id))
