"""Dispatch: claim planned contacts, judge them again at the send instant, send, record.

Exactly once: a row moves planned -> sending in its own committed transaction before the provider
is called, and only the claimer (matching ``claim_token``) may record the result. A rerun finds
sent rows already sent. A row left in ``sending`` by a worker that died is never resent blindly:
after the lease it is resolved by asking the backend (the outbox knows for sure), or else marked
``uncertain`` for a callback or a person.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from contact_channels.base import Channel, ChannelError, OutboundMessage, SendResult, is_local
from outreach.dispatch.message import outbound_message, personal_data
from outreach.dispatch.recording import NOTICE_DATES, decision_rows, settle, verification_mailed
from outreach.dispatch.recovery import recover_stale
from outreach.dispatch.send_rules import SendRules, send_rules
from outreach.dispatch.sending import NotSent, SenderPool, SendOutcome, open_channel, send_tuning
from outreach.kernel.clock import utcnow
from outreach.kernel.facts import load_accounts
from outreach.kernel.ledger import (
    DECISION_COLUMNS,
    DECISION_TYPES,
    EVENT_OUTCOME,
    DueContact,
    SentRow,
    claim,
    due_contacts,
    mark_sent,
    release,
    set_state,
)
from outreach.planning.household import attach_sent, note_sent
from outreach.planning.judging import judge_send, step_for
from outreach.planning.kinds import ChannelHooks, MessageContext, hooks_for
from outreach.planning.ladder import Action
from outreach.storage.bulk import insert_rows
from policies.model import BLOCK, SEND, PastContact, Verdict

log = logging.getLogger(__name__)

@dataclass
class DispatchCounts:
    due: int = 0
    claimed: int = 0
    sent: int = 0
    suppressed: int = 0
    deferred: int = 0
    failed: int = 0
    retry_later: int = 0
    uncertain: int = 0
    recovered: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def dispatch_ranges(
    engine: Engine, day: dt.date, channel: str, batch_size: int
) -> list[tuple[int, int]]:
    """Account-id ranges covering about ``batch_size`` planned contacts each."""
    with engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT account_id FROM contact WHERE plan_date = :day AND channel = :channel "
                    "AND state IN ('planned', 'sending', 'uncertain') ORDER BY account_id"
                ),
                {"day": day, "channel": channel},
            )
        ]
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(ids):
        j = min(i + batch_size, len(ids)) - 1
        while j + 1 < len(ids) and ids[j + 1] == ids[j]:  # keep an account in one batch
            j += 1
        ranges.append((ids[i], ids[j]))
        i = j + 1
    return ranges


# The logical clock walks the day again for contacts the gate deferred to later the same day;
# every pass moves each of them at least an hour on, so a day has at most this many.
MAX_LOGICAL_PASSES = 26


def _deferred_within_day(
    due: list[DueContact], judged_at: dict[str, dt.datetime]
) -> list[DueContact]:
    """Of the contacts still planned after a logical walk, those it judged and put back for
    later today: each starts again at the later of its deferral and an hour after its last
    judging, if that is still inside its window."""
    again: list[DueContact] = []
    for c in due:
        last = judged_at.get(c.key)
        if last is None:
            continue  # not judged by this walk (e.g. planned meanwhile): the next run's
        start = max(c.window_start, c.defer_until or c.window_start, last + dt.timedelta(hours=1))
        if start < c.window_end:
            c.window_start = start
            again.append(c)
    return again


def _send_instants(
    due: list[DueContact], clock: str, now: dt.datetime
) -> list[tuple[dt.datetime, list[DueContact]]]:
    """Group due contacts by the instant they go out. Wall clock: now, for those whose window
    holds it and whose deferral (the first instant the gate could allow them) has come.
    Logical clock: the first top of the hour inside each window from its deferral, as the
    hourly dispatcher would have sent them."""
    if clock == "wall":
        ready = [c for c in due if c.defer_until is None or c.defer_until <= now]
        return [(now, [c for c in ready if c.window_start <= now < c.window_end])]
    by_instant: dict[dt.datetime, list[DueContact]] = {}
    for c in due:
        start = max(c.window_start, c.defer_until or c.window_start)
        at = start.replace(minute=0, second=0, microsecond=0)
        if at < start:
            at += dt.timedelta(hours=1)
        if at < c.window_end:
            by_instant.setdefault(at, []).append(c)
    return sorted(by_instant.items())


def dispatch_range(
    engine: Engine,
    day: dt.date,
    channel: str,
    lo: int,
    hi: int,
    *,
    clock: str = "wall",
    channel_impl: Channel | None = None,
    now: Callable[[], dt.datetime] = utcnow,
    concurrency: int | None = None,
) -> DispatchCounts:
    """Send the planned ``channel`` contacts of accounts ``lo..hi`` for ``day``.

    Groups of ``group_size`` contacts are claimed, judged and handed to ``concurrency`` sender
    threads; while one group is at the provider the next is claimed and judged, and each
    group's results are recorded in one transaction. ``concurrency`` and ``group_size`` come
    from the channel's settings (``channels.yaml``) unless given.
    """
    if clock not in ("wall", "logical"):
        raise ValueError(f"clock must be 'wall' or 'logical', not {clock!r}")
    impl = channel_impl or open_channel(channel)
    if clock == "logical" and not is_local(impl):
        raise ValueError(
            "clock='logical' simulates the day's send times and is only allowed "
            f"with the outbox or our other own media (the call queue, drop files); the {channel} "
            f"channel uses {impl.backend}"
        )
    tuning = send_tuning(channel, impl, concurrency=concurrency)
    counts = DispatchCounts()
    rules = send_rules(engine, day)
    pool = SenderPool(impl, tuning.concurrency)
    hooks = hooks_for(channel, engine, day)
    in_flight: deque[_Group] = deque()
    try:
        counts.recovered = recover_stale(engine, impl, channel, lo, hi, now(), rules)
        with engine.connect() as conn:
            due = due_contacts(conn, day, channel, lo, hi)
        counts.due = len(due)
        judged_at: dict[str, dt.datetime] = {}
        for _ in range(MAX_LOGICAL_PASSES if clock == "logical" else 1):
            for at, contacts in _send_instants(due, clock, now()):
                for i in range(0, len(contacts), tuning.group_size):
                    if pool.broken is not None:
                        break  # an adapter failed unexpectedly: claim nothing more
                    chunk = contacts[i : i + tuning.group_size]
                    judged_at.update((c.key, at) for c in chunk)
                    group = _start_group(
                        engine, impl, pool, channel, day, chunk, at, clock, counts, now, rules,
                        hooks,
                    )  # fmt: skip
                    in_flight.append(group)
                    # Keep about two groups at the provider: enough to hide one group's
                    # judging and recording behind the other's round trips.
                    while in_flight and (len(in_flight) > 2 or in_flight[0].done()):
                        _finish_group(engine, impl, channel, in_flight.popleft(), counts, now())
            while in_flight:
                _finish_group(engine, impl, channel, in_flight.popleft(), counts, now())
            if clock != "logical" or pool.broken is not None:
                break
            # The hourly dispatcher would meet a contact deferred to later today again: walk
            # on for those (they are planned again, with their deferral).
            with engine.connect() as conn:
                due = _deferred_within_day(due_contacts(conn, day, channel, lo, hi), judged_at)
            if not due:
                break
    finally:
        # On an error, what is at the provider is waited for and recorded if the database
        # allows; a row left `sending` is settled by recover_stale after the lease.
        for group in in_flight:
            try:
                _finish_group(engine, impl, channel, group, counts, now(), reraise=False)
            except Exception:
                log.exception("dispatch %s: could not record a group after an error", channel)
        pool.close()
        if channel_impl is None:
            impl.close()
    log.info("dispatch %s %s accounts %s-%s: %s", channel, day, lo, hi, counts.as_dict())
    return counts



@dataclass
class _Group:
    """One claimed group whose send verdicts are at the provider."""

    token: str
    at: dt.datetime
    judged: list[_Judged]
    futures: list[Future[list[SendOutcome]]]

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def outcomes(self) -> list[SendOutcome]:
        return [outcome for f in self.futures for outcome in f.result()]


@dataclass(slots=True)
class _Judged:
    contact: DueContact
    verdict: Verdict
    config_version: str
    action: Action | None


def _start_group(
    engine: Engine,
    impl: Channel,
    pool: SenderPool,
    channel: str,
    day: dt.date,
    group: list[DueContact],
    at: dt.datetime,
    clock: str,
    counts: DispatchCounts,
    now: Callable[[], dt.datetime],
    rules: SendRules,
    hooks: ChannelHooks,
) -> _Group:
    """Claim one group, judge each claimed contact on facts read after the claim (so an
    opt-out or a dispute recorded before the claim is always seen), record what is not sent,
    and hand the rest to the sender pool."""
    token = uuid.uuid4().hex
    claimed = claim(engine, [c.key for c in group], token, now())
    counts.claimed += len(claimed)
    pending = [c for c in group if c.key in claimed]
    to_send: list[_Judged] = []
    messages: list[OutboundMessage] = []
    held: list[tuple[_Judged, str]] = []  # (judged, state) for block and defer verdicts
    if not pending:
        return _Group(token, at, [], [])
    try:
        cutoff = at if clock == "logical" else now()
        with engine.connect() as conn:
            ids = [c.account_id for c in pending]
            accounts = load_accounts(conn, min(ids), max(ids), day=day, cutoff=cutoff, only=ids)
            # The same person's other accounts: what they were sent (one contact per channel
            # a day, caps counted per consumer), and what this group sends meanwhile.
            people = attach_sent(conn, accounts, cutoff, enabled=rules.householding)
            personal = personal_data(conn, [c.key for c in pending])
            hooks.prepare(conn, pending, day)
            for contact in pending:
                account = accounts[contact.account_id]
                pd = personal[contact.key]
                destination = next(
                    (
                        d
                        for d in account.destinations
                        if d.contact_point_id == contact.contact_point_id
                    ),
                    None,
                )
                action = rules.action(contact)
                ctx = MessageContext(conn, contact, account, pd, day, at, action)
                verdict = rules.not_applicable(contact, account, contact.plan_date) or judge_send(
                    hooks.step(step_for(channel, destination, action), ctx),
                    account,
                    rules.role,
                    contact.plan_date,
                    at,
                )
                judged = _Judged(contact, verdict, pd["config_version"], action)
                if verdict.verdict == SEND:
                    note_sent(people, account, PastContact(
                        at, channel, EVENT_OUTCOME.get(channel, "sent"), contact.contact_point_id,
                        destination.phone_type if destination else None,
                        bool(destination and destination.is_workplace),
                    ))  # fmt: skip
                    fields = hooks.fields(ctx, verdict)
                    messages.append(
                        outbound_message(contact, channel, account, pd, day, fields, rules,
                                         conn)
                    )
                    to_send.append(judged)
                elif verdict.verdict == BLOCK:
                    held.append((judged, "suppressed"))
                else:
                    back_today = (
                        verdict.defer_until is not None
                        and verdict.defer_until < contact.window_end
                    )
                    held.append((judged, "planned" if back_today else "deferred"))
        with engine.begin() as conn:
            _record_held(conn, held, token, at, counts, now())
    except BaseException:
        # Nothing of this group reached the provider: give it back to the queue.
        with engine.begin() as conn:
            release(conn, claimed, token)
        raise
    return _Group(token, at, to_send, pool.submit(messages))


def _record_held(
    conn: Connection,
    held: list[tuple[_Judged, str]],
    token: str,
    at: dt.datetime,
    counts: DispatchCounts,
    now: dt.datetime,
) -> None:
    """Record the block and defer verdicts of a group: decision rows and ledger states."""
    insert_rows(
        conn,
        "policy_decision",
        DECISION_COLUMNS,
        decision_rows(((j.contact, j.verdict, j.config_version) for j, _ in held), at),
        DECISION_TYPES,
    )
    for judged, state in held:
        verdict, key = judged.verdict, judged.contact.key
        reasons = " ".join(verdict.reasons)
        if state == "suppressed":
            set_state(conn, key, token, state, now, verdict=BLOCK, reasons=reasons)
            counts.suppressed += 1
        else:
            set_state(
                conn,
                key,
                token,
                state,
                now,
                verdict=verdict.verdict,
                reasons=reasons,
                defer_until=verdict.defer_until,
                claim_token=None,
            )
            counts.deferred += 1


def _finish_group(
    engine: Engine,
    impl: Channel,
    channel: str,
    group: _Group,
    counts: DispatchCounts,
    now: dt.datetime,
    *,
    reraise: bool = True,
) -> None:
    """Record a group's send outcomes, its decisions and its sent rows, in one transaction.
    Then, with ``reraise``, raise the first unexpected adapter error of the group."""
    if not group.judged:
        return
    outcomes = group.outcomes()
    sent: list[SentRow] = []
    released: list[str] = []
    unexpected: Exception | None = None
    with engine.begin() as conn:
        notices: dict[str, list[dict[str, Any]]] = {}
        mailed: list[DueContact] = []
        for judged, outcome in zip(group.judged, outcomes, strict=True):
            c = judged.contact
            if isinstance(outcome, NotSent):
                released.append(c.key)
                continue
            if isinstance(outcome, SendResult):
                sent.append(
                    SentRow(
                        c.key, c.account_id, channel, c.contact_point_id, outcome.provider_id, group.at
                    )
                )
                purpose = judged.action.gate_purpose if judged.action is not None else None
                if purpose in NOTICE_DATES:
                    notices.setdefault(purpose, []).append({"d": c.plan_date, "a": c.account_id})
                if purpose == "verification":
                    mailed.append(c)
                state = "sent"
            else:
                if not isinstance(outcome, ChannelError) and unexpected is None:
                    unexpected = outcome
                state = settle(conn, c, channel, group.token, outcome, now)
            setattr(counts, COUNTED_AS[state], getattr(counts, COUNTED_AS[state]) + 1)
        insert_rows(
            conn,
            "policy_decision",
            DECISION_COLUMNS,
            decision_rows(
                (
                    (j.contact, j.verdict, j.config_version)
                    for j, o in zip(group.judged, outcomes, strict=True)
                    if not isinstance(o, NotSent)
                ),
                group.at,
            ),
            DECISION_TYPES,
        )
        mark_sent(conn, sent, group.token, impl.backend, now)
        release(conn, released, group.token)
        for purpose, params in notices.items():
            conn.execute(text(NOTICE_DATES[purpose]), params)
        for c in mailed:
            verification_mailed(conn, channel, "verification", c.account_id, c.key, c.plan_date)
    if unexpected is not None and reraise:
        raise unexpected


# The ledger state a send ends in -> the DispatchCounts field that counts it.
COUNTED_AS = {
    "sent": "sent",
    "failed": "failed",
    "planned": "retry_later",
    "uncertain": "uncertain",
}


